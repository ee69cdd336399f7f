#!/usr/bin/env python3
"""face-api.js's expression network on a set of 48x48 faces: its accuracy, per-class recall and
confusions, and, with --model, a face-by-face comparison with one of ours (McNemar).

The network is the one of the issue 24 anchor (88.6 % on CK+48), run as published: the npm
package @vladmandic/face-api, pinned with its tfjs by scripts/peers/package-lock.json and installed
by scripts/peers/install.sh (Node.js and npm needed), on tfjs' WebAssembly backend
(scripts/peers/expressions.js). The faces are given as they are; face-api scales them itself.

    /usr/bin/python3 scripts/eval_faceapi.py --data ckplus48.csv.gz --usage all --name CK+48 \
        --model models/emonet-xs.json

--targets also writes distillation targets for `emotion-model train --teacher-targets`: for the
set's Training rows, face-api's probabilities mixed with --model's (a weighted geometric mean,
--weight for face-api's share; the model's own averaged with its mirror image, as train's
teachers are), tempered at --temperature, as log-probabilities.
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "models", "train"))
from emotion_train.data import LABELS, load_dataset  # noqa: E402
from emotion_train.evaluate import (class_weights, dnn_predict, format_table, load_model, metrics,  # noqa: E402
                                     paired_difference)


def faceapi_probs(faces):
    """face-api's probabilities [N, 7] in FER2013's order for uint8 faces [N, 48, 48]."""
    modules = subprocess.run([os.path.join(HERE, "peers", "install.sh")], check=True, stdout=subprocess.PIPE,
                             text=True).stdout.strip()
    with tempfile.TemporaryDirectory(prefix="emo-faceapi-") as tmp:
        src, dst = os.path.join(tmp, "faces.u8"), os.path.join(tmp, "probs.f32")
        np.ascontiguousarray(faces, dtype=np.uint8).tofile(src)
        subprocess.run(["node", os.path.join(HERE, "peers", "expressions.js"), modules, src, str(len(faces)), dst],
                       check=True)
        p = np.fromfile(dst, dtype=np.float32).reshape(len(faces), len(LABELS))
    if not np.all(np.isfinite(p)) or np.abs(p.sum(1) - 1).max() > 1e-3:
        sys.exit("eval_faceapi: face-api's outputs are not probabilities")
    return p


def mixed_targets(fa, ours, weight, temperature):
    """log softmax((weight log fa + (1 - weight) log ours) / temperature), float32 [N, 7]."""
    z = (weight * np.log(fa.astype(np.float64) + 1e-6) + (1 - weight) * np.log(ours.astype(np.float64) + 1e-6))
    z = z / temperature
    z -= z.max(1, keepdims=True)
    return (z - np.log(np.exp(z).sum(1, keepdims=True))).astype(np.float32)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True, help="Kaggle-format CSV (.csv or .csv.gz)")
    ap.add_argument("--usage", default="PublicTest", help="rows whose Usage is this (all: every row)")
    ap.add_argument("--name", help="what to call the faces in the output (default: the --usage value)")
    ap.add_argument("--model", help="an exported model (NAME.json): compared face by face; the mix of --targets")
    ap.add_argument("--targets", metavar="OUT.npy", help="write distillation targets for the Training rows")
    ap.add_argument("--weight", type=float, default=0.25, help="face-api's share of the --targets mix (0..1)")
    ap.add_argument("--temperature", type=float, default=4.0, help="of the targets: train's --kd-temperature")
    ap.add_argument("--cache", default=os.path.expanduser("~/.cache/emotiond"), help="parsed-CSV cache folder")
    args = ap.parse_args()
    if not 0 <= args.weight <= 1 or args.temperature <= 0:
        ap.error("--weight must lie in 0..1 and --temperature be positive")
    if args.targets and args.weight < 1 and not args.model:
        ap.error("--targets with --weight under 1 mixes in --model's probabilities: give --model")

    images, labels, usages = load_dataset(args.data, args.cache)
    sel = np.ones(len(usages), bool) if args.usage == "all" else usages == args.usage
    if not sel.any():
        sys.exit(f"eval_faceapi: {args.data}: no {args.usage} rows")
    name = args.name or args.usage
    t0 = time.time()
    fa = faceapi_probs(images[sel])
    print(f"face-api.js expression net on {name} ({sel.sum()} faces, {time.time() - t0:.0f} s)")
    m = metrics(labels[sel], fa.argmax(1))
    print(format_table(m))
    if args.model:
        net, meta = load_model(args.model)
        ours = dnn_predict(net, images[sel], meta["normalization"], meta["tta"], weights=class_weights(meta))
        d = paired_difference(ours.argmax(1) == labels[sel], fa.argmax(1) == labels[sel])
        print(f"face-api against {meta['name']} (tta {meta['tta']}, {(ours.argmax(1) == labels[sel]).mean():.4f}): "
              f"{100 * d['difference']:+.2f} points; right only with face-api {d['right_only_b']}, only with "
              f"{meta['name']} {d['right_only_a']}, McNemar p = {d['p_mcnemar']:.3g}")
    if args.targets:
        tr = usages == "Training"
        if not tr.any():
            sys.exit(f"eval_faceapi: {args.data}: no Training rows for --targets")
        fa_tr = fa[tr[sel]] if sel[tr].all() else faceapi_probs(images[tr])
        ours_tr = np.ones_like(fa_tr)
        if args.weight < 1:
            net, meta = load_model(args.model)
            ours_tr = dnn_predict(net, images[tr], meta["normalization"], "hflip")
        np.save(args.targets, mixed_targets(fa_tr, ours_tr, args.weight, args.temperature))
        print(f"wrote {args.targets}: {tr.sum()} Training faces, face-api's share {args.weight}, "
              f"temperature {args.temperature}")


if __name__ == "__main__":
    main()

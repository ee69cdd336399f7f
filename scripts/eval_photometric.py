#!/usr/bin/env python3
"""Would normalising each face's grey levels before the network help on faces from other cameras?

The model was trained on FER2013's faces as they are (one global mean and spread). A lab camera's
faces (CK+48) have more contrast than FER2013's web photos, so each face is given to the model
as it is and after one of: per-face standardisation to the training faces' mean and spread,
histogram equalisation, CLAHE (OpenCV, clip 2, 4x4 tiles), or the mean of the face and its
equalised copy. Accuracy and per-class recall of each on every --data file, and McNemar's test of
each against the face as it is:

    /usr/bin/python3 scripts/eval_photometric.py --model models/emonet-xs.json \\
        --data fer2013.csv.gz:PublicTest --data ckplus48.csv.gz:all --train fer2013.csv.gz

(--train gives the Training rows whose mean and spread the standardisation aims at.)
"""
import argparse
import os
import sys

import cv2
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "models", "train"))
from emotion_train.data import LABELS, load_dataset  # noqa: E402
from emotion_train.evaluate import class_weights, dnn_predict, load_model, paired_difference  # noqa: E402


def variants(train_mean, train_std):
    """name -> function of uint8 faces [N,48,48] to uint8 faces."""
    def standardise(a):
        a = a.astype(np.float32)
        m = a.mean((1, 2), keepdims=True)
        s = a.std((1, 2), keepdims=True) + 1e-3
        return np.clip((a - m) / s * train_std + train_mean, 0, 255).astype(np.uint8)

    def equalise(a):
        return np.stack([cv2.equalizeHist(x) for x in a])

    clahe = cv2.createCLAHE(clipLimit=2.0, tileGridSize=(4, 4))

    def local(a):
        return np.stack([clahe.apply(x) for x in a])

    def half(a):
        return ((a.astype(np.float32) + equalise(a).astype(np.float32)) / 2).astype(np.uint8)

    return {"as is": lambda a: a, "standardised": standardise, "equalised": equalise, "CLAHE": local,
            "half equalised": half}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True, help="NAME.json written by export")
    ap.add_argument("--data", action="append", required=True,
                    help="FILE:USAGE, a Kaggle-format CSV and the Usage of its rows to use (all: every row)")
    ap.add_argument("--train", required=True, help="the training CSV (its Training rows set the target levels)")
    args = ap.parse_args()

    net, meta = load_model(args.model)
    norm = meta["normalization"]
    weights = class_weights(meta)  # the model as the daemon runs it, prior correction included
    images, _, usages = load_dataset(args.train)
    train = images[usages == "Training"]
    if len(train) == 0:
        sys.exit(f"{args.train}: no Training rows")
    ways = variants(float(train.mean()), float(train.std()))
    for spec in args.data:
        path, _, usage = spec.rpartition(":")
        if not path:
            sys.exit(f"--data {spec}: expected FILE:USAGE")
        x, y, u = load_dataset(path)
        sel = np.ones(len(u), bool) if usage == "all" else u == usage
        if not sel.any():
            sys.exit(f"{path}: no {usage} rows")
        x, y = x[sel], y[sel]
        print(f"{os.path.basename(path)} ({usage}, {len(y)} faces)")
        print(f"  {'faces':<15} {'accuracy':>8}  {'vs as is':>9} {'p':>9}  recall " + " ".join(l[:5] for l in LABELS))
        base = None
        for name, f in ways.items():
            pred = dnn_predict(net, f(x), norm, weights=weights).argmax(1)
            right = pred == y
            if base is None:
                base = right
            d = paired_difference(base, right)
            recall = " ".join(f"{100 * (pred[y == k] == k).mean():5.1f}" if (y == k).any() else "    -"
                              for k in range(len(LABELS)))
            print(f"  {name:<15} {100 * right.mean():7.2f}%  {100 * d['difference']:+8.2f}  {d['p_mcnemar']:9.2g}  "
                  f"{recall}")


if __name__ == "__main__":
    main()

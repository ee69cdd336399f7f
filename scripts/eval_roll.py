#!/usr/bin/env python3
"""Would turning a tilted face upright by its eye landmarks help the emotion model?

Each face of a Kaggle-format CSV (48x48 grey) is enlarged into a scene, as the framing calibration
does (emotion_train.framing.make_scene), the scene is turned by +-theta degrees, YuNet finds the
face, and the model classifies three crops of it: the framed square around the box as it lies
(framing.crop_face, the daemon before it turned faces), that square turned by the angle of the
line through YuNet's two eye landmarks so that the eyes are level, whatever the angle
(framing.upright_crop), and what the daemon does now: turned only from EMO_UPRIGHT_MIN_ROLL on, a
threshold these figures chose (--min-rolls tries others, against it too). Accuracy of each, and
McNemar's test of its difference from the first, per angle:

    /usr/bin/python3 scripts/eval_roll.py --data fer2013.csv.gz --usage PublicTest --n 800 \
        --model models/emonet-xs.json --yunet face_detection_yunet_2022mar.onnx

With --daemon BIN_DIR the same turned scenes, set in a frame of --frame pixels, go through the
daemon itself (emotiond with --detector, `emotion analyze --json`): its accuracy and the roll it
reads, per angle, for the detector chosen, the C++ path and BlazeFace included.
"""
import argparse
import os
import sys
import tempfile

import cv2
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "models", "train"))
from emotion_train.data import load_dataset  # noqa: E402
from emotion_train.evaluate import class_weights, dnn_predict, load_model, paired_difference  # noqa: E402
from emotion_train.framing import UPRIGHT_MIN_ROLL, crop_face, eye_roll, make_scene, upright_crop  # noqa: E402

EMO_LEAN_CHECK_MIN_ROLL = 4.0  # daemon/vision/vision.h

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from eval_detectors import EMOTIONS, analyze  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", required=True, help="Kaggle-format CSV (.csv or .csv.gz)")
    ap.add_argument("--usage", default="all", help="rows whose Usage is this (all: every row)")
    ap.add_argument("--n", type=int, default=0, help="at most this many faces (0: all)")
    ap.add_argument("--model", required=True, help="NAME.json written by emotion-model export")
    ap.add_argument("--yunet", required=True, help="face_detection_yunet_2022mar.onnx")
    ap.add_argument("--angles", default="0,10,20,30", help="degrees, comma-separated")
    ap.add_argument("--side", type=int, default=160, help="face side in the scene, pixels")
    ap.add_argument("--seed", type=int, default=1, help="draws the sign of each face's turn")
    ap.add_argument("--detect-scale", type=float, default=1.0,
                    help="show YuNet the scene scaled by this (the daemon detects at 320 px: a 640-px "
                         "photo's faces are half their size there), the box and eyes scaled back")
    ap.add_argument("--min-rolls", default="",
                    help="also turn from each of these degrees (comma-separated) and report it")
    ap.add_argument("--daemon", metavar="BIN_DIR", help="run the scenes through emotiond and emotion from BIN_DIR")
    ap.add_argument("--detector", default="yunet", choices=["yunet", "yunet+lean", "blazeface"],
                    help="the daemon's (--daemon); yunet+lean: YuNet with its lean check by --blazeface")
    ap.add_argument("--baseline", choices=["yunet", "yunet+lean", "blazeface"],
                    help="--daemon: run this detector on the same frames too and compare face by face (McNemar)")
    ap.add_argument("--blazeface", help="face_detection_front_128x128_barracuda.onnx (--daemon --detector blazeface or yunet+lean)")
    ap.add_argument("--dialogue", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "deploy",
                                                       "dialogue"), help="the daemon's --dialogue-dir (--daemon)")
    ap.add_argument("--frame", type=int, default=0,
                    help="with --daemon: the scene in a square frame of this side, its border replicated (the "
                         "daemon detects at 320 px: a 160-px face in a 711-px frame is 72 px there)")
    args = ap.parse_args()

    images, labels, usages = load_dataset(args.data)
    keep = np.ones(len(labels), bool) if args.usage == "all" else usages == args.usage
    idx = np.flatnonzero(keep)[:args.n or None]
    if not len(idx):
        sys.exit(f"{args.data}: no rows with Usage {args.usage}")
    if args.daemon:
        return through_daemon(args, images, labels, idx)
    net, meta = load_model(args.model)
    size = 3 * args.side
    det_size = max(64, int(round(size * args.detect_scale)))
    back = size / det_size
    det = cv2.FaceDetectorYN.create(args.yunet, "", (det_size, det_size), 0.6, 0.3, 50)
    rng = np.random.default_rng(args.seed)
    print(f"{args.data} ({args.usage}, {len(idx)} faces), {meta['name']}, faces of {args.side} px turned by ±theta, "
          f"{args.side * det_size / size:.0f} px at the detector")
    for theta in (float(a) for a in args.angles.split(",")):
        min_rolls = [float(r) for r in args.min_rolls.split(",") if r]
        boxed, upright, daemon, truth, residual, read = [], [], [], [], [], []
        tried = {r: [] for r in min_rolls}
        for i in idx:
            turn = theta if rng.random() < 0.5 else -theta
            scene = make_scene(images[i], args.side, args.side)
            m = cv2.getRotationMatrix2D((size / 2, size / 2), turn, 1.0)
            scene = cv2.warpAffine(scene, m, (size, size), borderMode=cv2.BORDER_REPLICATE)
            small = scene if det_size == size else cv2.resize(scene, (det_size, det_size), interpolation=cv2.INTER_AREA)
            _, faces = det.detect(small)
            if faces is None:
                continue
            f = faces[np.argmax(faces[:, 14])].copy()
            f[:14] *= back
            boxed.append(crop_face(scene, tuple(f[:4]), meta["framing"]))
            angle = eye_roll(f[4:8].reshape(2, 2))
            upright.append(upright_crop(scene, tuple(f[:4]), angle, meta["framing"], min_roll=0))
            daemon.append(upright_crop(scene, tuple(f[:4]), angle, meta["framing"]))
            for r in min_rolls:
                tried[r].append(upright_crop(scene, tuple(f[:4]), angle, meta["framing"], min_roll=r))
            read.append(abs(angle))
            truth.append(labels[i])
            residual.append(abs(angle + turn))  # OpenCV turns counter-clockwise as seen, roll is clockwise
        truth = np.array(truth)

        def right_of(crops):
            """Which of the crops the model, as the daemon runs it, reads right."""
            return dnn_predict(net, np.stack(crops), meta["normalization"], weights=class_weights(meta)).argmax(1) \
                == truth

        right_box, right_up, right_daemon = right_of(boxed), right_of(upright), right_of(daemon)
        d = paired_difference(right_box, right_up)
        dd = paired_difference(right_box, right_daemon)
        print(f"theta {theta:4.0f}: found {len(truth)}/{len(idx)}  box crop {right_box.mean() * 100:5.1f} %  "
              f"upright {right_up.mean() * 100:5.1f} % ({d['difference'] * 100:+.1f}, p = {d['p_mcnemar']:.3f})  "
              f"from {UPRIGHT_MIN_ROLL:g} deg {right_daemon.mean() * 100:5.1f} % ({dd['difference'] * 100:+.1f}, "
              f"p = {dd['p_mcnemar']:.3f})  eye-line error median {np.median(residual):.1f} deg")
        q = np.percentile(read, [10, 50, 90])
        print(f"            roll read |{q[0]:.1f} {q[1]:.1f} {q[2]:.1f}| deg (10th, 50th, 90th percentile)")
        for r in min_rolls:
            right = right_of(tried[r])
            d = paired_difference(right_box, right)
            ds = paired_difference(right_daemon, right)
            print(f"            from {r:4g} deg {right.mean() * 100:5.1f} % ({d['difference'] * 100:+.1f}, "
                  f"p = {d['p_mcnemar']:.3f}; against from {UPRIGHT_MIN_ROLL:g} deg {ds['difference'] * 100:+.1f}, "
                  f"p = {ds['p_mcnemar']:.3f}), {np.mean(np.array(read) >= r) * 100:.0f} % of faces turned")


def through_daemon(args, images, labels, idx):
    size = 3 * args.side
    frame = max(size, args.frame)
    rng = np.random.default_rng(args.seed)
    detector_side = 128 if args.detector == "blazeface" else 320  # the front model's input; detect_max_side
    lean = EMO_LEAN_CHECK_MIN_ROLL
    print(f"{args.data} ({args.usage}, {len(idx)} faces) through emotiond ({args.detector}), faces of {args.side} px "
          f"turned by ±theta in {frame}-px frames, {args.side * detector_side / frame:.0f} px at the detector")
    levels = None
    for theta in (float(a) for a in args.angles.split(",")):
        with tempfile.TemporaryDirectory() as tmp:
            files, turns = [], []
            for i in idx:
                turn = theta if rng.random() < 0.5 else -theta
                scene = make_scene(images[i], args.side, args.side)
                m = cv2.getRotationMatrix2D((size / 2, size / 2), turn, 1.0)
                scene = cv2.warpAffine(scene, m, (size, size), borderMode=cv2.BORDER_REPLICATE)
                pad = (frame - size) // 2
                scene = cv2.copyMakeBorder(scene, pad, frame - size - pad, pad, frame - size - pad,
                                           cv2.BORDER_REPLICATE)
                files.append(os.path.join(tmp, f"{i}.png"))
                cv2.imwrite(files[-1], scene)
                turns.append(turn)
            results = analyze(args.daemon, args, args.detector, files)
            base = analyze(args.daemon, args, args.baseline, files) if args.baseline else None
        right, read, residual, found_right = score(results, files, idx, turns, labels)
        found = len(read)
        q = np.percentile(read, [10, 50, 90]) if read else [0, 0, 0]
        line = (f"theta {theta:4.0f}: found {found}/{len(idx)}  accuracy {right.mean() * 100:5.1f} % (of the faces "
                f"found {np.mean(found_right) * 100:5.1f} %)  roll read "
                f"|{q[0]:.1f} {q[1]:.1f} {q[2]:.1f}| deg (10th, 50th, 90th percentile), "
                f"{np.mean(np.array(read) >= UPRIGHT_MIN_ROLL) * 100:.0f} % of faces turned, "
                f"eye-line error median {np.median(residual):.1f} deg, "
                f"detection {np.mean([results[f][1] for f in files]) / 1000:.2f} ms a frame (mean)")
        if levels is None:
            levels = right
        else:
            d = paired_difference(levels, right)
            line += f"; against theta 0 {d['difference'] * 100:+.1f} (p = {d['p_mcnemar']:.3f})"
        print(line, flush=True)
        if base is not None:
            b_right, b_read, b_residual, _ = score(base, files, idx, turns, labels)
            d = paired_difference(b_right, right)
            print(f"            {args.baseline}: found {len(b_read)}, accuracy {b_right.mean() * 100:5.1f} %, "
                  f"eye-line error median {np.median(b_residual):.1f} deg, {np.mean(np.array(b_read) >= lean) * 100:.0f} % "
                  f"of faces read as leaning {lean:g} deg or more, detection "
                  f"{np.mean([base[f][1] for f in files]) / 1000:.2f} ms a frame; {args.detector} against it "
                  f"{d['difference'] * 100:+.1f} (p = {d['p_mcnemar']:.3f}; right only with it {d['right_only_b']}, "
                  f"only with {args.baseline} {d['right_only_a']})", flush=True)


def score(results, files, idx, turns, labels):
    """Per face: right (a face missed is a face not recognised), and for the faces found: the roll
    read, its error against the turn, right."""
    right, read, residual, found_right = [], [], [], []
    for f, i, turn in zip(files, idx, turns):
        faces = results[f][0]
        if not faces:
            right.append(False)
            continue
        face = max(faces, key=lambda d: d["box"][2] * d["box"][3])
        right.append(face["emotion"] == EMOTIONS[labels[i]])
        found_right.append(right[-1])
        read.append(abs(face.get("roll", 0.0)))
        residual.append(abs(face.get("roll", 0.0) + turn))  # OpenCV turns counter-clockwise as seen
    return np.array(right), read, residual, found_right


if __name__ == "__main__":
    main()

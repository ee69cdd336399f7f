#!/usr/bin/env python3
"""Measure how well each face detector of emotiond finds faces, through the real daemon.

Composes test photos from FER2013 PublicTest faces (known positions), runs `emotiond` once per
detector and `emotion analyze --json` on every photo, and counts a placed face as found when a
returned box overlaps it with IoU >= 0.3 (FER2013 crops are a little looser than detector
boxes). Recall is also split by face size (side in pixels of the 640x480 photo). Real photos
given with --photo (and their expected face count) are reported too.

    /usr/bin/python3 scripts/eval_detectors.py --data fer2013.csv.gz --model models/emonet-xs.json \
        --yunet face_detection_yunet_2022mar.onnx \
        [--blazeface face_detection_front_128x128_barracuda.onnx] \
        [--blazeface-back face_detection_back_256x256_barracuda.onnx] \
        [--photo astronaut.png:1 ...] [--n 150]

With --calibrate, it also prints how the daemon's BlazeFace boxes still differ from YuNet's on the
faces both found (the classifier's framing was measured on YuNet boxes), and the constants
BLAZE_TO_YUNET_* in daemon/vision/detect_blazeface.cpp that would remove that difference.
"""
import argparse
import csv
import gzip
import io
import json
import os
import re
import subprocess
import sys
import tempfile
import time

import cv2
import numpy as np


EMOTIONS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")  # FER2013 label order


def load_public_test(path, limit):
    faces, labels = [], []
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt") as f:
        for row in csv.DictReader(f):
            if row["Usage"] == "PublicTest":
                faces.append(np.array(row["pixels"].split(), np.uint8).reshape(48, 48))
                labels.append(EMOTIONS[int(row["emotion"])])
                if len(faces) >= limit:
                    break
    return faces, labels


def compose(faces, labels, rng, out_dir, n_images):
    """640x480 photos with 1-4 faces of 60-220 px on textured backgrounds; returns truth boxes and
    the label of each placed face."""
    truth, truth_labels, k = {}, {}, 0
    for i in range(n_images):
        bg = rng.integers(60, 200)
        img = np.clip(rng.normal(bg, 25, (480, 640)), 0, 255).astype(np.uint8)
        img = cv2.GaussianBlur(img, (0, 0), 3)
        boxes, tries = [], 0
        want = int(rng.integers(1, 5))
        while len(boxes) < want and tries < 100:
            tries += 1
            s = int(rng.integers(60, 221))
            x, y = int(rng.integers(0, 640 - s)), int(rng.integers(0, 480 - s))
            if any(x < bx + bs and bx < x + s and y < by + bs and by < y + s for bx, by, bs, _ in boxes):
                continue
            face = cv2.resize(faces[k % len(faces)], (s, s), interpolation=cv2.INTER_CUBIC)
            img[y:y + s, x:x + s] = face
            boxes.append((x, y, s, labels[k % len(faces)]))
            k += 1
        name = os.path.join(out_dir, f"composite-{i:04d}.jpg")
        cv2.imwrite(name, img, [cv2.IMWRITE_JPEG_QUALITY, 90])
        truth[name] = [(x, y, s, s) for x, y, s, _ in boxes]
        truth_labels[name] = [label for _, _, _, label in boxes]
    return truth, truth_labels


def iou(a, b):
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    iw = max(0, min(ax + aw, bx + bw) - max(ax, bx))
    ih = max(0, min(ay + ah, by + bh) - max(ay, by))
    inter = iw * ih
    return inter / float(aw * ah + bw * bh - inter) if inter else 0.0


DETECTORS = {  # name -> (emotiond --detector, model option, args attribute)
    "yunet": ("yunet", "--yunet-model", "yunet"),
    "blazeface": ("blazeface", "--blazeface-model", "blazeface"),
    "blazeface-back": ("blazeface", "--blazeface-model", "blazeface_back"),
    "haar": ("haar", None, None),
}


def analyze(bin_dir, args, detector, files):
    """detector: a DETECTORS name, optionally "@N" for detect_max_side=N (YuNet, Haar); "yunet+lean"
    is YuNet with its lean check by the BlazeFace file of args.blazeface, which plain "yunet" runs
    without, whatever is installed."""
    detector, _, max_side = detector.partition("@")
    detector, _, lean = detector.partition("+")
    kind, option, attr = DETECTORS[detector]
    with tempfile.TemporaryDirectory() as run:
        ep = f"ipc://{run}/e.sock"
        cmd = [os.path.join(bin_dir, "emotiond"), "--endpoint", ep, "--model", args.model,
               "--dialogue-dir", args.dialogue, "--detector", kind, "-w", "1"]
        if option:
            cmd += [option, getattr(args, attr)]
        if max_side:
            cmd += ["--set", f"detect_max_side={max_side}"]
        if kind == "yunet":
            cmd += ["--set", f"lean_check={'true' if lean else 'false'}"]
            if lean:
                cmd += ["--blazeface-model", args.blazeface]
        log = open(os.path.join(run, "log"), "w+")
        daemon = subprocess.Popen(cmd, stderr=log)
        try:
            ready = False
            for _ in range(100):
                if subprocess.run([os.path.join(bin_dir, "emotion"), "health", "--server", ep, "--timeout", "200",
                                   "--attempts", "1"], capture_output=True).returncode == 0:
                    ready = True
                    break
                if daemon.poll() is not None:
                    break
                time.sleep(0.1)
            if not ready:
                log.seek(0)
                sys.exit(f"eval_detectors: emotiond ({kind}) did not start:\n{log.read()}")
            done = subprocess.run([os.path.join(bin_dir, "emotion"), "analyze", "--json", "--server", ep,
                                   "--timeout", "60000"] + files, capture_output=True, text=True)
        finally:
            daemon.terminate()
            daemon.wait()
            log.close()
    results = {}
    for line in done.stdout.splitlines():
        d = json.loads(line)
        if d["status"] != "ok":
            # A photo the daemon could not analyse would count as faces missed: stop instead.
            sys.exit(f"eval_detectors: {d['file']}: {d['status']}: {d.get('error', '')}")
        results[d["file"]] = (d.get("faces", []), d.get("timing_us", {}).get("detect", 0))
    if done.returncode != 0 or len(results) != len(files):
        sys.exit(f"eval_detectors: emotion analyze exited {done.returncode} with {len(results)} of {len(files)} "
                 f"results:\n{done.stderr}")
    return results


def match(truth, res):
    """{(photo, i): detected box} for the placed faces found (IoU >= 0.3, one box per face), and
    {(photo, i): emotion the daemon gave it}."""
    found, emotions = {}, {}
    fp = 0
    for name, boxes in truth.items():
        faces = res.get(name, ([], 0))[0]
        dets = [tuple(f["box"]) for f in faces]
        used = set()
        for i, b in enumerate(boxes):
            best = max((j for j in range(len(dets)) if j not in used), key=lambda j: iou(b, dets[j]), default=None)
            if best is not None and iou(b, dets[best]) >= 0.3:
                used.add(best)
                found[(name, i)] = dets[best]
                emotions[(name, i)] = faces[best]["emotion"]
        fp += len(dets) - len(used)
    return found, fp, emotions


def current_constants(source):
    text = open(source).read()
    m = re.search(r"BLAZE_TO_YUNET_SCALE = ([-\d.]+), BLAZE_TO_YUNET_DX = ([-\d.]+), BLAZE_TO_YUNET_DY = ([-\d.]+)", text)
    return tuple(float(v) for v in m.groups())


def calibrate(yunet, blaze, source):
    """Residual mapping from the daemon's BlazeFace boxes to YuNet's, composed with the constants
    in use: side' = side * k, centre' = centre + d * side'."""
    k0, dx0, dy0 = current_constants(source)
    r, ex, ey = [], [], []
    for key in yunet.keys() & blaze.keys():
        yx, yy, yw, yh = yunet[key]
        bx, by, bw, bh = blaze[key]
        ys, bs = max(yw, yh), max(bw, bh)
        r.append(ys / bs)
        ex.append((yx + yw / 2 - (bx + bw / 2)) / ys)
        ey.append((yy + yh / 2 - (by + bh / 2)) / ys)
    if not r:
        print("no face found by both detectors")
        return
    rm, exm, eym = float(np.median(r)), float(np.median(ex)), float(np.median(ey))
    print(f"BlazeFace vs YuNet on {len(r)} faces: residual scale {rm:.4f} (IQR {np.percentile(r, 25):.3f}-"
          f"{np.percentile(r, 75):.3f}), centre offset x {exm:+.4f} y {eym:+.4f} of the side")
    print(f"constants now: scale {k0}, dx {dx0}, dy {dy0}")
    print(f"constants that remove the residual: BLAZE_TO_YUNET_SCALE = {k0 * rm:.4f}, "
          f"BLAZE_TO_YUNET_DX = {dx0 / rm + exm:.4f}, BLAZE_TO_YUNET_DY = {dy0 / rm + eym:.4f}")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--yunet", required=True)
    p.add_argument("--blazeface", help="face_detection_front_128x128_barracuda.onnx")
    p.add_argument("--blazeface-back", help="face_detection_back_256x256_barracuda.onnx")
    p.add_argument("--dialogue", default="deploy/dialogue")
    p.add_argument("--bin", default="build/bin")
    p.add_argument("--n", type=int, default=150, help="composite photos")
    p.add_argument("--photo", action="append", default=[], help="PATH:N real photo with N faces")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--yunet-max-side", type=int, action="append", default=[],
                   help="also run YuNet on images scaled down to this longest side (repeatable)")
    p.add_argument("--calibrate", action="store_true", help="BlazeFace-to-YuNet box mapping (needs --blazeface)")
    p.add_argument("--source", default="daemon/vision/detect_blazeface.cpp", help="where the mapping constants live")
    args = p.parse_args()
    rng = np.random.default_rng(args.seed)
    faces, labels = load_public_test(args.data, 2000)
    detectors = ["yunet"] + [f"yunet@{n}" for n in args.yunet_max_side] + [d for d in ("blazeface", "blazeface-back") if getattr(args, d.replace("-", "_"))] + ["haar"]
    sizes = ((60, 100), (100, 160), (160, 221))
    with tempfile.TemporaryDirectory() as tmp:
        truth, truth_labels = compose(faces, labels, rng, tmp, args.n)
        photos = [(ph.rsplit(":", 1)[0], int(ph.rsplit(":", 1)[1])) for ph in args.photo]
        files = sorted(truth) + [ph for ph, _ in photos]
        total = sum(len(v) for v in truth.values())
        print(f"{args.n} composite photos, {total} FER2013 PublicTest faces; {len(photos)} real photos")
        size_head = " ".join(f"{f'{lo}-{hi - 1}px':>9}" for lo, hi in sizes)
        print(f"{'detector':14} {'recall':>7} {size_head} {'false+/img':>10} {'detect ms (median)':>19} "
              f"{'emotion acc':>11}  real photos (found/expected)")
        matched = {}
        for det in detectors:
            res = analyze(args.bin, args, det, files)
            found, fp, emotions = match(truth, res)
            # Of the faces found, how many the daemon gave their FER2013 label (through detection,
            # decoding and cropping, unlike `emotion eval`, which sends the 48x48 faces as they are).
            right = sum(emotions[k] == truth_labels[k[0]][k[1]] for k in emotions)
            matched[det] = found
            by_size = []
            for lo, hi in sizes:
                keys = [(n, i) for n, bs in truth.items() for i, b in enumerate(bs) if lo <= b[2] < hi]
                by_size.append(sum(k in found for k in keys) / max(1, len(keys)))
            times = [res.get(name, ([], 0))[1] / 1000 for name in truth]
            real = ", ".join(f"{os.path.basename(ph)} {len(res.get(ph, ([], 0))[0])}/{n}" for ph, n in photos)
            sz = " ".join(f"{v:9.3f}" for v in by_size)
            acc = f"{right / len(emotions):.3f}" if emotions else "-"
            print(f"{det:14} {len(found) / total:7.3f} {sz} {fp / len(truth):10.2f} {np.median(times):19.1f} "
                  f"{acc:>11}  {real}")
        if args.calibrate:
            for det in ("blazeface", "blazeface-back"):
                if det in matched:
                    print(f"{det}:")
                    calibrate(matched["yunet"], matched[det], args.source)


if __name__ == "__main__":
    sys.exit(main())

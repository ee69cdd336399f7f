#!/usr/bin/env python3
"""Measure how well each face detector of emotiond finds faces, through the real daemon.

Composes test photos from FER2013 PublicTest faces (known positions), runs `emotiond` once per
detector and `emotion analyze --json` on every photo, and counts a placed face as found when a
returned box overlaps it with IoU >= 0.3 (FER2013 crops are a little looser than detector
boxes). Real photos given with --photo (and their expected face count) are reported too.

    /usr/bin/python3 scripts/eval_detectors.py --data fer2013.csv.gz --model models/emonet-s.json \
        --yunet face_detection_yunet_2022mar.onnx [--photo astronaut.png:1 ...] [--n 150]
"""
import argparse
import csv
import gzip
import io
import json
import os
import subprocess
import sys
import tempfile
import time

import cv2
import numpy as np


def load_public_test(path, limit):
    faces = []
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt") as f:
        for row in csv.DictReader(f):
            if row["Usage"] == "PublicTest":
                faces.append(np.array(row["pixels"].split(), np.uint8).reshape(48, 48))
                if len(faces) >= limit:
                    break
    return faces


def compose(faces, rng, out_dir, n_images):
    """640x480 photos with 1-4 faces of 60-220 px on textured backgrounds; returns truth boxes."""
    truth, k = {}, 0
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
            if any(x < bx + bs and bx < x + s and y < by + bs and by < y + s for bx, by, bs in boxes):
                continue
            face = cv2.resize(faces[k % len(faces)], (s, s), interpolation=cv2.INTER_CUBIC)
            k += 1
            img[y:y + s, x:x + s] = face
            boxes.append((x, y, s))
        name = os.path.join(out_dir, f"composite-{i:04d}.jpg")
        cv2.imwrite(name, img, [cv2.IMWRITE_JPEG_QUALITY, 90])
        truth[name] = [(x, y, s, s) for x, y, s in boxes]
    return truth


def iou(a, b):
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    iw = max(0, min(ax + aw, bx + bw) - max(ax, bx))
    ih = max(0, min(ay + ah, by + bh) - max(ay, by))
    inter = iw * ih
    return inter / float(aw * ah + bw * bh - inter) if inter else 0.0


def analyze(bin_dir, args, detector, files):
    with tempfile.TemporaryDirectory() as run:
        ep = f"ipc://{run}/e.sock"
        cmd = [os.path.join(bin_dir, "emotiond"), "--endpoint", ep, "--model", args.model,
               "--dialogue-dir", args.dialogue, "--detector", detector, "-w", "1"]
        if detector == "yunet":
            cmd += ["--yunet-model", args.yunet]
        daemon = subprocess.Popen(cmd, stderr=subprocess.DEVNULL)
        try:
            for _ in range(100):
                if subprocess.run([os.path.join(bin_dir, "emotion"), "health", "--server", ep, "--timeout", "200",
                                   "--attempts", "1"], capture_output=True).returncode == 0:
                    break
                time.sleep(0.1)
            out = subprocess.run([os.path.join(bin_dir, "emotion"), "analyze", "--json", "--server", ep,
                                  "--timeout", "60000"] + files, capture_output=True, text=True).stdout
        finally:
            daemon.terminate()
            daemon.wait()
    results = {}
    for line in out.splitlines():
        d = json.loads(line)
        results[d["file"]] = (d.get("faces", []), d.get("timing_us", {}).get("detect", 0))
    return results


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--yunet", required=True)
    p.add_argument("--dialogue", default="deploy/dialogue")
    p.add_argument("--bin", default="build/bin")
    p.add_argument("--n", type=int, default=150, help="composite photos")
    p.add_argument("--photo", action="append", default=[], help="PATH:N real photo with N faces")
    p.add_argument("--seed", type=int, default=7)
    args = p.parse_args()
    rng = np.random.default_rng(args.seed)
    faces = load_public_test(args.data, 2000)
    with tempfile.TemporaryDirectory() as tmp:
        truth = compose(faces, rng, tmp, args.n)
        photos = [(ph.rsplit(":", 1)[0], int(ph.rsplit(":", 1)[1])) for ph in args.photo]
        files = sorted(truth) + [ph for ph, _ in photos]
        print(f"{args.n} composite photos, {sum(len(v) for v in truth.values())} FER2013 PublicTest faces; "
              f"{len(photos)} real photos")
        print(f"{'detector':8} {'recall':>7} {'false+/img':>10} {'detect ms (median)':>19}  real photos (found/expected)")
        for det in ("yunet", "haar"):
            res = analyze(args.bin, args, det, files)
            found = total = fp = 0
            times = []
            for name, boxes in truth.items():
                got, t = res.get(name, ([], 0))
                times.append(t / 1000)
                dets = [tuple(f["box"]) for f in got]
                used = set()
                for b in boxes:
                    total += 1
                    best = max(range(len(dets)), key=lambda j: iou(b, dets[j]), default=None)
                    if best is not None and best not in used and iou(b, dets[best]) >= 0.3:
                        used.add(best)
                        found += 1
                fp += len(dets) - len(used)
            real = ", ".join(f"{os.path.basename(ph)} {len(res.get(ph, ([], 0))[0])}/{n}" for ph, n in photos)
            print(f"{det:8} {found / total:7.3f} {fp / len(truth):10.2f} {np.median(times):19.1f}  {real}")


if __name__ == "__main__":
    sys.exit(main())

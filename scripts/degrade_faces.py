#!/usr/bin/env python3
"""Write a copy of a Kaggle-format face CSV with every face put through camera faults, to measure
how a model holds up on poor cameras (`emotion-model compare --data OUT.csv.gz`).

The faults are made with OpenCV and differ from the training's `--camera-augment` (which has no
loss of resolution and its own JPEG), so that a model trained with that augmentation is not tested
on its own training faults: each face is shrunk to 20-32 px and enlarged back (a distant face),
given a gamma of 0.7 or 1.4 (under- or over-exposed), Gaussian noise of sigma 6 grey levels, and
encoded by OpenCV's JPEG encoder at quality 20-40. The seed is fixed, so the copy is the same
every time:

    /usr/bin/python3 scripts/degrade_faces.py ckplus48.csv.gz /tmp/ckplus48-camera.csv.gz
"""
import argparse
import csv
import gzip

import cv2
import numpy as np


def degrade(face, rng):
    side = int(rng.integers(20, 33))
    x = cv2.resize(face, (side, side), interpolation=cv2.INTER_AREA)
    x = cv2.resize(x, face.shape[::-1], interpolation=cv2.INTER_LINEAR)
    gamma = 0.7 if rng.random() < 0.5 else 1.4
    x = 255 * (x / 255.0) ** gamma
    x = np.clip(x + rng.normal(0, 6, x.shape), 0, 255).astype(np.uint8)
    quality = int(rng.integers(20, 41))
    return cv2.imdecode(cv2.imencode(".jpg", x, [cv2.IMWRITE_JPEG_QUALITY, quality])[1], cv2.IMREAD_GRAYSCALE)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("src", help="Kaggle-format CSV (.csv or .csv.gz): emotion, pixels[, Usage]")
    ap.add_argument("dst", help="where to write the copy (.csv.gz is compressed)")
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    opener = lambda path, mode: gzip.open(path, mode) if path.endswith(".gz") else open(path, mode, newline="")
    with opener(args.src, "rt") as f_in, opener(args.dst, "wt") as f_out:
        reader = csv.DictReader(f_in)
        writer = csv.DictWriter(f_out, fieldnames=reader.fieldnames)
        writer.writeheader()
        n = 0
        for row in reader:
            face = np.array(row["pixels"].split(), np.uint8).reshape(48, 48)
            row["pixels"] = " ".join(map(str, degrade(face, rng).ravel()))
            writer.writerow(row)
            n += 1
    print(f"wrote {n} faces to {args.dst}")


if __name__ == "__main__":
    main()

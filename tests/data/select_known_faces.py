#!/usr/bin/python3
"""Choose the known faces of tests/data/known_faces.csv: FER2013 PublicTest faces that the shipped
model classifies correctly, both ways the daemon can see them, so that the daemon tests can demand
the right emotion for each of them.

    /usr/bin/python3 tests/data/select_known_faces.py --fer FER2013.csv.gz \
        --model models/emonet-xs.json --yunet face_detection_yunet_2022mar.onnx \
        --out tests/data/known_faces.csv

How the list is made (run once, when the shipped model changes; the CSV records which model):
  1. Every PublicTest face goes through the ONNX model in OpenCV DNN with the metadata's
     normalisation and test-time augmentation, exactly as the daemon classifies a client-supplied
     48x48 region with exact_crop. A face is a candidate when the top class is its FER2013 label
     with a probability of at least --min-confidence (default 0.6): a clear win, which tiny
     numerical differences between OpenCV builds cannot flip.
  2. Candidates are taken in PublicTest order, --per-class of each class (disgust, rare in FER2013,
     may have fewer), and composed four to a photo exactly as make_fixtures.py composes known_N.jpg.
     Each photo is JPEG-encoded and decoded, run through YuNet as the daemon's defaults do (score
     >= 0.6, the photo scaled down to --detect-max-side 320 px) and each detected box is framed with the metadata's framing, cropped, resized and
     classified as the daemon does. A face stays when exactly one detection matches it (IoU >= 0.3),
     that crop is classified as its label too, and no stray detection lies on its patch; otherwise
     it is dropped and the next candidate of its class takes its place, until every face of every
     photo passes.
The detection check makes the photo test (b) pass for the selection by construction with OpenCV
4.6; the daemon test still allows a stated fraction of misses for other OpenCV builds."""
import argparse
import math
import sys

import cv2
import numpy as np

# make_fixtures.py sits beside this script, whose folder Python puts first on the module path.
import make_fixtures as mf

NAMES = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]


def iou(a, b):
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    ix = max(0, min(ax + aw, bx + bw) - max(ax, bx))
    iy = max(0, min(ay + ah, by + bh) - max(ay, by))
    inter = ix * iy
    return inter / float(aw * ah + bw * bh - inter)


def framed_crop(img, box, framing, size):
    """The daemon's crop of a detector box (face_region and emo_classifier_classify in daemon/vision/classify.cpp)."""
    x, y, w, h = box
    side = framing["scale"] * max(w, h)
    cx = x + w / 2 + framing["offset_x"] * side
    cy = y + h / 2 + framing["offset_y"] * side
    s = max(1, int(math.floor(side + 0.5)))
    x0, y0 = int(math.floor(cx - side / 2 + 0.5)), int(math.floor(cy - side / 2 + 0.5))
    left, top = max(0, -x0), max(0, -y0)
    right, bottom = max(0, x0 + s - img.shape[1]), max(0, y0 + s - img.shape[0])
    if left or top or right or bottom:
        img = cv2.copyMakeBorder(img, top, bottom, left, right, cv2.BORDER_REPLICATE)
        x0, y0 = x0 + left, y0 + top
    gray = cv2.cvtColor(img[y0:y0 + s, x0:x0 + s], cv2.COLOR_BGR2GRAY)
    return cv2.resize(gray, (size, size), interpolation=cv2.INTER_AREA if s > size else cv2.INTER_LINEAR)


def detect(det, img, max_side):
    """YuNet boxes in img's pixels, found on img scaled down to max_side as the daemon does."""
    f = min(1.0, max_side / max(img.shape[:2])) if max_side else 1.0
    small = cv2.resize(img, None, fx=f, fy=f, interpolation=cv2.INTER_AREA) if f < 1 else img
    det.setInputSize((small.shape[1], small.shape[0]))
    _, found = det.detect(small)
    return [] if found is None else [tuple(int(v / f) for v in b[:4]) for b in found]


def check_photo(placed, img, det, meta, net, max_side):
    """Indices (into placed) of the faces that fail the detection-path check."""
    boxes = detect(det, img, max_side)
    failed = set()
    for i, p in enumerate(placed):
        matches = [b for b in boxes if iou(b, p["box"]) >= 0.3]
        if len(matches) != 1:
            failed.add(i)
            continue
        crop = framed_crop(img, matches[0], meta["framing"], meta["input"]["width"])
        probs = mf.predict(meta, net, crop[None])[0]
        if int(probs.argmax()) != p["label"]:
            failed.add(i)
    # A detection that matches no face (YuNet sometimes finds a small second "face" inside a
    # patch) counts against the face whose patch holds its centre.
    for b in boxes:
        if any(iou(b, p["box"]) >= 0.3 for p in placed):
            continue
        cx, cy = b[0] + b[2] / 2, b[1] + b[3] / 2
        dist = [abs(cx - (p["box"][0] + p["box"][2] / 2)) + abs(cy - (p["box"][1] + p["box"][3] / 2)) for p in placed]
        failed.add(int(np.argmin(dist)))
    return failed


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--fer", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--yunet", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--per-class", type=int, default=3)
    ap.add_argument("--min-confidence", type=float, default=0.6)
    ap.add_argument("--detect-max-side", type=int, default=320, help="the daemon's detect_max_side")
    args = ap.parse_args()

    meta, net, why = mf.load_model(args.model)
    if net is None:
        sys.exit(f"select_known_faces: {why}")
    _, labels, faces, _ = mf.read_publictest(args.fer)
    probs = mf.predict(meta, net, faces)
    pred = probs.argmax(axis=1)
    conf = probs.max(axis=1)
    candidates = {c: [int(i) for i in np.flatnonzero((labels == c) & (pred == c) & (conf >= args.min_confidence))]
                  for c in range(7)}
    det = cv2.FaceDetectorYN.create(args.yunet, "", (mf.W, mf.H), 0.6, 0.3, 5000)

    chosen = {c: candidates[c][:args.per_class] for c in range(7)}
    next_pos = {c: len(chosen[c]) for c in range(7)}
    while True:
        known = [{"index": i, "label": c} for c in range(7) for i in chosen[c]]
        rejected = []
        for k in range(0, len(known), len(mf.KNOWN_CELLS)):
            group = known[k:k + len(mf.KNOWN_CELLS)]
            layout = [(g["index"], mf.KNOWN_SIDE, cell) for g, cell in zip(group, mf.KNOWN_CELLS)]
            img, placed = mf.compose(layout, faces, labels)
            ok, jpeg = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, 92])
            img = cv2.imdecode(jpeg, cv2.IMREAD_COLOR)
            rejected += [placed[i] for i in check_photo(placed, img, det, meta, net, args.detect_max_side)]
        if not rejected:
            break
        for r in rejected:
            c = r["label"]
            chosen[c].remove(r["index"])
            if next_pos[c] < len(candidates[c]):
                chosen[c].append(candidates[c][next_pos[c]])
                next_pos[c] += 1
            chosen[c].sort()

    with open(args.out, "w") as f:
        f.write("# Known FER2013 PublicTest faces: PublicTest row index (0 = first PublicTest row of\n"
                "# fer2013.csv) and FER2013 label. tests/daemon/test_analyze.c requires the daemon to\n"
                "# classify each of them as its label. Made by tests/data/select_known_faces.py (its\n"
                "# docstring says how) with:\n"
                f"#   model {meta['name']} sha256 {meta['sha256']}\n"
                f"#   --per-class {args.per_class} --min-confidence {args.min_confidence}\n"
                "# Rerun it when the shipped model changes.\n")
        f.write("index,label\n")
        for c in range(7):
            for i in chosen[c]:
                f.write(f"{i},{c}\n")
                print(f"{NAMES[c]:9s} PublicTest {i:5d}  p={conf[i]:.3f}", file=sys.stderr)
    print(f"{sum(len(v) for v in chosen.values())} known faces written to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())

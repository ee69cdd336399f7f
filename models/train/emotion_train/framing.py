"""Framing: how a face-detector box becomes the 48x48 input the emotion CNN was trained on.

FER2013 faces were cropped by a different detector with its own margin, so a YuNet box fed
straight to the CNN frames the face differently from every training image. The framing is a
square around the box: side = scale * max(w, h), centre = box centre + (offset_x, offset_y) * side.
``calibrate`` measures it by showing YuNet FER2013 faces whose true frame is known, and
``crop_face`` is the reference implementation of what the daemon does with it.
"""
import json
import math

import cv2
import numpy as np

from . import IMAGE_SIZE

# Written into the model metadata when export is given no --framing-json: the medians measured by
# `emotion-model calibrate-framing --n 2000` (defaults otherwise) with face_detection_yunet_2022mar.onnx
# and OpenCV 4.6 on the Training + PublicTest rows; 1849 of 2000 faces detected. See models/README.md.
DEFAULT_FRAMING = {"scale": 1.0271, "offset_x": -0.0032, "offset_y": -0.0127}


def _round(v):
    # floor(v + 0.5), not Python's round-half-to-even, so that C's floor(v + 0.5) agrees.
    return int(math.floor(v + 0.5))


def frame_rect(box, framing):
    """Detector box (x, y, w, h) -> integer square (x0, y0, side) in image pixels."""
    x, y, w, h = box
    side = framing["scale"] * max(w, h)
    cx = x + w / 2 + framing["offset_x"] * side
    cy = y + h / 2 + framing["offset_y"] * side
    s = max(1, _round(side))
    return _round(cx - s / 2), _round(cy - s / 2), s


def crop_face(image, box, framing, size=IMAGE_SIZE):
    """Cut the framed square out of a BGR or grey image, padding with the replicated border where
    it leaves the image, and return it as uint8 grey [size, size]."""
    x0, y0, s = frame_rect(box, framing)
    h, w = image.shape[:2]
    # Pad only as much as the square sticks out; copyMakeBorder replicates the edge pixels.
    left, top = max(0, -x0), max(0, -y0)
    right, bottom = max(0, x0 + s - w), max(0, y0 + s - h)
    if left or top or right or bottom:
        image = cv2.copyMakeBorder(image, top, bottom, left, right, cv2.BORDER_REPLICATE)
        x0, y0 = x0 + left, y0 + top
    patch = image[y0:y0 + s, x0:x0 + s]
    if patch.ndim == 3:
        patch = cv2.cvtColor(patch, cv2.COLOR_BGR2GRAY)
    interp = cv2.INTER_AREA if s > size else cv2.INTER_LINEAR
    return cv2.resize(patch, (size, size), interpolation=interp)


# From how far a face is turned (degrees, its eye line) the daemon turns it upright before the
# model sees it: EMO_UPRIGHT_MIN_ROLL in daemon/vision/vision.h, measured by scripts/eval_roll.py.
UPRIGHT_MIN_ROLL = 10.0


def eye_roll(eyes):
    """Degrees the line from the right eye to the left (YuNet's first two key points, image
    coordinates) is turned from level, clockwise as seen (image y points down)."""
    (rx, ry), (lx, ly) = eyes
    return math.degrees(math.atan2(ly - ry, lx - rx))


def upright_crop(image, box, roll, framing, size=IMAGE_SIZE, min_roll=UPRIGHT_MIN_ROLL):
    """What the daemon gives the model for a face turned by roll degrees: crop_face below
    min_roll, else the framed square turned about its centre so that the eyes lie level, cut at
    twice the input's resolution and reduced (the turn's interpolation is then not the last word)."""
    if abs(roll) < min_roll:
        return crop_face(image, box, framing, size)
    x0, y0, side = frame_rect(box, framing)
    cx, cy = x0 + side / 2, y0 + side / 2
    out = 2 * size
    m = cv2.getRotationMatrix2D((cx, cy), roll, out / side)
    m[0, 2] += out / 2 - cx
    m[1, 2] += out / 2 - cy
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY) if image.ndim == 3 else image
    patch = cv2.warpAffine(grey, m, (out, out), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return cv2.resize(patch, (size, size), interpolation=cv2.INTER_AREA)


def make_scene(face, side, pad):
    """A 48x48 grey face enlarged to side x side in the middle of a canvas with `pad` pixels of
    replicated border on each side, as BGR (YuNet wants three channels). The face's frame in the
    canvas is then exactly (pad, pad, side, side)."""
    big = cv2.resize(face, (side, side), interpolation=cv2.INTER_CUBIC)
    canvas = cv2.copyMakeBorder(big, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    return cv2.cvtColor(canvas, cv2.COLOR_GRAY2BGR)


def calibrate(images, detector_path, side=192, pad_ratio=1.0, score_threshold=0.9):
    """Show each face to YuNet at `side` pixels inside a border of pad_ratio * side and compare the
    detection with the known frame. Returns (framing dict with medians, per-face array
    [scale, offset_x, offset_y] of the detected faces).

    A canvas only slightly larger than the face biases the boxes (YuNet then sees the border
    streaks as part of the head); from a border of about half the face side on the medians settle,
    so the default gives the detector the context a face has in a webcam frame."""
    pad = int(round(side * pad_ratio))
    size = side + 2 * pad
    det = cv2.FaceDetectorYN.create(detector_path, "", (size, size), score_threshold, 0.3, 50)
    frame_c = pad + side / 2
    found = []
    for face in images:
        _, faces = det.detect(make_scene(face, side, pad))
        if faces is None:
            continue
        # The face we placed is the detection whose centre lies inside its frame; streaks in the
        # border occasionally produce a second, spurious one.
        cx = faces[:, 0] + faces[:, 2] / 2
        cy = faces[:, 1] + faces[:, 3] / 2
        inside = (np.abs(cx - frame_c) < side / 2) & (np.abs(cy - frame_c) < side / 2)
        if not inside.any():
            continue
        bx, by, bw, bh = faces[inside][np.argmax(faces[inside, -1])][:4]
        found.append((side / max(bw, bh), (frame_c - (bx + bw / 2)) / side, (frame_c - (by + bh / 2)) / side))
    found = np.array(found, dtype=np.float64).reshape(-1, 3)
    if not len(found):
        return None, found
    med = np.median(found, axis=0)
    return {"scale": float(med[0]), "offset_x": float(med[1]), "offset_y": float(med[2])}, found


def load_framing(path):
    """Read a framing JSON (as written by calibrate-framing) -> {scale, offset_x, offset_y}."""
    with open(path) as f:
        d = json.load(f)
    try:
        framing = {k: float(d[k]) for k in ("scale", "offset_x", "offset_y")}
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"{path}: framing needs numeric scale, offset_x, offset_y ({e})") from None
    if not 0.2 <= framing["scale"] <= 5.0:
        raise ValueError(f"{path}: framing scale {framing['scale']} is implausible")
    return framing


def run_calibrate(args):
    from .data import load_dataset
    images, _, usages = load_dataset(args.data, args.cache)
    rng = np.random.default_rng(args.seed)
    pick = rng.choice(len(images), size=min(args.n, len(images)), replace=False)
    cv2.setNumThreads(args.threads)
    framing, found = calibrate(images[pick], args.detector, side=args.side, pad_ratio=args.pad,
                               score_threshold=args.score_threshold)
    print(f"detected {len(found)} / {len(pick)} faces (YuNet score >= {args.score_threshold}, "
          f"face {args.side} px, border {args.pad:g} x face)")
    if framing is None:
        raise ValueError("no face detected; is the detector a YuNet model OpenCV can run?")
    q = np.percentile(found, [25, 75], axis=0)
    for i, k in enumerate(("scale", "offset_x", "offset_y")):
        print(f"  {k:9s} median {framing[k]:+.4f}  (quartiles {q[0, i]:+.4f} .. {q[1, i]:+.4f})")
    out = dict(framing, detected=int(len(found)), tried=int(len(pick)))
    with open(args.out, "w") as f:
        json.dump(out, f, indent=2)
        f.write("\n")
    print(f"wrote {args.out}")

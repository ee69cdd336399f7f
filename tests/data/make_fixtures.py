#!/usr/bin/python3
"""Build the test fixtures of the C test suites into a folder of the build tree (CTest runs this as
the FIXTURES_SETUP test `fixtures`). Nothing it writes is committed: FER2013 faces are not ours to
redistribute, so every image is composed here, at test time, from the user's own FER2013 file.

    /usr/bin/python3 tests/data/make_fixtures.py --fer FER2013.csv.gz --model MODEL.json \
        --yunet face_detection_yunet_2022mar.onnx --known tests/data/known_faces.csv --out DIR

Writes into DIR:
  one_face.jpg, four_faces.jpg   640x480 photos composed from FER2013 PublicTest faces, enlarged and
                                 tinted to a skin colour, on a plain background
  one_face.bgr                   the pixels of one_face.jpg as decoded by OpenCV, raw BGR24 640x480
  no_face.jpg                    640x480 noise and soft shapes, no face
  video.avi                      Motion-JPEG AVI, 10 frames/s: 6 frames of one_face.jpg, 3 of
                                 no_face.jpg, 3 of four_faces.jpg (for `emotion watch`)
  still.avi                      Motion-JPEG AVI, 10 frames/s: 20 frames of four_faces.jpg, a scene
                                 that stays, where a live client follows a face from frame to frame
  known_N.jpg                    the faces of known_faces.csv, four per 640x480 photo
  random.bin                     4096 random bytes (fixed seed)
  truncated.jpg                  the first 60 % of one_face.jpg
  huge.png                       a PNG signature and a valid IHDR chunk claiming 100000x100000 pixels
  text.txt                       plain text, not an image
  publictest.gray, .labels       every PublicTest face (48x48 grey, 2304 bytes each) and its label
                                 (one byte each), in file order: tests index them by PublicTest row
  fer_publictest_200.csv         the header and the first 200 PublicTest rows (Kaggle layout)
  fer_bad.csv                    a FER2013 CSV whose third data row has 2303 pixel values
  fixtures.json                  where each face was placed, the known faces, and what the model
                                 gives in Python (OpenCV DNN, the metadata's normalisation and
                                 test-time augmentation): accuracy on the first 200 and 500
                                 PublicTest faces, the reference the daemon must match
A stamp of the inputs makes a second run with the same inputs a no-op.
"""
import argparse
import csv
import gzip
import hashlib
import json
import os
import struct
import sys
import zlib

import cv2
import numpy as np

W, H = 640, 480
MARGIN = 0.15      # replicated border around each enlarged face, as a fraction of its side
TINT = (0.76, 0.88, 1.0)  # B, G, R factors: a skin tone, so that BGR and RGB differ on the face
BACKGROUND = (150, 160, 170)

# Faces of the composite photos: PublicTest row index (within PublicTest) and enlarged side. They
# were picked because YuNet finds each of them at 150..220 pixels with a score over 0.9; they do
# not depend on the emotion model. Labels: 5 happy; 30 happy, 12 sad, 21 surprise, 49 neutral.
ONE_FACE = [(5, 220, (210, 110))]
FOUR_FACES = [(30, 200, (40, 30)), (12, 180, (390, 40)), (21, 165, (60, 285)), (49, 150, (410, 300))]
VIDEO_FPS = 10
VIDEO_LAYOUT = [("one_face.jpg", 6), ("no_face.jpg", 3), ("four_faces.jpg", 3)]
KNOWN_SIDE = 180
KNOWN_CELLS = [(70, 30), (390, 30), (70, 270), (390, 270)]  # top-left of each face, 4 per photo


def read_publictest(path):
    """All PublicTest rows of a FER2013 CSV: (labels uint8 [n], faces uint8 [n,48,48], raw lines)."""
    labels, faces, lines = [], [], []
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", newline="") as f:
        header = f.readline()
        for line in f:
            if not line.rstrip("\r\n").endswith(",PublicTest"):
                continue
            emotion, pixels, _ = line.rstrip("\r\n").split(",")
            labels.append(int(emotion))
            faces.append(np.array(pixels.split(), dtype=np.uint8).reshape(48, 48))
            lines.append(line if line.endswith("\n") else line + "\n")
    return header, np.array(labels, dtype=np.uint8), np.stack(faces), lines


def tinted_patch(face, side):
    """A 48x48 grey face enlarged to side x side, with a replicated border of MARGIN * side, as BGR."""
    big = cv2.resize(face, (side, side), interpolation=cv2.INTER_CUBIC)
    m = int(MARGIN * side)
    big = cv2.copyMakeBorder(big, m, m, m, m, cv2.BORDER_REPLICATE).astype(np.float32)
    bgr = np.stack([big * t for t in TINT], axis=-1)
    return np.clip(bgr + 0.5, 0, 255).astype(np.uint8), m


def compose(faces_at, faces, labels):
    """Paste faces on a 640x480 canvas. faces_at: (PublicTest index, side, (x, y) of the face's
    top-left corner). Returns the BGR image and the placements (box of the face itself, without
    its border, which is clipped at the canvas edges)."""
    canvas = np.empty((H, W, 3), np.uint8)
    canvas[:] = BACKGROUND
    placed = []
    for index, side, (x, y) in faces_at:
        patch, m = tinted_patch(faces[index], side)
        x0, y0 = x - m, y - m
        cx0, cy0 = max(0, x0), max(0, y0)
        cx1, cy1 = min(W, x0 + patch.shape[1]), min(H, y0 + patch.shape[0])
        canvas[cy0:cy1, cx0:cx1] = patch[cy0 - y0:cy1 - y0, cx0 - x0:cx1 - x0]
        placed.append({"box": [x, y, side, side], "index": int(index), "label": int(labels[index])})
    return canvas, placed


def no_face_image():
    rng = np.random.default_rng(7)
    img = rng.normal(128, 40, (H, W, 3)).clip(0, 255).astype(np.uint8)
    img = cv2.GaussianBlur(img, (0, 0), 3)
    cv2.rectangle(img, (60, 60), (250, 200), (40, 90, 200), -1)
    cv2.circle(img, (450, 300), 90, (200, 180, 40), -1)
    cv2.line(img, (0, 470), (639, 320), (255, 255, 255), 9)
    return img


def huge_png(width=100000, height=100000):
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", len(ihdr)) + chunk + struct.pack(">I", zlib.crc32(chunk))


def load_model(path):
    """(metadata, cv2.dnn net) or (metadata or None, None, reason) when the model is unusable."""
    try:
        with open(path) as f:
            meta = json.load(f)
        onnx = os.path.join(os.path.dirname(os.path.abspath(path)), meta["onnx"])
        with open(onnx, "rb") as f:
            digest = hashlib.sha256(f.read()).hexdigest()
        if digest != meta["sha256"].lower():
            return meta, None, f"{onnx}: sha256 {digest} does not match the metadata"
        return meta, cv2.dnn.readNetFromONNX(onnx), None
    except (OSError, ValueError, KeyError, cv2.error) as e:
        return None, None, f"{path}: {e}"


def predict(meta, net, faces):
    """Probabilities [n,7] of 48x48 grey faces, as the daemon computes them: x = (p*scale-mean)/std,
    averaged with the mirrored face when the metadata's tta is hflip, then multiplied by
    training_prior ** -power and renormalised when it has a prior_correction."""
    n = meta["normalization"]
    x = ((faces.astype(np.float32) * n["scale"] - n["mean"]) / n["std"])[:, None, :, :].astype(np.float32)
    out = []
    for start in range(0, len(x), 256):
        batch = x[start:start + 256]
        net.setInput(batch)
        p = net.forward().copy()
        if meta.get("tta") == "hflip":
            net.setInput(np.ascontiguousarray(batch[:, :, :, ::-1]))
            p = (p + net.forward()) / 2
        out.append(p)
    p = np.concatenate(out).astype(np.float64)
    pc = meta.get("prior_correction")
    if pc and pc["power"] > 0:
        p = p * np.asarray(pc["training_prior"], dtype=np.float64) ** -float(pc["power"])
        p /= p.sum(axis=1, keepdims=True)
    return p


def read_known(path):
    known = []
    with open(path) as f:
        for row in csv.reader(line for line in f if line.strip() and not line.startswith("#")):
            if row[0] == "index":
                continue
            known.append({"index": int(row[0]), "label": int(row[1])})
    return known


def stamp_of(args, script):
    h = hashlib.sha256()
    for p in (script, args.model, args.known):
        try:
            with open(p, "rb") as f:
                h.update(f.read())
        except OSError:
            h.update(b"-")
    try:  # the ONNX file next to the metadata, by content
        with open(args.model) as f:
            onnx = os.path.join(os.path.dirname(os.path.abspath(args.model)), json.load(f)["onnx"])
        with open(onnx, "rb") as f:
            h.update(f.read())
    except (OSError, ValueError, KeyError, TypeError):
        h.update(b"-")
    st = os.stat(args.fer)
    h.update(f"{os.path.abspath(args.fer)}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--fer", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--known", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    if not os.path.isfile(args.fer):
        sys.exit(f"make_fixtures: FER2013 not found at {args.fer}: the tests read it from ../shared next to the "
                 "checkout; configure with -DEMO_TEST_DATA_DIR=DIR (or EMO_TEST_DATA_DIR=DIR scripts/test.sh) "
                 "to use another folder")
    os.makedirs(args.out, exist_ok=True)
    stamp = stamp_of(args, os.path.abspath(__file__))
    stamp_path = os.path.join(args.out, "stamp")
    if os.path.exists(stamp_path) and open(stamp_path).read() == stamp:
        print(f"fixtures in {args.out} are up to date")
        return 0

    header, labels, faces, lines = read_publictest(args.fer)
    out = lambda name: os.path.join(args.out, name)
    faces.tofile(out("publictest.gray"))
    labels.tofile(out("publictest.labels"))
    with open(out("fer_publictest_200.csv"), "w", newline="") as f:
        f.write(header)
        f.writelines(lines[:200])
    with open(out("fer_bad.csv"), "w", newline="") as f:
        f.write(header)
        f.writelines(lines[:2])
        label, pixels, usage = lines[2].rstrip("\n").split(",")
        f.write(f"{label},{pixels.rsplit(' ', 1)[0]},{usage}\n")
        f.writelines(lines[3:5])

    images = {}
    for name, layout in (("one_face.jpg", ONE_FACE), ("four_faces.jpg", FOUR_FACES)):
        img, placed = compose(layout, faces, labels)
        cv2.imwrite(out(name), img, [cv2.IMWRITE_JPEG_QUALITY, 92])
        images[name] = {"width": W, "height": H, "faces": placed}
    cv2.imread(out("one_face.jpg"), cv2.IMREAD_COLOR).tofile(out("one_face.bgr"))
    cv2.imwrite(out("no_face.jpg"), no_face_image(), [cv2.IMWRITE_JPEG_QUALITY, 92])
    images["no_face.jpg"] = {"width": W, "height": H, "faces": []}

    video = {"file": "video.avi", "fps": VIDEO_FPS, "frames": []}
    writer = cv2.VideoWriter(out("video.avi"), cv2.VideoWriter_fourcc(*"MJPG"), VIDEO_FPS, (W, H))
    if not writer.isOpened():
        sys.exit("this OpenCV cannot write Motion-JPEG AVI files")
    for name, count in VIDEO_LAYOUT:
        img = cv2.imread(out(name), cv2.IMREAD_COLOR)
        for _ in range(count):
            writer.write(img)
            video["frames"].append(name)
    writer.release()
    writer = cv2.VideoWriter(out("still.avi"), cv2.VideoWriter_fourcc(*"MJPG"), VIDEO_FPS, (W, H))
    img = cv2.imread(out("four_faces.jpg"), cv2.IMREAD_COLOR)
    for _ in range(20):
        writer.write(img)
    writer.release()

    known = read_known(args.known)
    known_photos = []
    for k in range(0, len(known), len(KNOWN_CELLS)):
        group = known[k:k + len(KNOWN_CELLS)]
        layout = [(g["index"], KNOWN_SIDE, cell) for g, cell in zip(group, KNOWN_CELLS)]
        img, placed = compose(layout, faces, labels)
        name = f"known_{k // len(KNOWN_CELLS) + 1}.jpg"
        cv2.imwrite(out(name), img, [cv2.IMWRITE_JPEG_QUALITY, 92])
        known_photos.append({"file": name, "width": W, "height": H, "faces": placed})
    for g in known:
        if labels[g["index"]] != g["label"]:
            sys.exit(f"{args.known}: PublicTest row {g['index']} has label {labels[g['index']]}, not {g['label']}")

    with open(out("one_face.jpg"), "rb") as f:
        jpeg = f.read()
    with open(out("truncated.jpg"), "wb") as f:
        f.write(jpeg[:len(jpeg) * 6 // 10])
    with open(out("random.bin"), "wb") as f:
        f.write(np.random.default_rng(1234).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with open(out("huge.png"), "wb") as f:
        f.write(huge_png())
    with open(out("text.txt"), "w") as f:
        f.write("This is a text file, not an image.\n" * 20)

    meta, net, why = load_model(args.model)
    python = None
    if net is not None:
        probs = predict(meta, net, faces[:500])
        pred = probs.argmax(axis=1)
        python = {
            "model": meta["name"],
            "sha256": meta["sha256"],
            "accuracy_200": float((pred[:200] == labels[:200]).mean()),
            "accuracy_500": float((pred == labels[:500]).mean()),
            "predictions_500": [int(p) for p in pred],
        }
    else:
        print(f"warning: no Python reference figures: {why}", file=sys.stderr)
    with open(out("fixtures.json"), "w") as f:
        json.dump({"images": images, "video": video, "known": known, "known_photos": known_photos,
                   "publictest": {"n": int(len(labels)), "faces": "publictest.gray", "labels": "publictest.labels"},
                   "python": python, "python_unavailable": why}, f, indent=1)
    with open(stamp_path, "w") as f:
        f.write(stamp)
    print(f"fixtures written to {args.out} ({len(labels)} PublicTest faces, {len(known)} known faces)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

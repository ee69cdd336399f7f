#!/usr/bin/python3
"""Seed corpora for the fuzz targets of tests/fuzz, written under OUT/<target>/ (image and probe,
request, raw, config): small valid files of every format the daemon decodes, requests of every shape it
answers, raw geometries and configuration files. Nothing is committed; run it again at will.

    /usr/bin/python3 tests/fuzz/make_seeds.py OUT [--fer2013 FILE] [--conf FILE]

Needs OpenCV (cv2) and NumPy, as tests/data/make_fixtures.py. --fer2013 (the tests' fer2013.csv.gz)
adds a real face, so that detection and classification see one; --conf (the configured
build/deploy/emotiond.conf) adds the shipped configuration.
"""
import argparse
import gzip
import os
import struct
import sys

import cv2
import numpy as np


def write(folder, name, data):
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, name), "wb") as f:
        f.write(data)


def pattern(w, h, channels):
    y, x = np.mgrid[0:h, 0:w]
    g = ((x * 7 + y * 13) ^ (x * y)) & 0xFF
    img = np.dstack([g, (g + 85) & 0xFF, (g + 170) & 0xFF])[:, :, :channels].astype(np.uint8)
    return img[:, :, 0] if channels == 1 else img


def encode(ext, img, params=()):
    ok, buf = cv2.imencode(ext, img, list(params))
    assert ok, ext
    return buf.tobytes()


def images(face):
    """name -> encoded bytes: each format, grey and colour, at odd small sizes."""
    grey, colour = pattern(17, 11, 1), pattern(16, 9, 3)
    out = {
        "baseline.jpg": encode(".jpg", colour, (cv2.IMWRITE_JPEG_QUALITY, 80)),
        "grey.jpg": encode(".jpg", grey),
        "progressive.jpg": encode(".jpg", colour, (cv2.IMWRITE_JPEG_PROGRESSIVE, 1)),
        "restart.jpg": encode(".jpg", grey, (cv2.IMWRITE_JPEG_RST_INTERVAL, 1)),
        "grey.png": encode(".png", grey),
        "colour.png": encode(".png", colour, (cv2.IMWRITE_PNG_COMPRESSION, 9)),
        "sixteen.png": encode(".png", (pattern(5, 4, 3).astype(np.uint16) * 257)),
        "alpha.png": encode(".png", np.dstack([colour, pattern(16, 9, 1)])),
        "lossy.webp": encode(".webp", colour, (cv2.IMWRITE_WEBP_QUALITY, 50)),
        "lossless.webp": encode(".webp", colour, (cv2.IMWRITE_WEBP_QUALITY, 101)),
        "colour.bmp": encode(".bmp", colour),
        "grey.bmp": encode(".bmp", grey),
        "colour.tif": encode(".tif", colour),
        "grey.tif": encode(".tif", grey, (cv2.IMWRITE_TIFF_COMPRESSION, 1)),
        "grey.pgm": encode(".pgm", grey),
        "colour.ppm": encode(".ppm", colour),
        "ascii.pgm": b"P2\n# comment\n3 2\n255\n0 128 255\n255 128 0\n",
        "ascii.ppm": b"P3\n2 1\n255\n255 0 0 0 0 255\n",
        "bits.pbm": b"P1\n4 2\n0 1 0 1\n1 0 1 0\n",
        "packed.pbm": b"P4\n8 2\n\xaa\x55",
    }
    out.update(hostile())
    if face is not None:
        out["face.jpg"] = encode(".jpg", cv2.resize(face, (96, 96)))
        out["face.png"] = encode(".png", face)
    return out


def tiff(big_endian, entries, pixels):
    """A TIFF of one directory: entries (tag, type, values) in the order given, arrays that do not
    fit an entry after it, then `pixels` bytes of 0x80, where StripOffsets and TileOffsets point."""
    e = ">" if big_endian else "<"
    n = len(entries)
    after = 8 + 2 + 12 * n + 4
    extra = b""
    body = b""
    size = {3: 2, 4: 4}
    data_at = after + sum(len(v) * size[t] for _, t, v in entries if len(v) * size[t] > 4)
    for tag, typ, values in entries:
        if tag in (273, 324):
            values = [data_at]
        raw = b"".join(struct.pack(e + ("H" if typ == 3 else "I"), v) for v in values)
        if len(raw) > 4:
            body += struct.pack(e + "HHII", tag, typ, len(values), after + len(extra))
            extra += raw
        else:
            body += struct.pack(e + "HHI", tag, typ, len(values)) + raw.ljust(4, b"\0")
    head = (b"MM\0*" if big_endian else b"II*\0") + struct.pack(e + "IH", 8, n)
    return head + body + b"\0\0\0\0" + extra + b"\x80" * pixels


def bmp(bits, colours, rows=4, width=4):
    palette = 4 * (colours or (1 << bits)) if bits <= 8 else 0
    row = (width * bits + 31) // 32 * 4
    size = 54 + palette + row * rows
    return (b"BM" + struct.pack("<IHHI", size, 0, 0, 54 + palette)
            + struct.pack("<IiiHHIIiiII", 40, width, rows, 1, bits, 0, row * rows, 0, 0, colours, 0)
            + bytes(palette) + b"\x11" * (row * rows))


def hostile():
    """Headers whose fields size a decoder's buffers, each at or past what the daemon takes (issue
    22): regressions for the probes, and starting points for mutating those fields."""
    grey = [(256, 3, [64]), (257, 3, [64]), (258, 3, [8]), (259, 3, [1]), (262, 3, [1]), (277, 3, [1])]
    out = {}
    for be, order in ((False, "le"), (True, "be")):
        # 64 x 64 pixels in one 16384 x 16368 tile: OpenCV filled 1 GB for it (198 bytes).
        out[f"tile-bomb-{order}.tif"] = tiff(be, grey + [(322, 3, [16384]), (323, 3, [16368]), (324, 4, [0]),
                                                         (325, 4, [64])], 64)
        out[f"tiled-{order}.tif"] = tiff(be, grey + [(322, 3, [64]), (323, 3, [64]), (324, 4, [0]), (325, 4, [4096])],
                                         4096)
        # TileWidth without TileLength: libtiff makes the tile RowsPerStrip (16,776,960) rows long,
        # 4.3 GB (found by libFuzzer under -malloc_limit_mb=512).
        packed = [(t, y, [32773] if t == 259 else v) for t, y, v in grey]
        out[f"tile-length-from-rows-{order}.tif"] = tiff(be, packed + [(273, 4, [0]), (278, 4, [0xFFFF00]),
                                                                       (322, 4, [64])], 64)
        # Strips of 4,000,000 rows of a 64 x 64 image: 1 GB of address space. Compressed (PackBits),
        # or libtiff chops the one uncompressed strip into small ones itself.
        packbits = [(t, y, [32773] if t == 259 else v) for t, y, v in grey]
        out[f"strip-bomb-{order}.tif"] = tiff(be, packbits + [(273, 4, [0]), (278, 4, [4000000]), (279, 4, [64])], 64)
    rgba = [(256, 3, [8]), (257, 3, [8]), (258, 3, [8, 8, 8, 8]), (259, 3, [1]), (262, 3, [2]), (273, 4, [0]),
            (277, 3, [4]), (278, 4, [8]), (279, 4, [256]), (338, 3, [2])]
    out["rgba.tif"] = tiff(False, rgba, 256)
    out["five-samples.tif"] = tiff(False, [(t, y, [5] if t == 277 else [8] if t == 258 else v) for t, y, v in rgba], 320)
    out["sixteen.tif"] = tiff(True, [(256, 3, [8]), (257, 3, [8]), (258, 3, [16]), (259, 3, [1]), (262, 3, [1]),
                                     (273, 4, [0]), (277, 3, [1]), (278, 4, [8]), (279, 4, [128])], 128)
    out["palette-257.bmp"] = bmp(8, 257)
    out["palette-16.bmp"] = bmp(4, 16)
    out["fifteen-bits.bmp"] = bmp(15, 0)
    out["sixty-four-bits.bmp"] = bmp(64, 0)
    return out


def varint(n):
    n &= (1 << 64) - 1  # negative int32/int64 values take ten bytes, as protobuf writes them
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def field(number, value):
    """One field: an int is a varint, bytes or str are length-delimited."""
    if isinstance(value, int):
        return varint(number << 3) + varint(value)
    if isinstance(value, str):
        value = value.encode()
    return varint(number << 3 | 2) + varint(len(value)) + value


def message(*fields):
    return b"".join(field(n, v) for n, v in fields if v is not None)


def request(analyze=None, health=False, version=1, request_id=42):
    return message((1, version), (2, request_id), (10, analyze), (11, b"" if health else None))


def analyze(image, faces=(), options=None, stream_id=None, exact_crop=None, sequence=None):
    boxes = [message((1, x), (2, y), (3, w), (4, h)) for x, y, w, h in faces]
    return message((1, stream_id), (2, sequence), (3, -5), (4, 1000), (5, image),
                   *[(6, b) for b in boxes], (7, options), (8, exact_crop))


def image(fmt, data, width=None, height=None, stride=None):
    return message((1, fmt), (2, data), (3, width), (4, height), (5, stride))


def options(language=None, max_faces=None, probabilities=None, smooth=None):
    return message((1, language), (2, max_faces), (3, probabilities), (4, smooth))


ENCODED, GRAY8, BGR24, RGB24 = 1, 2, 3, 4


def requests(encoded, face):
    grey = pattern(64, 48, 1)
    bgr = pattern(20, 10, 3)
    out = {
        "health": request(health=True),
        "no_version": request(health=True, version=0),
        "no_body": request(),
        "no_image": request(analyze(None)),
        "gray8": request(analyze(image(GRAY8, grey.tobytes(), 64, 48))),
        "gray8_stride": request(analyze(image(GRAY8, np.pad(grey, ((0, 0), (0, 4))).tobytes(), 64, 48, 68))),
        "bgr24_faces": request(analyze(image(BGR24, bgr.tobytes(), 20, 10),
                                       faces=[(0, 0, 10, 10), (-5, -3, 40, 40), (19, 9, 1, 1)])),
        "rgb24_exact": request(analyze(image(RGB24, bgr.tobytes(), 20, 10), faces=[(2, 1, 8, 8)], exact_crop=1)),
        "options": request(analyze(image(GRAY8, grey.tobytes(), 64, 48), faces=[(10, 10, 30, 30)],
                                   options=options("en", 2, 1, 3), stream_id="desk-3", sequence=7)),
        "bad_language": request(analyze(image(GRAY8, grey.tobytes(), 64, 48), options=options("x" * 20))),
        "unknown_format": request(analyze(image(9, b"abc"))),
    }
    for name in ("baseline.jpg", "grey.png", "lossy.webp", "grey.bmp", "grey.tif", "grey.pgm"):
        out["encoded_" + name.replace(".", "_")] = request(analyze(image(ENCODED, encoded[name])))
    if face is not None:
        out["face"] = request(analyze(image(ENCODED, encoded["face.jpg"]), options=options(probabilities=1)))
        out["face_smoothed"] = request(analyze(image(GRAY8, face.tobytes(), 48, 48), faces=[(0, 0, 48, 48)],
                                               exact_crop=1, options=options("fr", smooth=5), stream_id="cam"))
    return out


def raws():
    def raw(fmt, w, h, stride, sized, data=b"\x80\x10"):
        return struct.pack("<BIIIB", fmt, w, h, stride, sized) + data

    return {
        "gray": raw(0, 10, 4, 0, 1),
        "bgr_stride": raw(1, 10, 4, 32, 1),
        "rgb": raw(2, 3, 3, 0, 0, bytes(27)),
        "short": raw(0, 10, 4, 0, 0, bytes(39)),
        "wide": raw(0, 4000000, 1, 0, 1),
        "tall": raw(1, 1, 1000000, 0, 1),
        "huge": raw(0, 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 1),
    }


def configs(shipped):
    out = {
        "empty.conf": b"",
        "server.conf": b"[server]\nworkers = 2\nthreads = 1\nqueue_capacity = 8\nendpoints = ipc:///tmp/e.sock, tcp://*:5560\n",
        "limits.conf": b"[limits]\nmax_pixels = 64\nmax_faces = 1024\nmax_message_bytes = 2147483648\n",
        "detector.conf": b"[detector]\ndetector = haar\nscore_threshold = 0.5e0\nmin_face = 1\n",
        "bad.conf": b"[model]\nworkers = -1\n[nowhere]\nx\n",
        "dialogue.conf": b"; comment\n[dialogue]\nlanguage = en-GB\ndialogue_dir = /tmp\n[model]\ndevice = cuda\n",
    }
    if shipped:
        with open(shipped, "rb") as f:
            out["shipped.conf"] = f.read()
    return out


def first_face(path):
    if not path or not os.path.exists(path):
        return None
    with gzip.open(path, "rt") as f:
        next(f)
        pixels = next(f).split(",")[1]
    return np.array([int(v) for v in pixels.split()], dtype=np.uint8).reshape(48, 48)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out")
    ap.add_argument("--fer2013", help="fer2013.csv.gz, for a real face")
    ap.add_argument("--conf", help="the configured emotiond.conf")
    args = ap.parse_args()
    face = first_face(args.fer2013)
    encoded = images(face)
    sets = {"image": encoded, "probe": encoded, "request": requests(encoded, face), "raw": raws(), "config": configs(args.conf)}
    for target, files in sets.items():
        for name, data in files.items():
            write(os.path.join(args.out, target), name, data)
        print(f"{args.out}/{target}: {len(files)} seeds", file=sys.stderr)


if __name__ == "__main__":
    main()

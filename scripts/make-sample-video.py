#!/usr/bin/python3
"""Write a 640x480 Motion-JPEG AVI from one photo: the photo, scaled to fit, drifting slowly left
and right over a grey background, so that a live preview has a face that moves. Used by
scripts/gtk-live.sh for the emotion-gtk figures and benchmark with a redistributable photo (the
public-domain astronaut portrait of scripts/quickstart.sh), not with the FER2013 test faces.

    make-sample-video.py PHOTO OUT.avi [--fps 25] [--seconds 10]
"""
import argparse
import math

import cv2
import numpy as np


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("photo")
    p.add_argument("out")
    p.add_argument("--fps", type=float, default=25)
    p.add_argument("--seconds", type=float, default=10)
    a = p.parse_args()
    img = cv2.imread(a.photo, cv2.IMREAD_COLOR)
    if img is None:
        raise SystemExit(f"{a.photo}: not an image")
    w, h = 640, 480
    scale = min((h - 40) / img.shape[0], (w - 160) / img.shape[1])
    img = cv2.resize(img, (int(img.shape[1] * scale), int(img.shape[0] * scale)), interpolation=cv2.INTER_AREA)
    writer = cv2.VideoWriter(a.out, cv2.VideoWriter_fourcc(*"MJPG"), a.fps, (w, h))
    if not writer.isOpened():
        raise SystemExit(f"{a.out}: cannot write")
    n = int(a.fps * a.seconds)
    room = w - img.shape[1]
    for i in range(n):
        frame = np.full((h, w, 3), 70, np.uint8)
        x = int(room / 2 + room / 2 * math.sin(2 * math.pi * i / n))
        y = (h - img.shape[0]) // 2
        frame[y:y + img.shape[0], x:x + img.shape[1]] = img
        writer.write(frame)
    writer.release()


if __name__ == "__main__":
    main()

#!/bin/sh
# Stage costs of the daemon's work in thread CPU time (build/bin/emo_bench_stages), on inputs
# composed from the test fixtures (run `ctest -R fixtures` first):
#   - the 640x480 fixture photos (one_face.jpg, four_faces.jpg, known_1..3.jpg);
#   - "group photos": known_1..3.jpg enlarged to 1920x1440 (four faces of 150-300 px each);
#   - a 15 frames/s stream: 150 frames of one_face.jpg panned over a padded canvas (the face moves
#     up to 140 px across and 100 px down and back over the 10 s).
# Each photo is run --reps times in full and in scaled decoding; the stream once per setting.
#
#   scripts/bench_stages.sh [BUILD_DIR] [REPS]
set -eu
build=${1:-build}
reps=${2:-30}
fixtures=$build/tests/fixtures
model=${EMO_MODEL:-models/emotion.json}
[ -e "$model" ] || model=models/emonet-xs.json
yunet=${EMO_YUNET:-$HOME/.local/share/emotiond/detectors/face_detection_yunet_2022mar.onnx}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

/usr/bin/python3 - "$fixtures" "$work" <<'EOF'
import math, os, sys
import cv2
import numpy as np
fixtures, work = sys.argv[1], sys.argv[2]
for i in (1, 2, 3):
    img = cv2.imread(os.path.join(fixtures, "known_%d.jpg" % i))
    big = cv2.resize(img, (1920, 1440), interpolation=cv2.INTER_CUBIC)
    cv2.imwrite(os.path.join(work, "group_%d.jpg" % i), big, [cv2.IMWRITE_JPEG_QUALITY, 90])
os.makedirs(os.path.join(work, "stream"))
face = cv2.imread(os.path.join(fixtures, "one_face.jpg"))
canvas = cv2.copyMakeBorder(face, 60, 60, 80, 80, cv2.BORDER_REFLECT)
for f in range(150):
    t = f / 15.0
    x = int(80 + 70 * math.sin(t))
    y = int(60 + 50 * math.cos(0.7 * t))
    cv2.imwrite(os.path.join(work, "stream", "f%03d.jpg" % f), canvas[y:y + 480, x:x + 640],
                [cv2.IMWRITE_JPEG_QUALITY, 85])
EOF

bench=$build/bin/emo_bench_stages
echo "## photos (median of $reps runs, ms of thread CPU time)"
"$bench" --model "$model" --yunet "$yunet" --reps "$reps" "$fixtures/one_face.jpg" "$fixtures/four_faces.jpg" \
        "$fixtures/known_1.jpg" "$fixtures/known_2.jpg" "$fixtures/known_3.jpg" "$work"/group_*.jpg |
        sed "s|$work/||; s|$fixtures/||"
echo
echo "## 15 frames/s stream, 150 frames (ms of thread CPU time per frame)"
"$bench" --model "$model" --yunet "$yunet" --stream --every 1 --full "$work"/stream/*.jpg
for k in 1 2 3 5; do
        "$bench" --model "$model" --yunet "$yunet" --stream --every $k "$work"/stream/*.jpg | tail -n 1
done

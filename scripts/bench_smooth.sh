#!/usr/bin/env bash
# What smoothing costs a stream: `emotion watch` over a 640x480 video of 300 frames (the fixture
# video's frames, repeated), with and without --smooth 5, against a local emotiond with 1 and 2
# workers. A smoothed stream's frames go to the workers one at a time, in order (docs/cli.md), so
# one smoothed stream cannot use a second worker; this prints how much that is, in frames/s.
#
#   scripts/bench_smooth.sh FER2013.csv.gz YUNET.onnx [MODEL.json]
set -euo pipefail
cd "$(dirname "$0")/.."
fer=${1:?FER2013 csv}; yunet=${2:?YuNet onnx}; model=${3:-models/emonet-xs.json}
out=build/bench
mkdir -p "$out"

# shellcheck source=scripts/daemon.sh
. scripts/daemon.sh
/usr/bin/python3 tests/data/make_fixtures.py --fer "$fer" --model "$model" \
        --known tests/data/known_faces.csv --out "$out" >/dev/null
/usr/bin/python3 - "$out/video.avi" "$out/video300.avi" <<'PY'
import sys, cv2
src = cv2.VideoCapture(sys.argv[1])
frames = []
while True:
    ok, f = src.read()
    if not ok:
        break
    frames.append(f)
h, w = frames[0].shape[:2]
dst = cv2.VideoWriter(sys.argv[2], cv2.VideoWriter_fourcc(*"MJPG"), 25, (w, h))
for i in range(300):
    dst.write(frames[i % len(frames)])
dst.release()
PY
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
for workers in 1 2; do
        daemon_start "$(mktemp -d)" --model "$model" --yunet-model "$yunet" --dialogue-dir deploy/dialogue \
                -w "$workers"
        for smooth in "" "--smooth 5" "" "--smooth 5"; do
                start=$(date +%s.%N)
                # shellcheck disable=SC2086 # $smooth is empty or two words
                n=$(build/bin/emotion watch --json $smooth --server "$daemon_endpoint" "$out/video300.avi" | wc -l)
                end=$(date +%s.%N)
                awk -v w="$workers" -v s="${smooth:-(no smooth)}" -v n="$n" -v t0="$start" -v t1="$end" \
                        'BEGIN { printf "emotiond -w %s, watch %-11s %3d frames in %5.2f s: %5.1f frames/s\n", w, s, n, t1 - t0, n / (t1 - t0) }'
        done
        daemon_stop
done

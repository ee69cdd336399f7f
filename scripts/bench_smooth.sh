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

# The daemon started last, stopped on any exit (a failing `emotion` aborts the script under set -e).
daemon_pid="" daemon_dir=""
cleanup() {
        if [ -n "$daemon_pid" ]; then kill -TERM "$daemon_pid" 2>/dev/null || true; wait "$daemon_pid" 2>/dev/null || true; fi
        if [ -n "$daemon_dir" ]; then rm -rf "$daemon_dir"; fi
        return 0
}
trap cleanup EXIT

# wait_ready DIR PID: until the daemon listening on DIR/e.sock answers; its log and exit 1 if it
# dies or stays silent for 30 s.
wait_ready() {
        daemon_dir=$1 daemon_pid=$2
        for _ in $(seq 100); do
                build/bin/emotion health --server "ipc://$1/e.sock" --timeout 200 --attempts 1 >/dev/null 2>&1 && return 0
                kill -0 "$2" 2>/dev/null || break
                sleep 0.1
        done
        echo "$0: emotiond did not start; its log:" >&2
        cat "$1/log" >&2
        exit 1
}
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
        dir=$(mktemp -d)
        build/bin/emotiond --endpoint "ipc://$dir/e.sock" --model "$model" --yunet-model "$yunet" \
                --dialogue-dir deploy/dialogue -w "$workers" 2>"$dir/log" &
        pid=$!
        wait_ready "$dir" $pid
        for smooth in "" "--smooth 5" "" "--smooth 5"; do
                start=$(date +%s.%N)
                # shellcheck disable=SC2086 # $smooth is empty or two words
                n=$(build/bin/emotion watch --json $smooth --server "ipc://$dir/e.sock" "$out/video300.avi" | wc -l)
                end=$(date +%s.%N)
                awk -v w="$workers" -v s="${smooth:-(no smooth)}" -v n="$n" -v t0="$start" -v t1="$end" \
                        'BEGIN { printf "emotiond -w %s, watch %-11s %3d frames in %5.2f s: %5.1f frames/s\n", w, s, n, t1 - t0, n / (t1 - t0) }'
        done
        kill -TERM $pid
        wait $pid
        rm -rf "$dir"
        daemon_pid="" daemon_dir=""
done

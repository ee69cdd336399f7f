#!/usr/bin/env bash
# Benchmark emotiond on this machine: requests/s, client latency percentiles and the per-stage
# split, for a 640x480 JPEG with one face and one with four faces (composed from FER2013
# PublicTest faces by tests/data/make_fixtures.py).
#
#   scripts/bench.sh FER2013.csv.gz YUNET.onnx [MODEL.json]
#
# 1. The default setup (YuNet on the frame scaled to 320 px) with 1 and 2 workers at 1, 2 and 4
#    concurrent clients: throughput against workers.
# 2. One worker, one client, for each other detector setting: YuNet at 640 px, and BlazeFace
#    front and back when installed (BLAZEFACE_DIR, default the setup script's data folder).
set -euo pipefail
cd "$(dirname "$0")/.."
fer=${1:?FER2013 csv}; yunet=${2:?YuNet onnx}; model=${3:-models/emonet-xs.json}
bf_dir=${BLAZEFACE_DIR:-${XDG_DATA_HOME:-$HOME/.local/share}/emotiond/detectors}
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
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "model: $model, OpenCV $(pkg-config --modversion opencv4)"

# run TITLE WORKERS CLIENTS [emotiond options...]
run() {
        local title=$1 workers=$2 clients=$3
        shift 3
        local dir pid
        dir=$(mktemp -d)
        build/bin/emotiond --endpoint "ipc://$dir/e.sock" --model "$model" --yunet-model "$yunet" \
                --dialogue-dir deploy/dialogue -w "$workers" "$@" 2>"$dir/log" &
        pid=$!
        wait_ready "$dir" $pid
        echo
        echo "== $title: emotiond -w $workers $* (one OpenCV thread per worker)"
        build/bin/emotion bench --server "ipc://$dir/e.sock" --clients "$clients" --requests 300 --duration 20 \
                "$out/one_face.jpg" "$out/four_faces.jpg"
        kill -TERM $pid
        wait $pid
        rm -rf "$dir"
        daemon_pid="" daemon_dir=""
}

for workers in 1 2; do
        run "YuNet, detect_max_side 320 (default)" "$workers" 1,2,4 --detector yunet
done
run "YuNet, detect_max_side 640" 1 1 --detector yunet --set detect_max_side=640
for f in face_detection_front_128x128_barracuda.onnx face_detection_back_256x256_barracuda.onnx; do
        if [ -f "$bf_dir/$f" ]; then
                run "BlazeFace $f" 1 1 --detector blazeface --blazeface-model "$bf_dir/$f"
        else
                echo; echo "== BlazeFace $f: not installed in $bf_dir (scripts/setup.sh), skipped"
        fi
done

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

# shellcheck source=scripts/daemon.sh
. scripts/daemon.sh
/usr/bin/python3 tests/data/make_fixtures.py --fer "$fer" --model "$model" \
        --known tests/data/known_faces.csv --out "$out" >/dev/null
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "model: $model, OpenCV $(pkg-config --modversion opencv4)"

# run TITLE WORKERS CLIENTS [emotiond options...]
run() {
        local title=$1 workers=$2 clients=$3
        shift 3
        daemon_start "$(mktemp -d)" --model "$model" --yunet-model "$yunet" --dialogue-dir deploy/dialogue \
                -w "$workers" "$@"
        echo
        echo "== $title: emotiond -w $workers $* (one OpenCV thread per worker)"
        build/bin/emotion bench --server "$daemon_endpoint" --clients "$clients" --requests 300 --duration 20 \
                "$out/one_face.jpg" "$out/four_faces.jpg"
        daemon_stop
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

#!/usr/bin/env bash
# Benchmark emotiond on this machine: requests/s, client latency percentiles and the per-stage
# split, for a 640x480 JPEG with one face and one with four faces, with 1 and 2 workers at 1..4
# concurrent clients. Images are composed from FER2013 PublicTest faces (tests/data/make_fixtures.py).
#
#   scripts/bench.sh FER2013.csv.gz YUNET.onnx [MODEL.json]
set -euo pipefail
cd "$(dirname "$0")/.."
fer=${1:?FER2013 csv}; yunet=${2:?YuNet onnx}; model=${3:-models/emonet-s.json}
out=build/bench
mkdir -p "$out"
/usr/bin/python3 tests/data/make_fixtures.py --fer "$fer" --model "$model" \
        --known tests/data/known_faces.csv --out "$out" >/dev/null
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "model: $model, detector: YuNet 2022mar, OpenCV $(pkg-config --modversion opencv4)"
for workers in 1 2; do
        run=$(mktemp -d)
        build/bin/emotiond --endpoint "ipc://$run/e.sock" --model "$model" --yunet-model "$yunet" \
                --dialogue-dir deploy/dialogue -w "$workers" 2>"$run/log" &
        pid=$!
        for _ in $(seq 50); do
                build/bin/emotion health --server "ipc://$run/e.sock" --timeout 200 --attempts 1 >/dev/null 2>&1 && break
        done
        echo
        echo "== emotiond -w $workers (one OpenCV thread per worker)"
        build/bin/emotion bench --server "ipc://$run/e.sock" --clients 1,2,4 --requests 300 --duration 20 \
                "$out/one_face.jpg" "$out/four_faces.jpg"
        kill -TERM $pid
        wait $pid
        rm -rf "$run"
done

#!/usr/bin/env bash
# Useful throughput of an overloaded emotiond: one worker, two queue places, the four-face photo
# from 1 client (no refusals) and then from 32 (nearly every reply OVERLOADED, sent again at once).
# req/s counts OK replies only; `failed` counts the OVERLOADED ones. What the refusals cost shows
# as the drop from 1 to 32 clients.
#
#   scripts/bench_overload.sh FER2013.csv.gz YUNET.onnx [MODEL.json]
#
# EMOTIOND=path runs another build of the daemon (the client is always build/bin/emotion), to
# compare two builds on the same machine; DURATION=s sets the seconds per level (default 20).
set -euo pipefail
cd "$(dirname "$0")/.."
fer=${1:?FER2013 csv}; yunet=${2:?YuNet onnx}; model=${3:-models/emonet-xs.json}
daemon=${EMOTIOND:-build/bin/emotiond}
out=build/bench
mkdir -p "$out"
/usr/bin/python3 tests/data/make_fixtures.py --fer "$fer" --model "$model" \
        --known tests/data/known_faces.csv --out "$out" >/dev/null

dir=$(mktemp -d)
endpoint="ipc://$dir/emotiond.sock"
"$daemon" --endpoint "$endpoint" --model "$model" --detector yunet --yunet-model "$yunet" \
        --dialogue-dir deploy/dialogue -w 1 --set queue_capacity=2 2>"$dir/emotiond.log" &
pid=$!
trap 'kill -TERM $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 100); do
        build/bin/emotion health --server "$endpoint" --timeout 200 --attempts 1 >/dev/null 2>&1 && break
        kill -0 "$pid" 2>/dev/null || { cat "$dir/emotiond.log" >&2; exit 1; }
        sleep 0.1
done
# CPU seconds of the daemon's main thread (it receives every request and answers the refusals;
# the workers are other threads), from /proc: utime + stime in clock ticks.
main_cpu() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$pid/task/$pid/stat"; }
echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); daemon: $daemon -w 1 queue_capacity=2"
for clients in 1 32; do
        before=$(main_cpu)
        build/bin/emotion bench --server "$endpoint" --clients "$clients" --requests 1000000 --warmup 1 \
                --duration "${DURATION:-20}" "$out/four_faces.jpg" | tail -n 1 | tee "$dir/row" || true
        requests=$(awk '{ print $2 }' "$dir/row")
        awk -v a="$before" -v b="$(main_cpu)" -v n="$requests" -v c="$clients" 'BEGIN {
                printf "   %s clients: main thread %.2f s CPU for %d replies, %.1f us a reply\n", c, b - a, n, (b - a) * 1e6 / n }'
done

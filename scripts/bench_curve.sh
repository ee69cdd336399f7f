#!/usr/bin/env bash
# What CURVE costs: `emotion bench` over tcp:// loopback against one emotiond (1 worker), first
# in plaintext (insecure_tcp = true), then with CURVE (a server certificate and one allowed
# client, made with `emotion keygen`), on the two fixture photos, 1 and 2 clients. Prints one
# table row per run: requests/s and client-side latency percentiles.
#
#   scripts/bench_curve.sh FIXTURES_DIR YUNET.onnx [MODEL.json]
#   (FIXTURES_DIR: build/tests/fixtures after `ctest -R fixtures`, or make_fixtures.py's --out)
set -euo pipefail
cd "$(dirname "$0")/.."
fixtures=${1:?fixtures folder}; yunet=${2:?YuNet onnx}; model=${3:-models/emonet-xs.json}
requests=${BENCH_REQUESTS:-300}

# shellcheck source=scripts/daemon.sh
. scripts/daemon.sh
keys=$(mktemp -d)
trap 'daemon_cleanup; rm -rf "$keys"' EXIT
mkdir "$keys/clients.d"
build/bin/emotion keygen "$keys/server.cert" >/dev/null 2>&1
build/bin/emotion keygen "$keys/bench" >/dev/null 2>&1
cp "$keys/bench" "$keys/clients.d/"
server_key=$(build/bin/emotiond --set server_cert="$keys/server.cert" --print-public-key)
port=$(/usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(date -u '+%F %H:%M UTC')"
echo "| mode | image | clients | req/s | p50 ms | p90 ms | p99 ms | ok |"
echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |"
for mode in plaintext curve plaintext curve; do
        dir=$(mktemp -d)
        if [ "$mode" = curve ]; then
                security=(--set server_cert="$keys/server.cert" --set clients_dir="$keys/clients.d")
                client=(--server-key "$server_key" --cert "$keys/bench")
        else
                security=(--set insecure_tcp=true)
                client=()
        fi
        daemon_start "$dir" --set endpoints="ipc://$dir/emotiond.sock,tcp://127.0.0.1:$port" --model "$model" \
                --yunet-model "$yunet" --dialogue-dir deploy/dialogue -w 1 "${security[@]}"
        build/bin/emotion bench --json "${client[@]}" --server "tcp://127.0.0.1:$port" --clients 1,2 \
                --requests "$requests" --duration 15 "$fixtures/one_face.jpg" "$fixtures/four_faces.jpg" |
                /usr/bin/python3 -c '
import json, sys
mode = sys.argv[1]
for line in sys.stdin:
    o = json.loads(line)
    lat = o.get("latency_ms", {})
    row = [mode, o.get("file", "").rsplit("/", 1)[-1], str(o.get("clients")), "%.1f" % o.get("requests_per_s", 0)]
    row += ["%.2f" % lat.get(k, 0) for k in ("p50", "p90", "p99")]
    row.append("%d/%d" % (o.get("ok", 0), o.get("requests", 0)))
    print("| " + " | ".join(row) + " |")
' "$mode"
        daemon_stop
done

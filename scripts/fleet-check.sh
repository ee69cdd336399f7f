#!/usr/bin/env bash
# A fleet on loopback: HAProxy (deploy/haproxy/emotiond.cfg, run unprivileged from a temporary
# copy with loopback addresses) in front of emotiond instances on tcp:// with CURVE (keys made
# with `emotion keygen`), each with one worker and its /health on metrics_listen.
#
#   scripts/fleet-check.sh [--build DIR] [--fixtures DIR] [--yunet ONNX] [--model JSON]
#                          [--fleet-client BIN] [--daemons N] [--clients N] [--fps F]
#                          [--seconds S] [--kill-at S] [--bench]
#
# Failover (the default; ctest's deploy.fleet): CLIENTS camera clients (tests/deploy/fleet_client,
# one connection and stream each, FPS frames/s, smoothing on) for SECONDS; at KILL-AT seconds the
# first daemon gets kill -9. Prints each daemon's replies before and after the kill and the
# clients' figures, then checks them: no lost reply, no client error (no false key error above
# all), every client's wait for a reply across the kill (its gap between two replies that spans
# the kill) under 2 s, every surviving daemon
# answering after the kill, HAProxy marking the killed one DOWN; and once every daemon is
# stopped, that a client is told that nothing serves behind the balancer, not that its key is
# wrong. With 3 daemons or more, also that `emotion watch` (a pipelined client) goes on across the
# kill of its daemon. Exit 0 when all hold, 1 otherwise (and when haproxy is missing: it fails,
# never skips).
#
# --bench: `emotion bench` through HAProxy with 1, 2, ... DAEMONS daemons (one worker each), one
# table row per run, for docs/benchmarks.md.
#
# Defaults suit a build in build/ after `ctest --test-dir build -R fixtures`.
set -euo pipefail
cd "$(dirname "$0")/.."
build=build fixtures=build/tests/fixtures model=models/emonet-xs.json
# YuNet where scripts/setup.sh installed it (ctest passes the tests' copy with --yunet).
yunet=${XDG_DATA_HOME:-$HOME/.local/share}/emotiond/detectors/face_detection_yunet_2022mar.onnx
fleet_client="" daemons=3 clients=16 fps=1.5 seconds=24 kill_at=10 bench=0
while [ $# -gt 0 ]; do
        case $1 in
        --build) build=$2; shift ;;
        --fixtures) fixtures=$2; shift ;;
        --yunet) yunet=$2; shift ;;
        --model) model=$2; shift ;;
        --fleet-client) fleet_client=$2; shift ;;
        --daemons) daemons=$2; shift ;;
        --clients) clients=$2; shift ;;
        --fps) fps=$2; shift ;;
        --seconds) seconds=$2; shift ;;
        --kill-at) kill_at=$2; shift ;;
        --bench) bench=1 ;;
        *) echo "usage: see the head of $0" >&2; exit 2 ;;
        esac
        shift
done
fleet_client=${fleet_client:-$build/tests/fleet_client}
emotion=$build/bin/emotion emotiond=$build/bin/emotiond

# /usr/sbin is not on an ordinary user's PATH on Debian; $HAPROXY names another binary.
haproxy=${HAPROXY:-$(PATH=$PATH:/usr/sbin:/sbin command -v haproxy || true)}
if [ ! -x "$haproxy" ]; then
        echo "fleet-check: FAILED: haproxy is not installed (Debian package haproxy;" \
                "scripts/setup.sh --tests installs it)" >&2
        exit 1
fi
for f in "$emotion" "$emotiond" "$fixtures/one_face.jpg" "$yunet" "$model"; do
        [ -e "$f" ] || { echo "fleet-check: FAILED: $f is missing" >&2; exit 1; }
done
[ "$bench" = 1 ] || [ -x "$fleet_client" ] || { echo "fleet-check: FAILED: no $fleet_client" >&2; exit 1; }

tmp=$(mktemp -d /tmp/emotiond-fleet.XXXXXX)
pids=() haproxy_pid=""
cleanup() {
        [ -z "$haproxy_pid" ] || kill "$haproxy_pid" 2>/dev/null || true
        for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
        wait 2>/dev/null || true
        rm -rf "$tmp"
}
trap cleanup EXIT

# Keys: the daemons share one server certificate and one allowed client.
mkdir "$tmp/clients.d"
"$emotion" keygen "$tmp/server.cert" >/dev/null 2>&1
"$emotion" keygen "$tmp/camera" >/dev/null 2>&1
cp "$tmp/camera" "$tmp/clients.d/"
server_key=$("$emotiond" --set server_cert="$tmp/server.cert" --print-public-key)
export EMOTIOND_SERVER_KEY=$server_key EMOTIOND_CERT=$tmp/camera

# Free loopback ports: the frontend, then a ZeroMQ and a metrics port per daemon.
read -r -a ports <<<"$(/usr/bin/python3 -c '
import socket, sys
ss = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in ss: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in ss))' $((1 + 2 * daemons)))"
front=${ports[0]}
zport() { echo "${ports[$((2 * $1 - 1))]}"; }
mport() { echo "${ports[$((2 * $1))]}"; }

# start_daemon I: emotiond number I (1-based), waiting until its /health says 200.
start_daemon() {
        local i=$1
        "$emotiond" --endpoint "tcp://127.0.0.1:$(zport "$i")" --model "$model" --yunet-model "$yunet" \
                --dialogue-dir deploy/dialogue -w 1 --set server_cert="$tmp/server.cert" \
                --set clients_dir="$tmp/clients.d" --set metrics_listen="127.0.0.1:$(mport "$i")" \
                2>"$tmp/emotiond$i.log" &
        pids[$i]=$!
        for _ in $(seq 150); do
                curl -sf -o /dev/null "http://127.0.0.1:$(mport "$i")/health" && return 0
                kill -0 "${pids[$i]}" 2>/dev/null || break
                sleep 0.1
        done
        echo "fleet-check: FAILED: emotiond $i did not start; its log:" >&2
        cat "$tmp/emotiond$i.log" >&2
        exit 1
}

# start_haproxy N: the shipped configuration, its daemons replaced by the first N here, without
# the system paths (chroot, user, admin socket, syslog) an unprivileged run cannot use.
start_haproxy() {
        local n=$1 servers="" i
        for i in $(seq "$n"); do
                servers+="        server emotiond$i 127.0.0.1:$(zport "$i") check port $(mport "$i")"$'\n'
        done
        awk -v front="$front" -v servers="$servers" -v sock="$tmp/haproxy.sock" '
                /^[ \t]*(chroot|user|group|daemon|log \/dev\/log|stats socket)([ \t]|$)/ { next }
                /^global/ { print; print "        stats socket " sock " level admin"; next }
                /^[ \t]*bind / { print "        bind 127.0.0.1:" front; next }
                /^[ \t]*server / { next }
                { print }
                END { printf "%s", servers }' deploy/haproxy/emotiond.cfg >"$tmp/haproxy.cfg"
        "$haproxy" -q -c -f "$tmp/haproxy.cfg" >/dev/null
        "$haproxy" -db -f "$tmp/haproxy.cfg" >"$tmp/haproxy.log" 2>&1 &
        haproxy_pid=$!
        for _ in $(seq 100); do
                [ "$(servers_up)" = "$n" ] && return 0
                sleep 0.1
        done
        echo "fleet-check: FAILED: HAProxy did not see $n daemons UP:" >&2
        show_stat >&2
        exit 1
}
stop_haproxy() { kill "$haproxy_pid"; wait "$haproxy_pid" 2>/dev/null || true; haproxy_pid=""; }

# HAProxy's runtime API: `show stat` as "server status" lines.
show_stat() {
        /usr/bin/python3 - "$tmp/haproxy.sock" <<'EOF'
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
s.sendall(b"show stat\n")
data = b""
while chunk := s.recv(65536):
    data += chunk
for line in data.decode().splitlines():
    f = line.split(",")
    if len(f) > 17 and f[0] == "emotiond" and f[1].startswith("emotiond"):
        print(f[1], f[4], f[17])  # name, current sessions, status
EOF
}
servers_up() { show_stat 2>/dev/null | grep -c ' UP$' || true; }
sessions() { show_stat | awk -v s="$1" '$1 == s { print $2 }'; }

# ok_replies I: emotiond_replies_total{status="ok"} of daemon I.
ok_replies() {
        curl -sf "http://127.0.0.1:$(mport "$1")/metrics" | awk '/^emotiond_replies_total\{status="ok"\}/ { print $2 }'
}

echo "machine: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg), $(date -u '+%F %H:%M UTC'), HAProxy $("$haproxy" -v | awk 'NR==1 { print $3 }')"

if [ "$bench" = 1 ]; then
        for i in $(seq "$daemons"); do start_daemon "$i"; done
        echo "| daemons | clients | req/s | p50 ms | p90 ms | p99 ms | ok | load average |"
        echo "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"
        for n in $(seq "$daemons"); do
                start_haproxy "$n"
                "$emotion" bench --json --server "tcp://127.0.0.1:$front" --clients "$clients" --requests 100000 \
                        --duration "$seconds" "$fixtures/one_face.jpg" | /usr/bin/python3 -c '
import json, sys
n, load = sys.argv[1], open("/proc/loadavg").read().split()[:3]
for line in sys.stdin:
    o = json.loads(line)
    lat = o.get("latency_ms", {})
    row = [n, str(o.get("clients")), "%.1f" % o.get("requests_per_s", 0)]
    row += ["%.2f" % lat.get(k, 0) for k in ("p50", "p90", "p99")]
    row += ["%d/%d" % (o.get("ok", 0), o.get("requests", 0)), " ".join(load)]
    print("| " + " | ".join(row) + " |")' "$n"
                stop_haproxy
        done
        exit 0
fi

for i in $(seq "$daemons"); do start_daemon "$i"; done
start_haproxy "$daemons"
echo "fleet: HAProxy on tcp://127.0.0.1:$front, $daemons daemons (1 worker each, CURVE), $clients cameras at $fps frames/s for $seconds s, kill -9 of emotiond1 at $kill_at s"

"$fleet_client" "tcp://127.0.0.1:$front" "$fixtures/one_face.jpg" "$clients" "$seconds" "$fps" \
        >"$tmp/clients.out" 2>"$tmp/clients.err" &
client_pid=$!
sleep "$kill_at"
declare -A at_kill
for i in $(seq "$daemons"); do at_kill[$i]=$(ok_replies "$i"); done
# Kill it while it works on a request (for at most 2 s more), so that a reply is in flight. The
# polls are few and slow: on 2 cores, a process started every few ms would slow the fleet itself.
for _ in $(seq 20); do
        curl -sf "http://127.0.0.1:$(mport 1)/metrics" | grep -q '^emotiond_workers_busy [1-9]' && break
        sleep 0.1
done
moved=$(sessions emotiond1) # the clients that must fail over
kill -9 "${pids[1]}"
killed_at=$(date +%s.%N)
kill -USR1 "$client_pid" 2>/dev/null || true # the clients' clock for the recovery
wait "${pids[1]}" 2>/dev/null || true
down_after=""
for _ in $(seq 25); do
        if show_stat | grep -q '^emotiond1 .* DOWN'; then
                down_after=$(awk -v a="$(date +%s.%N)" -v b="$killed_at" 'BEGIN { printf "%.1f", a - b }')
                break
        fi
        sleep 0.2
done
wait "$client_pid" || { echo "fleet-check: FAILED: the clients exited $?:" >&2; cat "$tmp/clients.err" "$tmp/clients.out" >&2; exit 1; }

fail=0
echo
echo "| daemon | OK replies before the kill | after the kill |"
echo "| --- | ---: | ---: |"
echo "| emotiond1 (killed, $moved connections) | ${at_kill[1]} | - |"
for i in $(seq 2 "$daemons"); do
        end=$(ok_replies "$i")
        echo "| emotiond$i | ${at_kill[$i]} | $((end - at_kill[$i])) |"
        if [ $((end - at_kill[$i])) -le 0 ]; then
                echo "fleet-check: FAILED: emotiond$i answered nothing after the kill" >&2
                fail=1
        fi
done
echo
sed 's/^/  /' "$tmp/clients.out"
[ ! -s "$tmp/clients.err" ] || sed 's/^/  client: /' "$tmp/clients.err"
total=$(tail -n1 "$tmp/clients.out")
val() { sed -n "s/.* $1=\([0-9.]*\).*/\1/p" <<<"$total"; }
echo
echo "fleet: $(val replies) OK replies ($(val rps) req/s), $(val non_ok) other replies, $(val lost) lost," \
        "$(val errors) client errors; longest wait for a reply across the kill (recovery): $(val recovery_ms) ms," \
        "of which the longest call in progress at the kill took $(val spanning_ms) ms;" \
        "longest gap between two replies of one client in the whole run: $(val longest_gap_ms) ms;" \
        "HAProxy marked emotiond1 DOWN ${down_after:-never} s after the kill"
[ "$(val lost)" = 0 ] || { echo "fleet-check: FAILED: $(val lost) replies lost" >&2; fail=1; }
[ "$(val errors)" = 0 ] || { echo "fleet-check: FAILED: $(val errors) clients stopped on an error" >&2; fail=1; }
[ "$(val recovery_ms)" -lt 2000 ] ||
        { echo "fleet-check: FAILED: a client waited $(val recovery_ms) ms across the kill (2000 at most)" >&2; fail=1; }
[ -n "$down_after" ] || { echo "fleet-check: FAILED: HAProxy never marked emotiond1 DOWN" >&2; fail=1; }

# A pipelined client across a kill: `emotion watch --live` of an 8 s video through HAProxy, and
# after 3 s kill -9 of the daemon its connection went to, with frames in flight to it (stopped
# for 0.3 s first). The client sends what was in flight again as soon as the connection closes,
# so it ends with the video; waiting for the lost replies' --timeout instead holds its output
# back and makes it seconds longer.
killed=(1)
if [ "$daemons" -ge 3 ]; then
        video=$tmp/watch.avi
        /usr/bin/python3 scripts/make-sample-video.py "$fixtures/one_face.jpg" "$video" --fps 25 --seconds 8
        watch_start=$(date +%s.%N)
        ( "$emotion" watch --json --live --server "tcp://127.0.0.1:$front" "$video" >"$tmp/watch.out" \
                2>"$tmp/watch.err"; echo $? >"$tmp/watch.status"; date +%s.%N >"$tmp/watch.end" ) &
        watch_pid=$!
        sleep 3
        victim=""
        for i in $(seq 2 "$daemons"); do
                [ "$(sessions "emotiond$i")" -gt 0 ] 2>/dev/null && victim=$i
        done
        if [ -z "$victim" ]; then
                echo "fleet-check: FAILED: no daemon holds the connection of emotion watch:" >&2
                show_stat >&2
                fail=1
        else
                # Stopped first for 0.3 s, so that frames are in flight to it when it dies.
                kill -STOP "${pids[$victim]}"
                sleep 0.3
                kill -9 "${pids[$victim]}"
                wait "${pids[$victim]}" 2>/dev/null || true
                killed+=("$victim")
        fi
        wait "$watch_pid" || true
        watch_status=$(cat "$tmp/watch.status")
        watch_s=$(awk -v a="$(cat "$tmp/watch.end")" -v b="$watch_start" 'BEGIN { printf "%.1f", a - b }')
        frames=$(grep -c '"status":"ok"' "$tmp/watch.out" || true)
        echo "fleet: emotion watch --live of an 8 s video through HAProxy, emotiond${victim:-?} killed under" \
                "it at 3 s: exit $watch_status after $watch_s s, $frames frames analysed"
        if [ "$watch_status" != 0 ]; then
                echo "fleet-check: FAILED: emotion watch exited $watch_status:" >&2
                cat "$tmp/watch.err" >&2
                fail=1
        fi
        if ! awk -v t="$watch_s" 'BEGIN { exit !(t < 10.5) }'; then
                echo "fleet-check: FAILED: emotion watch took $watch_s s for an 8 s video (10.5 at most):" \
                        "it waited for a reply lost with the killed daemon" >&2
                fail=1
        fi
fi

# Every daemon gone: HAProxy accepts and closes; the client must not blame its key.
for i in $(seq 2 "$daemons"); do
        [[ " ${killed[*]} " == *" $i "* ]] && continue
        kill -9 "${pids[$i]}"
        wait "${pids[$i]}" 2>/dev/null || true
done
sleep 1.5
set +e
msg=$("$emotion" health --server "tcp://127.0.0.1:$front" --timeout 2000 --attempts 1 2>&1)
set -e
echo "fleet: with every daemon gone, 'emotion health' through HAProxy says: $msg"
if ! grep -q "closed before any daemon answered" <<<"$msg"; then
        echo "fleet-check: FAILED: expected 'closed before any daemon answered'" >&2
        fail=1
fi
[ "$fail" = 0 ] && echo "fleet-check: OK"
exit "$fail"

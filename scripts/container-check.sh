#!/bin/bash
# Proves the OCI image of deploy/container/: builds it (unless --no-build), runs it with podman as
# an administrator would (read-only root, no capabilities, the CURVE keys mounted read-only as
# Kubernetes mounts its Secrets, port 5560 published on the host's loopback), and checks from the
# host, through CURVE, what a camera's client would see: `emotion health` and one `emotion
# analyze` of a face photo with an allowed client key, no service for an unknown key until it is
# added and the daemon gets SIGHUP, none for a plaintext client; and inside the container, what
# the Kubernetes probes rely on: the daemon's user is not root, it uses YuNet (not the Haar
# fallback), `emotion health` over the ipc socket needs no key, and SIGTERM drains and exits 0
# within the pod's grace period. Prints PASS or FAIL per check; exits 1 when any failed.
# The container is always removed.
#
#   scripts/container-check.sh [--no-build] [--debs DIR]
#
# --no-build  check the image already built (localhost/emotiond:VERSION)
# --debs DIR  the .deb files for the build (default: $EMO_DEB_DIR, else /var/tmp/emotiond-deb;
#             scripts/build-deb.sh makes them there when they are missing)
#
# Environment: EMO_YUNET_FILE (as for deploy/container/build.sh), EMO_IMAGE (the image to check,
# default localhost/emotiond:VERSION; with --no-build), EMO_CHECK_PORT (host port,
# default 25560), EMOTION (the host's client, default build/bin/emotion), EMO_PODMAN_RUN_ARGS
# (extra `podman run` options; by default the sandbox workaround described in docs/deploy.md is
# used only when a plain `podman run` fails).
# Needs root, podman, buildah, mmdebstrap (scripts/setup.sh --container) and the test fixtures of
# build/ (its `fixtures` test).
set -u

src=$(cd "$(dirname "$0")/.." && pwd)
build=1
debs=${EMO_DEB_DIR:-/var/tmp/emotiond-deb}
while [ $# -gt 0 ]; do
        case $1 in
        --no-build) build=0 ;;
        --debs) debs=$2; shift ;;
        -h|--help) sed -n '2,/^set -u/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "container-check.sh: unknown option $1 (try --help)" >&2; exit 2 ;;
        esac
        shift
done
[ "$(id -u)" -eq 0 ] || { echo "container-check.sh: needs root (podman, buildah)" >&2; exit 2; }
version=$(dpkg-parsechangelog -l "$src/debian/changelog" -S Version)
image=${EMO_IMAGE:-localhost/emotiond:$version}
port=${EMO_CHECK_PORT:-25560}
emotion=${EMOTION:-$src/build/bin/emotion}
fixtures=$src/build/tests/fixtures
name=emotiond-check-$$
start=$(date +%s)
failed=0
pass() { echo "PASS: $*"; }
fail() { echo "FAIL: $*"; failed=$((failed + 1)); }
step() { echo "==> $* ($(( $(date +%s) - start )) s)"; }
[ -x "$emotion" ] || { echo "container-check.sh: no client at $emotion (build first, or set EMOTION)" >&2; exit 2; }
[ -f "$fixtures/one_face.jpg" ] || { echo "container-check.sh: no $fixtures/one_face.jpg (ctest -R fixtures)" >&2; exit 2; }

if [ $build = 1 ]; then
        arch=$(dpkg --print-architecture)
        if [ ! -f "$debs/emotiond_${version}_$arch.deb" ]; then
                step "scripts/build-deb.sh $debs"
                "$src/scripts/build-deb.sh" "$debs" >/dev/null || { echo "container-check.sh: build-deb.sh failed" >&2; exit 1; }
        fi
        step "deploy/container/build.sh --debs $debs"
        "$src/deploy/container/build.sh" --debs "$debs" 2>&1 | sed 's/^/    /'
        [ "${PIPESTATUS[0]}" -eq 0 ] && pass "build: $image from $debs" || { fail "build: deploy/container/build.sh failed"; exit 1; }
fi
podman image exists "$image" || { echo "container-check.sh: no image $image" >&2; exit 2; }

work=$(mktemp -d)
teardown() {
        podman rm -f -t 0 "$name" >/dev/null 2>&1
        rm -rf "$work"
}
trap teardown EXIT
trap 'exit 130' INT TERM

# The image's own settings, as Kubernetes will read them.
config=$(podman image inspect -f '{{.Config.User}} {{json .Config.Entrypoint}} {{json .Config.ExposedPorts}}' "$image")
case $config in
10001:10001\ *5560/tcp*) pass "image: user, entrypoint, port: $config" ;;
*) fail "image: '$config' (want user 10001:10001 and port 5560/tcp)" ;;
esac

step "Keys: the daemon's, one allowed client (camera1), one unknown (stranger)"
mkdir -p "$work/keys"
"$emotion" keygen "$work/keys/server.cert" >/dev/null &&
        "$emotion" keygen "$work/camera1" >/dev/null && "$emotion" keygen "$work/stranger" >/dev/null ||
        { echo "container-check.sh: emotion keygen failed" >&2; exit 1; }
# The folders are laid out as the kubelet mounts the Secrets of deploy/kubernetes/: files owned by
# root, group fsGroup (10001), modes 0440 and 0444, behind the ..data link of Kubernetes' atomic
# updates (which the daemon must skip when it reads clients_dir).
secret_dir() { # DIR MODE FILE...
        local dir=$1 mode=$2 stamp=..2026_01_01_00_00_00.000000001
        shift 2
        mkdir -p "$dir/$stamp"
        cp "$@" "$dir/$stamp/"
        ln -s "$stamp" "$dir/..data"
        for f in "$@"; do ln -s "..data/$(basename "$f")" "$dir/$(basename "$f")"; done
        chmod "$mode" "$dir/$stamp"/*
        chown -R 0:10001 "$dir"
}
secret_dir "$work/server" 0440 "$work/keys/server.cert" "$work/keys/server.cert_secret"
secret_dir "$work/clients.d" 0444 "$work/camera1"

# podman's defaults may not run here: see docs/deploy.md, "What was run here".
# As the pod's securityContext: read-only root, no capability, no privilege escalation.
run_args=(--read-only --cap-drop ALL --security-opt no-new-privileges -p "127.0.0.1:$port:5560"
          -v "$work/server:/etc/emotiond/server:ro" -v "$work/clients.d:/etc/emotiond/clients.d:ro")
if [ -n "${EMO_PODMAN_RUN_ARGS:-}" ]; then
        read -r -a extra <<<"$EMO_PODMAN_RUN_ARGS"
elif out=$(podman run --rm --entrypoint /bin/true "$image" 2>&1); then
        extra=()
else
        echo "    podman run with its defaults failed: $out"
        extra=(--runtime runc --ulimit "nofile=$(ulimit -Hn):$(ulimit -Hn)" --ulimit nproc=32768:32768)
        echo "    using: ${extra[*]}"
fi
step "podman run ${extra[*]} ${run_args[*]} $image"
if ! podman run -d --name "$name" "${extra[@]}" "${run_args[@]}" "$image" >/dev/null; then
        fail "run: podman run failed"
        exit 1
fi
ct() { podman exec "$name" "$@"; }

# Ready when the probe of deploy/kubernetes/ answers: `emotion health` over the ipc socket.
ready=0
for _ in $(seq 120); do
        ct emotion health --server ipc:///run/emotiond/emotiond.sock --timeout 1000 --attempts 1 >/dev/null 2>&1 && { ready=1; break; }
        [ "$(podman inspect -f '{{.State.Running}}' "$name" 2>/dev/null)" = true ] || break
        sleep 0.5
done
podman logs "$name" 2>&1 | sed 's/^/    | /'
[ $ready = 1 ] && pass "probe: 'emotion health' over ipc:///run/emotiond/emotiond.sock inside the container, no key, exit 0 ($(( $(date +%s) - start )) s)" ||
        { fail "probe: the daemon never answered over ipc"; exit 1; }
uid=$(podman top "$name" huser 2>/dev/null | sed -n 2p | tr -d ' ')
cuser=$(podman top "$name" user 2>/dev/null | sed -n 2p | tr -d ' ')
[ -n "$uid" ] && [ "$uid" != 0 ] && [ "$uid" != root ] && pass "user: the daemon runs as uid $uid on the host, $cuser in the container" ||
        fail "user: host uid '$uid', container user '$cuser'"
allowed=$(podman logs "$name" 2>&1 | grep -o '[0-9]* client key(s) allowed from [^ ]*')
ignored=$(podman logs "$name" 2>&1 | grep -i 'ignoring' | head -1)
[ "$allowed" = "1 client key(s) allowed from /etc/emotiond/clients.d" ] && [ -z "$ignored" ] &&
        pass "keys: $allowed (mounted as a Kubernetes Secret, ..data skipped)" || fail "keys: '$allowed' '$ignored'"
detector=$(podman logs "$name" 2>&1 | grep -o '[a-z]* detector [^ ,]*' | head -1)
[ "$detector" = "yunet detector /var/lib/emotiond/detectors/face_detection_yunet_2022mar.onnx" ] &&
        pass "detector: $detector (not the Haar fallback)" || fail "detector: '$detector'"

key=$(sed -n 's/^ *public-key = "\(.*\)"$/\1/p' "$work/keys/server.cert")
tcp=tcp://127.0.0.1:$port
out=$("$emotion" health --server "$tcp" --server-key "$key" --cert "$work/camera1" --timeout 5000 --attempts 2 2>&1)
rc=$?
echo "$out" | sed 's/^/    /'
[ $rc -eq 0 ] && echo "$out" | grep -q '^detector: *yunet' &&
        pass "host health: emotion health --server $tcp --server-key (Z85) --cert camera1: exit 0" ||
        fail "host health: exit $rc"

expected=$(python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
i = d["images"]["one_face.jpg"]["faces"][0]["index"]
print(["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"][d["python"]["predictions_500"][i]])' \
        "$fixtures/fixtures.json" 2>/dev/null) || expected=
out=$("$emotion" analyze --json --server "$tcp" --server-key "$key" --cert "$work/camera1" --timeout 20000 --attempts 2 \
        "$fixtures/one_face.jpg" 2>&1)
rc=$?
echo "$out" | cut -c1-200 | sed 's/^/    /'
got=$(echo "$out" | grep -o '"emotion": *"[a-z]*"' | head -1 | grep -o '"[a-z]*"$' | tr -d '"')
[ $rc -eq 0 ] && [ -n "$got" ] && { [ -z "$expected" ] || [ "$got" = "$expected" ]; } &&
        pass "host analyze: one_face.jpg through CURVE answered '$got' (the model's answer in Python: '${expected:-?}')" ||
        fail "host analyze: exit $rc, emotion '$got', expected '${expected:-any}'"

out=$("$emotion" health --server "$tcp" --server-key "$key" --cert "$work/stranger" --timeout 3000 --attempts 1 2>&1)
rc=$?
echo "$out" | sed 's/^/    /'
sleep 0.5
refused=$(podman logs "$name" 2>&1 | grep -i 'refus' | grep -F "$(sed -n 's/^ *public-key = "\(.*\)"$/\1/p' "$work/stranger")" | head -1)
[ $rc -ne 0 ] && [ -n "$refused" ] && pass "unknown key: exit $rc, and the daemon logged: $refused" ||
        fail "unknown key: exit $rc, daemon log: '$refused'"
# An administrator admits a client: its public file in clients.d, then SIGHUP (open connections stay).
cp "$work/stranger" "$work/clients.d/..2026_01_01_00_00_00.000000001/"
ln -s ..data/stranger "$work/clients.d/stranger"
podman kill --signal HUP "$name" >/dev/null
sleep 0.5
out=$("$emotion" health --server "$tcp" --server-key "$key" --cert "$work/stranger" --timeout 5000 --attempts 1 2>&1)
rc=$?
reloaded=$(podman logs "$name" 2>&1 | grep -i 'clients_dir\|client key' | tail -1)
[ $rc -eq 0 ] && pass "SIGHUP: the added key is admitted (exit 0); daemon: $reloaded" || fail "SIGHUP: exit $rc: $out"
out=$("$emotion" health --server "$tcp" --timeout 3000 --attempts 1 2>&1)
rc=$?
echo "$out" | sed 's/^/    /'
[ $rc -ne 0 ] && pass "plaintext client: exit $rc, no service" || fail "plaintext client: exit 0"

# Stopped under load, as Kubernetes stops a pod: SIGTERM while 4 clients send photos through
# CURVE. The daemon must finish what its workers hold, refuse the rest (SHUTTING_DOWN) and exit 0
# well within terminationGracePeriodSeconds (15 s, of which preStop takes 5).
step "podman stop under load (SIGTERM while 4 clients send one_face.jpg through CURVE)"
"$emotion" bench --clients 4 --requests 1000000 --duration 8 --warmup 1 --attempts 1 --timeout 5000 \
        --server "$tcp" --server-key "$key" --cert "$work/camera1" "$fixtures/one_face.jpg" >"$work/bench.out" 2>&1 &
bench=$!
sleep 3
t0=$(date +%s%N)
podman stop -t 15 "$name" >/dev/null
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
wait $bench
code=$(podman inspect -f '{{.State.ExitCode}}' "$name")
drain=$(podman logs "$name" 2>&1 | grep -o 'finishing [0-9]* request(s) in progress, refusing [0-9]* queued' | tail -1)
last=$(podman logs "$name" 2>&1 | tail -1)
echo "    | $drain"
echo "    | $last"
served=$(echo "$last" | grep -o '([0-9]* replies' | tr -dc 0-9)
[ "$code" = 0 ] && [ $ms -lt 10000 ] && [ -n "$drain" ] && [ "${served:-0}" -gt 10 ] &&
        pass "stop: under load, exit $code after $ms ms (grace period 15 s); $drain; ${served} replies in all" ||
        fail "stop: exit $code after $ms ms, '$drain', '$last'"

echo "==> $failed check(s) failed, $(( $(date +%s) - start )) s"
[ $failed -eq 0 ]

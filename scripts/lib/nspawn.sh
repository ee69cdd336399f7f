# Sourced by scripts/deb-check.sh and scripts/systemd-check.sh: what both need to check emotiond
# under a real systemd as PID 1 of a container. A Debian 12 root bootstrapped once with mmdebstrap
# (kept, copied for each run), booted with systemd-nspawn, entered with nsenter, always shut down
# on exit; and the PASS/FAIL lines both print. Not a program: it defines functions and variables.
#
#   start=$(date +%s); . "$src/scripts/lib/nspawn.sh"
#   nspawn_bootstrap DIR PACKAGES || exit 2   # once; DIR stays
#   nspawn_boot ROOT LOG                      # sets pid1, traps EXIT to shut the container down
#   ct COMMAND...                             # run in the container, as its root
#   pass/fail WHAT; step WHAT                 # result lines; $failed counts the FAILs
#   fixture_emotion FIXTURES_DIR              # what the model says for one_face.jpg
#
# Needs root, mmdebstrap and systemd-container (systemd-nspawn), nsenter (util-linux).

failed=0
pass() { echo "PASS: $*"; }
fail() { echo "FAIL: $*"; failed=$((failed + 1)); }
step() { echo "==> $* ($(( $(date +%s) - start )) s)"; }

# The shipped model's own answer for the face of one_face.jpg, the answer a check expects from the
# daemon: make_fixtures.py records what OpenCV DNN in Python predicts for each PublicTest face
# (FIXTURES_DIR/fixtures.json); the class name in FER2013's label order.
fixture_emotion() {
        python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
i = d["images"]["one_face.jpg"]["faces"][0]["index"]
print(["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"][d["python"]["predictions_500"][i]])' \
                "$1/fixtures.json"
}

# Bootstrap a Debian 12 root with systemd, apt and the comma-separated PACKAGES into DIR. It is made
# in DIR.tmp and renamed when complete, so an interrupted bootstrap is never taken for a root.
nspawn_bootstrap() {
        local dir=$1 packages=$2
        rm -rf "$dir.tmp"
        mmdebstrap --quiet --variant=required --include="$packages" bookworm "$dir.tmp" || return 1
        mv "$dir.tmp" "$dir"
}

nspawn=
pid1=
# Run a command in the container's namespaces (as its root).
ct() { nsenter -t "$pid1" -a "$@"; }

# Power the container off (systemctl poweroff, then TERM, then KILL) and wait for it. Idempotent.
nspawn_teardown() {
        [ -n "$nspawn" ] || return 0
        if kill -0 "$nspawn" 2>/dev/null && [ -n "$pid1" ]; then
                nsenter -t "$pid1" -a systemctl poweroff --no-block >/dev/null 2>&1
                for _ in $(seq 60); do kill -0 "$nspawn" 2>/dev/null || break; sleep 0.5; done
        fi
        if kill -0 "$nspawn" 2>/dev/null; then
                kill -TERM "$nspawn" 2>/dev/null
                for _ in $(seq 20); do kill -0 "$nspawn" 2>/dev/null || break; sleep 0.5; done
                kill -KILL "$nspawn" 2>/dev/null
        fi
        wait "$nspawn" 2>/dev/null
        nspawn=
        echo "==> Container shut down ($(( $(date +%s) - start )) s in all)"
}

# Boot ROOT with systemd-nspawn (its console in LOG) and wait until its systemd answers: sets
# $pid1 (the container's PID 1 as the host sees it) and $state (what `systemctl
# is-system-running --wait` said: running, degraded...). No systemd at all: a FAIL line, the
# console, exit 1.
nspawn_boot() {
        local root=$1 log=$2 p
        trap nspawn_teardown EXIT
        trap 'exit 130' INT TERM
        # Not a process-group leader here, so setsid runs nspawn itself: $! is nspawn's pid.
        # nspawn's system-call filter refuses bpf() by default, and then systemd runs units
        # without their IP firewall, saying so only at debug level inside a container: allow it,
        # as on a host.
        setsid systemd-nspawn -q -D "$root" -b --register=no --keep-unit --system-call-filter=bpf \
                </dev/null >"$log" 2>&1 &
        nspawn=$!
        for _ in $(seq 100); do
                for p in $(pgrep -P "$nspawn"); do
                        [ "$(readlink "/proc/$p/exe" 2>/dev/null)" = /usr/lib/systemd/systemd ] && pid1=$p
                done
                [ -n "$pid1" ] && break
                kill -0 "$nspawn" 2>/dev/null || break
                sleep 0.2
        done
        [ -n "$pid1" ] || { fail "boot: no systemd in the container"; cat "$log"; exit 1; }
        # systemctl needs PID 1's private socket, which comes a moment after PID 1.
        for _ in $(seq 100); do ct test -S /run/systemd/private && break; sleep 0.2; done
        state=$(timeout 180 nsenter -t "$pid1" -a systemctl is-system-running --wait 2>&1)
}

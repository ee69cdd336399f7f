#!/bin/bash
# Proves deploy/emotiond.service and emotiond.socket under a real systemd as PID 1: boots a Debian
# 12 root holding the daemon's run-time libraries and this checkout's build in systemd-nspawn, with
# emotiond.socket enabled, then checks that systemd-sysusers made the group emotiond at boot, that
# systemd listens on the ipc socket (group emotiond, 0660) with the service not yet started, that a
# first client's connection starts it (socket activation: the daemon serves systemd's socket) with a
# clean journal, that a member of the group gets an answer (an emotion for a face:
# MemoryDenyWriteExecute= leaves inference working) and a non-member a permission error, health,
# watchdog keep-alives, LimitNOFILE=, MemoryMax=, the IP firewall, the exposure score, restart and a
# clean stop (status 0, result success) after which the socket stays and activates the service
# again, and that starting the service starts its socket unit. Prints PASS, FAIL or SKIP
# (what this machine cannot show: no memory controller for a container on a cgroup v1 host) per
# check; exits 1 when any failed. The container is always shut down. On the 2-core development
# VM: 3 to 8 minutes the first time (bootstrap and build), 90 s after (35 of them the watchdog
# wait). A root that lacks a package of the list below is bootstrapped anew.
#
#   sudo scripts/systemd-check.sh
#
# Needs root, mmdebstrap, systemd-container and Debian's package mirror (the first run only), and
# ../shared next to the checkout (the YuNet detector; FER2013 for the test fixtures' face photo).
# Work folder: $EMO_SYSTEMD_CHECK_DIR, default /var/tmp/emotiond-systemd-check. The bootstrapped
# root is kept there as base/ and copied for each run; delete base/ to bootstrap anew. The build,
# configured for the prefix /usr (the unit's paths are fixed at configure time), is build-systemd/
# in the checkout; the fixtures come from build/ (made there by its `fixtures` test if missing).
set -u

src=$(cd "$(dirname "$0")/.." && pwd)
work=${EMO_SYSTEMD_CHECK_DIR:-/var/tmp/emotiond-systemd-check}
shared=${EMO_SHARED_DIR:-$src/../shared}
yunet=$shared/models/face/face_detection_yunet_2022mar.onnx
sock=/run/emotiond/emotiond.sock
start=$(date +%s)

[ "$(id -u)" -eq 0 ] || { echo "systemd-check.sh: needs root (mmdebstrap, systemd-nspawn, nsenter)" >&2; exit 2; }
for tool in mmdebstrap systemd-nspawn nsenter cmake; do
        command -v $tool >/dev/null || { echo "systemd-check.sh: $tool not found (apt-get install mmdebstrap systemd-container cmake)" >&2; exit 2; }
done
[ -r "$yunet" ] || { echo "systemd-check.sh: $yunet not found (set EMO_SHARED_DIR)" >&2; exit 2; }

# pass, fail, step; nspawn_bootstrap, nspawn_boot, ct, nspawn_teardown
. "$src/scripts/lib/nspawn.sh"

# The run-time libraries of emotiond and emotion (ldd -> dpkg -S; apt adds their dependencies),
# with OpenBLAS's pthread flavour as on a developer's machine (apt would pick the reference BLAS).
packages=systemd,systemd-sysv,dbus,libnss-systemd,passwd,libopencv-core406,libopencv-imgproc406,libopencv-imgcodecs406
packages=$packages,libopencv-objdetect406,libopencv-dnn406,libopenblas0-pthread,libczmq4,libzmq5
packages=$packages,libprotobuf-c1,libjson-c5,libinih1,libsystemd0,libjpeg62-turbo,libwebp7,libssl3,zlib1g,libmicrohttpd12,libcurl4
packages=$packages,libavformat59,libavcodec59,libavdevice59,libswscale6,libavutil57

mkdir -p "$work"
# A root made before a package joined the list lacks it: make it anew.
if [ -d "$work/base" ]; then
        missing=
        for p in ${packages//,/ }; do
                dpkg-query --admindir="$work/base/var/lib/dpkg" -W -f='${Status}' "$p" 2>/dev/null |
                        grep -q 'install ok installed' || missing="$missing $p"
        done
        [ -z "$missing" ] || { step "The root in $work/base lacks$missing: bootstrapping anew"; rm -rf "$work/base"; }
fi
if [ ! -d "$work/base" ]; then
        step "Bootstrapping a Debian 12 root into $work/base"
        nspawn_bootstrap "$work/base" "$packages" || { echo "systemd-check.sh: mmdebstrap failed" >&2; exit 2; }
fi

step "Building for the prefix /usr into build-systemd/"
cmake -S "$src" -B "$src/build-systemd" -DCMAKE_INSTALL_PREFIX=/usr -DBUILD_TESTING=OFF >/dev/null &&
        cmake --build "$src/build-systemd" -j"$(nproc)" >/dev/null ||
        { echo "systemd-check.sh: build failed" >&2; exit 2; }
fixtures=$src/build/tests/fixtures
if [ ! -r "$fixtures/one_face.jpg" ]; then
        step "Making the test fixtures in build/"
        { cmake -S "$src" -B "$src/build" -DBUILD_TESTING=ON >/dev/null && cmake --build "$src/build" -j"$(nproc)" >/dev/null &&
                (cd "$src/build" && ctest -R '^fixtures$' >/dev/null); } ||
                { echo "systemd-check.sh: could not make the fixtures" >&2; exit 2; }
fi
expected=$(fixture_emotion "$fixtures") || expected=

step "Copying the root and installing the build"
root=$work/root
rm -rf "$root"
cp -a "$work/base" "$root"
DESTDIR=$root cmake --install "$src/build-systemd" >/dev/null || { echo "systemd-check.sh: install failed" >&2; exit 2; }
install -D -m 0644 "$yunet" "$root/usr/share/emotiond/detectors/$(basename "$yunet")"
install -d -m 0755 "$root/srv/photos"
install -m 0644 "$fixtures/one_face.jpg" "$fixtures/no_face.jpg" "$root/srv/photos/"
# Socket activation from boot, as `systemctl enable emotiond.socket` on an installed system.
systemctl --root="$root" --quiet enable emotiond.socket ||
        { echo "systemd-check.sh: could not enable emotiond.socket in the root" >&2; exit 2; }

step "Booting the root with systemd-nspawn (console in $work/boot.log)"
nspawn_boot "$root" "$work/boot.log"
# The host's pid of a pid in the container.
ct_pid() { local p; for p in $(pgrep -P "$pid1"); do
        [ "$(awk '/^NSpid/ { print $3 }' "/proc/$p/status")" = "$1" ] && echo "$p"; done; }

case $state in
running) pass "boot: systemd is PID 1 of the container, system $state" ;;
degraded) pass "boot: system $state (failed units below, none of them emotiond)"; ct systemctl --failed --no-legend ;;
*) fail "boot: system '$state'"; ct systemctl --failed --no-legend ;;
esac

# The root was copied from a base without the group; after boot it must be there. sysusers'
# own "Creating group" line is quoted when the journal has it, but it is no proof: once, the
# journal of the boot held only "Finished systemd-sysusers.service" although the group was made.
group=$(ct getent group emotiond)
made=$(ct journalctl -b -q --no-pager -o cat -u systemd-sysusers | grep "'emotiond'")
if grep -q '^emotiond:' "$work/base/etc/group"; then
        fail "sysusers: the base root already has the group emotiond, nothing to show"
elif [ -n "$group" ]; then
        pass "sysusers: the group was made at boot: $group${made:+ (systemd-sysusers: $made)}"
else
        fail "sysusers: no group emotiond after boot"
        ct journalctl -b -q --no-pager -o cat -u systemd-sysusers | sed 's/^/    /'
fi

ct useradd --create-home member
ct usermod -aG emotiond member
ct useradd --create-home outsider
as() { local user=$1; shift; ct runuser -u "$user" -- "$@"; }

step "Socket activation"
socket_state=$(ct systemctl show -p ActiveState -p SubState emotiond.socket | paste -sd' ')
service_state=$(ct systemctl is-active emotiond)
sock_perm=$(ct stat -c '%U:%G %a' "$sock" 2>&1)
dir_perm=$(ct stat -c '%U:%G %a' /run/emotiond 2>&1)
[ "$socket_state" = "ActiveState=active SubState=listening" ] && [ "$service_state" = inactive ] &&
        [ "$sock_perm" = "root:emotiond 660" ] && [ "$dir_perm" = "root:root 755" ] &&
        pass "socket unit: at boot emotiond.socket is $socket_state, the service $service_state, $sock $sock_perm, /run/emotiond $dir_perm" ||
        fail "socket unit: emotiond.socket '$socket_state', service '$service_state', $sock '$sock_perm' (want root:emotiond 660), /run/emotiond '$dir_perm' (want root:root 755)"

t0=$(date +%s%N)
out=$(as member emotion health --server "ipc://$sock" --timeout 60000 --attempts 1 2>&1)
rc=$?
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
served=$(ct journalctl -b -q --no-pager -o cat -u emotiond | grep 'Serving on')
if [ $rc -eq 0 ] && ct systemctl is-active -q emotiond && echo "$served" | grep -q "ipc://$sock (from systemd)"; then
        pass "activation: the first client's health request started the service and was answered in $ms ms; the daemon said: $served"
else
        fail "activation: health exit $rc after $ms ms, service $(ct systemctl is-active emotiond), daemon said '$served'"
        echo "$out" | sed 's/^/    /'
fi

step "Starting emotiond"
ct systemctl daemon-reload
ct systemctl enable --now emotiond 2>&1
if ct systemctl is-active -q emotiond; then
        pass "start: $(ct systemctl show -p ActiveState -p SubState -p StatusText emotiond | paste -sd' ')"
else
        fail "start: emotiond is $(ct systemctl is-active emotiond)"
fi
ct systemctl status --no-pager emotiond | sed 's/^/    /'

# The socket and its folder are systemd's, whether the service runs or not.
sock_perm=$(ct stat -c '%U:%G %a' "$sock" 2>&1)
dir_perm=$(ct stat -c '%U:%G %a' /run/emotiond 2>&1)
[ "$sock_perm" = "root:emotiond 660" ] && [ "$dir_perm" = "root:root 755" ] &&
        pass "socket: $sock $sock_perm, /run/emotiond $dir_perm" ||
        fail "socket: $sock '$sock_perm', /run/emotiond '$dir_perm' (want root:emotiond 660 and root:root 755)"
ct ls -ln /run/emotiond | sed 's/^/    /'

out=$(as member emotion analyze --json --server "ipc://$sock" --timeout 10000 --attempts 1 /srv/photos/one_face.jpg 2>&1)
rc=$?
echo "$out" | sed 's/^/    /'
emotion=$(echo "$out" | grep -o '"emotion": *"[a-z]*"' | head -1 | grep -o '"[a-z]*"$' | tr -d '"')
if [ $rc -eq 0 ] && [ -n "$emotion" ] && { [ -z "$expected" ] || [ "$emotion" = "$expected" ]; }; then
        pass "member: analyze of a face answered '$emotion' (the model's answer in Python: '${expected:-?}'), with MemoryDenyWriteExecute=$(ct systemctl show -P MemoryDenyWriteExecute emotiond) ($(grep -h '^Seccomp' "/proc/$(ct_pid "$(ct systemctl show -P MainPID emotiond)")/status" | paste -sd' '))"
else
        fail "member: analyze exit $rc, emotion '${emotion}', expected '${expected:-any}'"
fi
out=$(as member emotion analyze --server "ipc://$sock" --timeout 10000 --attempts 1 /srv/photos/no_face.jpg 2>&1)
rc=$?
[ $rc -eq 0 ] && pass "member: analyze of a photo without a face: $(echo "$out" | head -1)" ||
        fail "member: analyze of no_face.jpg exit $rc: $out"

t0=$(date +%s%N)
out=$(as outsider emotion analyze --server "ipc://$sock" --timeout 3000 --attempts 1 /srv/photos/one_face.jpg 2>&1)
rc=$?
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
echo "$out" | sed 's/^/    /'
[ $rc -ne 0 ] && echo "$out" | grep -q 'Permission denied' && pass "outsider: exit $rc after $ms ms with a permission error" ||
        fail "outsider: exit $rc after $ms ms, no permission error"

out=$(as member emotion health --server "ipc://$sock" --timeout 10000 --attempts 1 2>&1)
rc=$?
echo "$out" | sed 's/^/    /'
[ $rc -eq 0 ] && pass "health: answered OK" || fail "health: exit $rc"

# WatchdogSec=30: a daemon that sent no keep-alive would be killed and restarted within it.
main=$(ct systemctl show -P MainPID emotiond)
sleep 35
after=$(ct systemctl show -p MainPID -p NRestarts -p ActiveState -p SubState emotiond | paste -sd' ')
pings=$(ct systemctl show -P WatchdogTimestampMonotonic emotiond)
ready=$(ct systemctl show -P ActiveEnterTimestampMonotonic emotiond)
if [ "$(ct systemctl show -P MainPID emotiond)" = "$main" ] && [ "$(ct systemctl show -P NRestarts emotiond)" = 0 ] &&
        [ "$(ct systemctl show -P SubState emotiond)" = running ] && [ "${pings:-0}" -gt "${ready:-0}" ]; then
        pass "watchdog: 35 s on, $after, last keep-alive $(( (pings - ready) / 1000000 )) s after READY"
else
        fail "watchdog: main pid was $main, now $after; last keep-alive at $pings us, READY at $ready us"
fi

warnings=$(ct journalctl -b -q --no-pager -p warning -u emotiond 2>&1)
[ -z "$warnings" ] && pass "journal: no warning or error about emotiond" ||
        { fail "journal: warnings or errors:"; echo "$warnings" | sed 's/^/    /'; }
ct journalctl -b -q --no-pager -u emotiond | sed 's/^/    /'

# The limits and the firewall, from the service's own cgroup and process.
main=$(ct systemctl show -P MainPID emotiond)
nofile=$(awk '/^Max open files/ { print $4 }' "/proc/$(ct_pid "$main")/limits" 2>/dev/null)
hard=$(awk '/^Max open files/ { print $5 }' "/proc/$nspawn/limits")
want=$(( hard < 65536 ? hard : 65536 ))
[ "$nofile" = "$want" ] && pass "LimitNOFILE: the daemon's hard limit is $nofile (65536, or the container's own hard limit $hard if lower)" ||
        fail "LimitNOFILE: the daemon's hard limit is '$nofile', want $want"
cg=$(ct sh -c 'for d in /sys/fs/cgroup /sys/fs/cgroup/unified; do
        [ -e $d/system.slice/emotiond.service/cgroup.procs ] && echo $d/system.slice/emotiond.service && break; done')
mem=$(ct sh -c "cat /sys/fs/cgroup/system.slice/emotiond.service/memory.max \
        /sys/fs/cgroup/memory/system.slice/emotiond.service/memory.limit_in_bytes 2>/dev/null")
if [ "$mem" = 8808038400 ]; then
        pass "MemoryMax: the service's cgroup is limited to $mem bytes (8400M)"
elif [ -z "$mem" ] && ! ct test -e /sys/fs/cgroup/memory/system.slice; then
        echo "SKIP: MemoryMax: no memory controller in this container's cgroups (the host keeps it), nothing to check"
else
        fail "MemoryMax: the service's memory limit is '$mem', want 8808038400"
fi
# A process moved into the service's cgroup gets its BPF programs: a closed port on localhost
# answers "Connection refused", while a SYN to this machine's own non-loopback address is
# dropped before it leaves, so the connect times out.
other=$(ip -4 -o addr show scope global 2>/dev/null | awk '{ sub("/.*", "", $4); print $4; exit }')
probe() { ct bash -c "echo \$\$ > $cg/cgroup.procs && exec timeout 3 bash -c 'exec 3<>/dev/tcp/$1/9'" 2>&1; }
if [ -z "$other" ] || [ -z "$cg" ]; then
        echo "SKIP: IPAddressDeny: no non-loopback address here, or no cgroup for emotiond ('$cg')"
else
        local_out=$(probe 127.0.0.1) other_out=$(probe "$other"; echo "exit $?")
        echo "$local_out" | grep -q 'Connection refused' && ! echo "$other_out" | grep -q 'Connection refused' &&
                pass "IPAddressDeny: from the service's cgroup, localhost is reached (refused port) and $other is not ($other_out)" ||
                fail "IPAddressDeny: localhost: '$local_out'; $other: '$other_out'"
fi

security=$(ct systemd-analyze security --no-pager emotiond 2>&1 | grep 'Overall exposure')
score=$(echo "$security" | grep -o '[0-9]*\.[0-9]' | head -1)
[ -n "$score" ] && awk -v s="$score" 'BEGIN { exit !(s <= 1.8) }' && pass "security: $security" ||
        fail "security: '$security' (want at most 1.8)"

before=$(ct systemctl show -P MainPID emotiond)
ct systemctl restart emotiond
after=$(ct systemctl show -P MainPID emotiond)
out=$(as member emotion health --server "ipc://$sock" --timeout 10000 --attempts 1 2>&1)
rc=$?
ct systemctl is-active -q emotiond && [ "$after" != "$before" ] && [ $rc -eq 0 ] &&
        pass "restart: active again, main pid $before -> $after, health OK" ||
        fail "restart: $(ct systemctl is-active emotiond), main pid $before -> $after, health exit $rc"

ct systemctl stop emotiond 2>/dev/null # "its triggering units are still active": emotiond.socket, as meant
result=$(ct systemctl show -p ExecMainStatus -p Result emotiond | paste -sd' ')
[ "$result" = "ExecMainStatus=0 Result=success" ] || [ "$result" = "Result=success ExecMainStatus=0" ] &&
        pass "stop: $result" || fail "stop: $result"
ct journalctl -b -q --no-pager -u emotiond -n 6 | sed 's/^/    /'

# The daemon leaves systemd's socket in place: the next client starts the service again.
sock_perm=$(ct stat -c '%U:%G %a' "$sock" 2>&1)
out=$(as member emotion health --server "ipc://$sock" --timeout 60000 --attempts 1 2>&1)
rc=$?
[ "$sock_perm" = "root:emotiond 660" ] && [ $rc -eq 0 ] && ct systemctl is-active -q emotiond &&
        pass "reactivation: after the stop $sock is still $sock_perm, and the next health request started the service again" ||
        fail "reactivation: $sock '$sock_perm' after the stop, health exit $rc, service $(ct systemctl is-active emotiond)"

step "Starting the service with its socket stopped"
# The service requires the socket unit: starting it makes the socket again.
ct systemctl stop emotiond.socket emotiond 2>/dev/null
gone=$(ct test -e "$sock" && echo present || echo removed)
ct systemctl start emotiond
out=$(as member emotion health --server "ipc://$sock" --timeout 10000 --attempts 1 2>&1)
rc=$?
[ "$gone" = removed ] && [ $rc -eq 0 ] && ct systemctl is-active -q emotiond.socket &&
        pass "requires: with both stopped the socket file was $gone; 'systemctl start emotiond' started emotiond.socket too and health answered" ||
        fail "requires: socket file $gone after stopping both, emotiond.socket $(ct systemctl is-active emotiond.socket), health exit $rc"
ct systemctl stop emotiond 2>/dev/null

nspawn_teardown
echo "==> $failed check(s) failed, $(( $(date +%s) - start )) s"
[ $failed -eq 0 ]

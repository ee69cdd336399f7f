#!/bin/bash
# Proves the Debian package under a real systemd as PID 1: boots a Debian 12 root in systemd-nspawn,
# runs `apt install ./emotiond_*.deb` in it as an administrator would, and checks that the package's
# maintainer scripts made the group emotiond and started the service, that the socket belongs to
# that group and is not world-writable, that the configuration is a conffile and the man pages are
# there, that emotiond-setup-detectors installs YuNet (from a local copy: the container has no
# reason to download) and the restarted service takes it, that a member of the group gets the
# shipped model's answer for a face photo and a non-member a permission error, and that
# `apt purge` stops the service and removes the configuration. Prints PASS or FAIL per check;
# exits 1 when any failed. The container is always shut down.
#
#   sudo scripts/deb-check.sh [DEB_DIR]     (default: $EMO_DEB_DIR, else /var/tmp/emotiond-deb,
#                                            where scripts/build-deb.sh leaves the packages)
#
# Needs root, mmdebstrap, systemd-container and Debian's package mirror (to bootstrap the root,
# with the package's dependencies, once), the test fixtures of build/ (made by its `fixtures` test)
# and the YuNet detector: EMO_YUNET_FILE=PATH, else the copy scripts/setup.sh installed in the
# user's data folder.
# Work folder: $EMO_DEB_CHECK_DIR, default /var/tmp/emotiond-deb-check; the bootstrapped root is
# kept there per dependency list and copied for each run.
set -u

src=$(cd "$(dirname "$0")/.." && pwd)
debs=${1:-${EMO_DEB_DIR:-/var/tmp/emotiond-deb}}
work=${EMO_DEB_CHECK_DIR:-/var/tmp/emotiond-deb-check}
yunet=${EMO_YUNET_FILE:-${XDG_DATA_HOME:-$HOME/.local/share}/emotiond/detectors/face_detection_yunet_2022mar.onnx}
fixtures=$src/build/tests/fixtures
sock=/run/emotiond/emotiond.sock
start=$(date +%s)

[ "$(id -u)" -eq 0 ] || { echo "deb-check.sh: needs root (mmdebstrap, systemd-nspawn, nsenter)" >&2; exit 2; }
for tool in mmdebstrap systemd-nspawn nsenter dpkg-deb; do
        command -v $tool >/dev/null || { echo "deb-check.sh: $tool not found (scripts/setup.sh --deb)" >&2; exit 2; }
done
deb=$(ls "$debs"/emotiond_*_"$(dpkg --print-architecture)".deb 2>/dev/null | tail -1)
data=$(ls "$debs"/emotiond-data_*_all.deb 2>/dev/null | tail -1)
[ -n "$deb" ] && [ -n "$data" ] || { echo "deb-check.sh: no emotiond_*.deb and emotiond-data_*.deb in $debs (scripts/build-deb.sh)" >&2; exit 2; }
[ -r "$yunet" ] || { echo "deb-check.sh: $yunet not found (set EMO_YUNET_FILE)" >&2; exit 2; }
[ -r "$fixtures/one_face.jpg" ] || { echo "deb-check.sh: no $fixtures/one_face.jpg (ctest --test-dir build -R fixtures)" >&2; exit 2; }

# pass, fail, step; nspawn_bootstrap, nspawn_boot, ct, nspawn_teardown
. "$src/scripts/lib/nspawn.sh"

# The root holds systemd, apt and the package's dependencies (first alternative of each, without
# versions; emotiond-data comes with the package), so that installing the .deb needs no network, as
# on a machine kept up to date.
depends=$(dpkg-deb -f "$deb" Depends | tr ',' '\n' | sed 's/|.*//; s/(.*)//; s/ //g' | grep -v '^$' |
        grep -v '^emotiond-data$' | sort -u | paste -sd,)
packages=$(echo "systemd,systemd-sysv,dbus,libnss-systemd,passwd,apt,$depends" | tr ',' '\n' | sort -u | paste -sd,)
base=$work/base-$(echo "$packages" | sha256sum | cut -c1-12)
mkdir -p "$work"
if [ ! -d "$base" ]; then
        step "Bootstrapping a Debian 12 root with $packages"
        nspawn_bootstrap "$base" "$packages" || { echo "deb-check.sh: mmdebstrap failed" >&2; exit 2; }
fi
expected=$(fixture_emotion "$fixtures") || expected=

step "Copying the root"
root=$work/root
rm -rf "$root"
cp -a "$base" "$root"
install -d -m 0755 "$root/srv/photos"
install -m 0644 "$deb" "$data" "$root/srv/"
install -m 0644 "$yunet" "$root/srv/"
install -m 0644 "$fixtures/one_face.jpg" "$root/srv/photos/"

step "Booting the root with systemd-nspawn (console in $work/boot.log)"
nspawn_boot "$root" "$work/boot.log"
case $state in
running|degraded) pass "boot: systemd is PID 1 of the container, system $state" ;;
*) fail "boot: system '$state'" ;;
esac

step "apt install ./$(basename "$deb") ./$(basename "$data")"
out=$(ct env DEBIAN_FRONTEND=noninteractive apt-get install -y "/srv/$(basename "$deb")" "/srv/$(basename "$data")" 2>&1)
rc=$?
echo "$out" | tail -12 | sed 's/^/    /'
[ $rc -eq 0 ] && pass "install: apt-get install ./$(basename "$deb") ./$(basename "$data") exit 0" || fail "install: apt-get exit $rc"

group=$(ct getent group emotiond)
[ -n "$group" ] && pass "sysusers: the package's postinst made the group ($group)" || fail "sysusers: no group emotiond"
enabled=$(ct systemctl is-enabled emotiond 2>&1)
for _ in $(seq 50); do ct systemctl is-active -q emotiond && break; sleep 0.2; done
if ct systemctl is-active -q emotiond; then
        pass "service: started by the package, $enabled, $(ct systemctl show -p ActiveState -p SubState -p StatusText emotiond | paste -sd' ')"
else
        fail "service: $(ct systemctl is-active emotiond), $enabled"
        ct journalctl -b -q --no-pager -u emotiond | tail -20 | sed 's/^/    /'
fi
for _ in $(seq 50); do ct test -S "$sock" && break; sleep 0.2; done
sock_perm=$(ct stat -c '%U:%G %A' "$sock" 2>&1)
case $sock_perm in
*:emotiond\ s???????-?) pass "socket: $sock $sock_perm (group emotiond, not world-writable)" ;;
*) fail "socket: $sock '$sock_perm' (want group emotiond, no write for others)" ;;
esac
conffiles=$(ct dpkg-query -W -f='${Conffiles}' emotiond)
echo "$conffiles" | grep -q '/etc/emotiond/emotiond.conf' && pass "conffile: /etc/emotiond/emotiond.conf" ||
        fail "conffile: not in '$conffiles'"
pages=$(ct sh -c 'ls /usr/share/man/man1/emotion.1.gz /usr/share/man/man5/emotiond.conf.5.gz /usr/share/man/man8/emotiond.8.gz' 2>&1)
[ $? -eq 0 ] && pass "man pages: $(echo $pages)" || fail "man pages: $pages"
detector=$(ct journalctl -b -q --no-pager -o cat -u emotiond | grep -o '[a-z]* detector [^ ,]*' | tail -1)
echo "    before emotiond-setup-detectors: $detector"

step "emotiond-setup-detectors with a local copy of YuNet, then a restart"
out=$(ct env EMO_YUNET_FILE="/srv/$(basename "$yunet")" EMO_BLAZEFACE_TGZ=/srv/none.tgz emotiond-setup-detectors 2>&1)
rc=$?
echo "$out" | sed 's/^/    /'
ct systemctl restart emotiond
detector=$(ct journalctl -b -q --no-pager -o cat -u emotiond | grep -o '[a-z]* detector [^ ,]*' | tail -1)
{ [ $rc -eq 0 ] || [ $rc -eq 3 ]; } && [ "$detector" = "yunet detector /var/lib/emotiond/detectors/face_detection_yunet_2022mar.onnx" ] &&
        pass "detectors: emotiond-setup-detectors exit $rc (3: no BlazeFace offline), after restart: $detector" ||
        fail "detectors: emotiond-setup-detectors exit $rc, the daemon uses '$detector'"

ct useradd --create-home member
ct usermod -aG emotiond member
ct useradd --create-home outsider
for _ in $(seq 50); do ct test -S "$sock" && break; sleep 0.2; done
out=$(ct runuser -u member -- emotion analyze --json --timeout 20000 --attempts 1 /srv/photos/one_face.jpg 2>&1)
rc=$?
echo "$out" | sed 's/^/    /'
emotion=$(echo "$out" | grep -o '"emotion": *"[a-z]*"' | head -1 | grep -o '"[a-z]*"$' | tr -d '"')
[ $rc -eq 0 ] && [ -n "$emotion" ] && { [ -z "$expected" ] || [ "$emotion" = "$expected" ]; } &&
        pass "member: emotion analyze (default endpoint $sock) answered '$emotion' (the model's answer in Python: '${expected:-?}')" ||
        fail "member: analyze exit $rc, emotion '$emotion', expected '${expected:-any}'"
out=$(ct runuser -u outsider -- emotion analyze --timeout 3000 --attempts 1 /srv/photos/one_face.jpg 2>&1)
rc=$?
echo "$out" | sed 's/^/    /'
[ $rc -ne 0 ] && echo "$out" | grep -q 'Permission denied' && ! echo "$out" | grep -q 'failed to execute' && pass "outsider: exit $rc with a permission error" ||
        fail "outsider: exit $rc: $out"
# The first start, on Haar, warned that no better detector was there (expected); the service
# restarted with YuNet must not warn.
invocation=$(ct systemctl show -P InvocationID emotiond)
warnings=$(ct journalctl -b -q --no-pager -p warning "_SYSTEMD_INVOCATION_ID=$invocation" 2>&1)
started=$(ct journalctl -b -q --no-pager -o cat "_SYSTEMD_INVOCATION_ID=$invocation" | grep -c 'emotiond .*: model ')
[ -n "$invocation" ] && [ -z "$warnings" ] && [ "$started" -ge 1 ] && pass "journal: no warning or error from the service since its restart on YuNet" ||
        { fail "journal: warnings or errors:"; echo "$warnings" | sed 's/^/    /'; }

step "apt purge emotiond emotiond-data"
out=$(ct env DEBIAN_FRONTEND=noninteractive apt-get purge -y emotiond emotiond-data 2>&1)
rc=$?
state=$(ct systemctl is-active emotiond 2>&1)
[ $rc -eq 0 ] && [ "$state" != active ] && ! ct test -e /etc/emotiond/emotiond.conf && ! ct test -e /usr/sbin/emotiond &&
        pass "purge: exit 0, service $state, /etc/emotiond/emotiond.conf and /usr/sbin/emotiond gone" ||
        fail "purge: exit $rc, service $state"

nspawn_teardown
echo "==> $failed check(s) failed, $(( $(date +%s) - start )) s"
[ $failed -eq 0 ]

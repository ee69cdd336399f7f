#!/usr/bin/env bash
# Prove the README's two commands on a machine that has nothing installed: bootstrap a clean
# Debian 12 root with mmdebstrap, clone this checkout's HEAD into it as an ordinary user's
# project (with passwordless sudo, as on a desktop), put ../shared beside the clone (read-only),
# and run there, as that user, `scripts/quickstart.sh` (it must print a face with its emotion,
# confidence and emoji, and a dialogue line) and then `scripts/test.sh`. Exits non-zero when
# either fails. Needs root (mmdebstrap, chroot, mounts) and Debian's package mirror.
#
#   scripts/fresh-check.sh [--keep] [--skip-tests]
#
# --keep        leave the root in place (its path is printed) to look around after a failure
# --skip-tests  run the quick start only
#
# Why: the development and CI machines already have most packages, which hid missing install
# steps (a fresh root once failed both commands). Only uncommitted changes are not checked: the
# clone is of HEAD, like CI's.
#
# Environment: EMO_SHARED_DIR   the shared/ folder to put beside the clone (default ../shared)
#              EMO_FRESH_CACHE  where downloaded .deb files are kept between runs, so that a second
#                               check does not download the ~1 GB of packages again (default
#                               ~/.cache/emotiond-fresh-check)
#              EMO_FRESH_DIR    where the root is made (default /var/tmp)
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)

keep=0 tests=1
for arg in "$@"; do
        case "$arg" in
        --keep) keep=1 ;;
        --skip-tests) tests=0 ;;
        -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
        *) echo "fresh-check.sh: unknown option $arg" >&2; exit 2 ;;
        esac
done
if [ "$(id -u)" != 0 ]; then
        echo "fresh-check.sh: needs root (mmdebstrap, chroot and mounts); run it with sudo" >&2
        exit 2
fi
shared=$(cd "${EMO_SHARED_DIR:-$src/../shared}" 2>/dev/null && pwd) || {
        echo "fresh-check.sh: no shared/ folder at ${EMO_SHARED_DIR:-$src/../shared} (the tests read FER2013" \
                "and the detector files from it); set EMO_SHARED_DIR" >&2
        exit 2
}
cache="${EMO_FRESH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/emotiond-fresh-check}"
mkdir -p "$cache/archives/partial"

for tool in mmdebstrap unshare; do
        if ! command -v "$tool" >/dev/null; then
                echo "==> Installing mmdebstrap"
                apt-get update -q
                DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends mmdebstrap util-linux
                break
        fi
done

t0=$SECONDS
phase() { # NAME: print the time the previous phase took, then announce NAME
        echo "==> [$((SECONDS - t0)) s] $1"
}

root=$(mktemp -d "${EMO_FRESH_DIR:-/var/tmp}/emotiond-fresh.XXXXXX")
cleanup() {
        if [ "$keep" = 1 ]; then
                echo "==> The root is kept in $root"
        else
                rm -rf --one-file-system "$root"
        fi
}
trap cleanup EXIT

phase "Bootstrapping Debian 12 in $root"
# The same start as a new user's machine: apt, git, sudo and CA certificates, nothing else.
mmdebstrap --quiet --variant=apt --include=ca-certificates,git,sudo bookworm "$root"
cp /etc/resolv.conf "$root/etc/resolv.conf"
# The root trusts the certificates the host trusts: behind a TLS-inspecting proxy (as in CI) the
# downloads over https would fail otherwise, which is the network's doing, not the project's.
mkdir -p "$root/usr/local/share/ca-certificates"
cp /etc/ssl/certs/ca-certificates.crt "$root/usr/local/share/ca-certificates/host-trusted.crt"
chroot "$root" update-ca-certificates >/dev/null 2>&1
chroot "$root" useradd --create-home --shell /bin/bash tester
echo 'tester ALL=(ALL) NOPASSWD: ALL' >"$root/etc/sudoers.d/tester"
git clone --quiet "$src" "$root/home/tester/emotiond"
mkdir -p "$root/home/tester/shared"
chroot "$root" chown -R tester:tester /home/tester

# Third-party detector files come from their publishers' URLs; where the network stops at the
# package mirrors (CI), YuNet is taken from shared/, which holds a copy with the same sha256.
yunet=""
[ -f "$shared/models/face/face_detection_yunet_2022mar.onnx" ] &&
        yunet=/home/tester/shared/models/face/face_detection_yunet_2022mar.onnx

# Run a command as the user, inside the root, with a fresh environment. The mounts live in a
# private mount namespace and vanish with it, even if this script is killed.
as_user() { # LOG COMMAND
        local log=$1
        shift
        unshare --mount --propagation private -- bash -euc '
                root=$1 shared=$2 cache=$3 yunet=$4
                shift 4
                mount --rbind /dev "$root/dev"
                mount -t proc proc "$root/proc"
                mount -t sysfs sysfs "$root/sys"
                mount -t tmpfs tmpfs "$root/tmp"
                mount --bind "$shared" "$root/home/tester/shared"
                mount -o remount,bind,ro "$root/home/tester/shared"
                mount --bind "$cache/archives" "$root/var/cache/apt/archives"
                exec chroot --userspec=tester:tester "$root" env -i HOME=/home/tester USER=tester \
                        LOGNAME=tester SHELL=/bin/bash LANG=C.UTF-8 TERM=dumb \
                        PATH=/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin \
                        ${yunet:+EMO_YUNET_FILE=$yunet} \
                        bash -c "cd ~/emotiond && $*"
        ' fresh-check "$root" "$shared" "$cache" "$yunet" "$@" 2>&1 | tee "$log"
        return "${PIPESTATUS[0]}"
}

logs=$(mktemp -d "${EMO_FRESH_DIR:-/var/tmp}/emotiond-fresh-logs.XXXXXX")
status=0

phase "scripts/quickstart.sh (as the user tester)"
if ! as_user "$logs/quickstart.log" scripts/quickstart.sh; then
        echo "fresh-check.sh: FAILED: scripts/quickstart.sh exited non-zero on a fresh Debian 12" >&2
        status=1
else
        emotions='angry|disgust|fear|happy|sad|surprise|neutral'
        # A face line: "face 1  box X,Y WxH  EMOTION  NN.N%  EMOJI" (the emoji is not ASCII).
        if ! grep -aEq "^ +face [0-9]+ +box [0-9]+,[0-9]+ [0-9]+x[0-9]+ +($emotions) +[0-9.]+% +[^ -~]" \
                "$logs/quickstart.log"; then
                echo "fresh-check.sh: FAILED: the quick start printed no face with an emotion and an emoji" >&2
                status=1
        fi
        if ! grep -aEq "^ +dialogue \([a-z]+, ($emotions)\): .+" "$logs/quickstart.log"; then
                echo "fresh-check.sh: FAILED: the quick start printed no dialogue line" >&2
                status=1
        fi
fi
quick_s=$((SECONDS - t0))

if [ "$tests" = 1 ]; then
        phase "scripts/test.sh (as the user tester)"
        if ! as_user "$logs/test.log" scripts/test.sh; then
                echo "fresh-check.sh: FAILED: scripts/test.sh exited non-zero on a fresh Debian 12" >&2
                status=1
        fi
fi

phase "Done"
echo "fresh-check: the quick start took ${quick_s} s (bootstrap included), everything $((SECONDS - t0)) s;" \
        "logs in $logs, packages cached in $cache"
if [ "$status" = 0 ]; then
        echo "fresh-check: PASSED"
else
        echo "fresh-check: FAILED" >&2
fi
exit "$status"

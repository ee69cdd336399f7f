#!/bin/bash
# Build the OCI image of emotiond from Debian packages, with no base image from a registry:
# mmdebstrap makes a Debian 12 root (from the configured apt mirror) with the project's .deb files
# installed, a fixed non-root user, the YuNet face detector (emotiond-setup-detectors, sha256
# checked) and deploy/container/emotiond.conf; buildah imports that root into an empty image
# (`buildah from scratch`) and sets the entrypoint, user, port and volumes. See docs/deploy.md.
#
#   deploy/container/build.sh [--debs DIR] [--tag NAME] [--archive FILE]
#
# --debs DIR      where emotiond_*.deb and emotiond-data_*.deb are (default: $EMO_DEB_DIR, else
#                 /var/tmp/emotiond-deb, where scripts/build-deb.sh leaves them)
# --tag NAME      image name (default localhost/emotiond:VERSION, also tagged :latest)
# --archive FILE  also write the image as an OCI archive (for `ctr images import`, a registry...)
#
# Environment: EMO_YUNET_FILE=path, EMO_BLAZEFACE_TGZ=path: take the detectors from local copies
#              (same sha256 check) instead of downloading them from their publishers.
#              EMO_IMAGE_WORK=DIR: work folder (default /var/tmp/emotiond-image), removed at the end.
#              EMO_APT_MIRROR=URL: Debian mirror for mmdebstrap (default: the host's apt sources).
# Needs root, mmdebstrap and buildah (scripts/setup.sh --container). About 3 minutes.
set -euo pipefail

src=$(cd "$(dirname "$0")/../.." && pwd)
debs=${EMO_DEB_DIR:-/var/tmp/emotiond-deb}
version=$(dpkg-parsechangelog -l "$src/debian/changelog" -S Version)
tag=localhost/emotiond:$version
archive=
while [ $# -gt 0 ]; do
        case $1 in
        --debs) debs=$2; shift ;;
        --tag) tag=$2; shift ;;
        --archive) archive=$2; shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "build.sh: unknown option $1 (try --help)" >&2; exit 2 ;;
        esac
        [ $# -gt 0 ] && shift
done
[ "$(id -u)" -eq 0 ] || { echo "build.sh: needs root (mmdebstrap in root mode, buildah)" >&2; exit 2; }
for tool in mmdebstrap buildah; do
        command -v $tool >/dev/null || { echo "build.sh: $tool is missing (scripts/setup.sh --container)" >&2; exit 2; }
done
arch=$(dpkg --print-architecture)
deb=$debs/emotiond_${version}_$arch.deb
data=$debs/emotiond-data_${version}_all.deb
for f in "$deb" "$data"; do
        [ -f "$f" ] || { echo "build.sh: $f is missing: run scripts/build-deb.sh first" >&2; exit 2; }
done

work=${EMO_IMAGE_WORK:-/var/tmp/emotiond-image}
rm -rf "$work"
mkdir -p "$work/debs"
cp "$deb" "$data" "$work/debs/"
rootfs=$work/rootfs.tar
# The uid and gid of the daemon in the image: fixed, so that Kubernetes' runAsNonRoot can check
# them and the keys can be given to that owner (fsGroup).
uid=10001

# mmdebstrap installs local .deb files given to --include from the same path inside the root,
# so they are copied there first (and removed at the end). The packages' maintainer scripts run:
# emotiond's postinst makes the group emotiond (systemd-sysusers, from the small
# systemd-standalone-sysusers instead of systemd, which a container does not run).
# Documentation, man pages and translations are left out; copyright files are kept.
echo "==> mmdebstrap bookworm with $(basename "$deb") $(basename "$data")"
mirror=()
[ -z "${EMO_APT_MIRROR:-}" ] || mirror=("$EMO_APT_MIRROR")
SOURCE_DATE_EPOCH=$(dpkg-parsechangelog -l "$src/debian/changelog" -S Timestamp) \
mmdebstrap --quiet --variant=essential --mode=root --format=tar --aptopt='APT::Install-Recommends "false"' \
        --include="passwd,systemd-standalone-sysusers,$work/debs/$(basename "$deb"),$work/debs/$(basename "$data")" \
        --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
        --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
        --setup-hook="mkdir -p \"\$1$work/debs\" && cp $work/debs/*.deb \"\$1$work/debs/\"" \
        --customize-hook="rm -rf \"\$1$work\"" \
        --customize-hook="chroot \"\$1\" groupmod --gid $uid emotiond" \
        --customize-hook="chroot \"\$1\" useradd --uid $uid --gid emotiond --no-create-home \
                --home-dir /nonexistent --shell /usr/sbin/nologin --comment 'emotiond daemon' emotiond" \
        --customize-hook="install -d -m 0750 -o $uid -g $uid \"\$1/run/emotiond\"" \
        --customize-hook="install -d -m 0755 \"\$1/etc/emotiond/server\" \"\$1/etc/emotiond/clients.d\"" \
        --customize-hook="install -m 0644 $src/deploy/container/emotiond.conf \"\$1/etc/emotiond/container.conf\"" \
        --customize-hook="\"\$1/usr/sbin/emotiond-setup-detectors\" --dest \"\$1/var/lib/emotiond/detectors\" || [ \$? -eq 3 ]" \
        --customize-hook="test -f \"\$1/var/lib/emotiond/detectors/face_detection_yunet_2022mar.onnx\" ||
                { echo 'build.sh: YuNet is not in the image (no network? set EMO_YUNET_FILE)' >&2; exit 1; }" \
        --customize-hook="rm -rf \"\$1\"/var/lib/apt/lists/* \"\$1\"/var/cache/apt/* \"\$1\"/var/log/*" \
        bookworm "$rootfs" "${mirror[@]}"
echo "    $(du -h "$rootfs" | cut -f1) root file system"

echo "==> buildah: $tag"
ctr=$(buildah from --quiet scratch)
trap 'buildah rm "$ctr" >/dev/null 2>&1 || true' EXIT
buildah add --quiet "$ctr" "$rootfs" / >/dev/null
# ENTRYPOINT, so that arguments after the image name (or a pod's args) add options such as
# `--set workers=4`. SIGTERM drains (2 s at most), then the daemon exits 0. OpenCV's own limit on
# decoded images follows max_pixels of emotiond.conf, as in emotiond.service.
buildah config \
        --entrypoint '["/usr/sbin/emotiond", "--config", "/etc/emotiond/container.conf"]' --cmd '' \
        --user $uid:$uid --workingdir / --port 5560/tcp --stop-signal SIGTERM \
        --volume /run/emotiond --volume /etc/emotiond/server --volume /etc/emotiond/clients.d \
        --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        --env OPENCV_IO_MAX_IMAGE_PIXELS=16000000 \
        --label org.opencontainers.image.title=emotiond \
        --label org.opencontainers.image.description="Facial emotion recognition daemon (ZeroMQ, CURVE on tcp)" \
        --label org.opencontainers.image.version="$version" \
        "$ctr"
buildah commit --quiet --rm "$ctr" "$tag" >/dev/null
trap - EXIT
rm -rf "$work"  # the image has the root now: 700 MB less in /var/tmp
buildah tag "$tag" "${tag%:*}:latest"
echo "    $(buildah images --format '{{.Name}}:{{.Tag}} {{.ID}} {{.Size}}' "$tag")"
if [ -n "$archive" ]; then
        rm -f "$archive"
        buildah push --quiet "$tag" "oci-archive:$archive:$tag"
        echo "    $archive"
fi
echo "==> Done: $tag"

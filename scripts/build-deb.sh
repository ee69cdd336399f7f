#!/bin/bash
# Build the Debian packages emotiond and emotion-gtk from this checkout (its tracked and untracked,
# not ignored, files) with dpkg-buildpackage, without their tests (DEB_BUILD_OPTIONS=nocheck: the
# tests run in CI, and need FER2013), then run lintian on the result. The build happens in a copy,
# so neither the checkout nor its parent folder gets build files; the .deb, .buildinfo and
# .changes files and lintian.txt end up in the output folder.
#
#   scripts/build-deb.sh [OUTDIR]        (default: $EMO_DEB_DIR, else /var/tmp/emotiond-deb)
#
# Needs dpkg-dev, debhelper, lintian and the build dependencies of debian/control
# (scripts/setup.sh --deb). A few minutes on the 2-core development VM.
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-${EMO_DEB_DIR:-/var/tmp/emotiond-deb}}
version=$(dpkg-parsechangelog -l "$src/debian/changelog" -S Version)
mkdir -p "$out"
out=$(cd "$out" && pwd)
tree=$out/emotiond-$version
rm -rf "$tree"
mkdir -p "$tree"
(cd "$src" && git ls-files -z --cached --others --exclude-standard | xargs -0 cp --parents -P -t "$tree" 2>/dev/null ||
        { git ls-files -z --cached --others --exclude-standard | while IFS= read -r -d '' f; do
                [ -e "$f" ] || [ -L "$f" ] && cp --parents -P "$f" "$tree"; done; })
rm -f "$out"/emotiond_"$version"_*.deb "$out"/emotion-gtk_"$version"_*.deb "$out"/emotiond-dbgsym_*.deb \
        "$out"/emotion-gtk-dbgsym_*.deb "$out"/emotiond_"$version"_*.changes "$out"/emotiond_"$version"_*.buildinfo
echo "==> dpkg-buildpackage in $tree"
(cd "$tree" && DEB_BUILD_OPTIONS="nocheck parallel=$(nproc)" dpkg-buildpackage -us -uc -b -Pnocheck) \
        >"$out/build.log" 2>&1 || { tail -40 "$out/build.log"; echo "build-deb.sh: dpkg-buildpackage failed, see $out/build.log" >&2; exit 1; }
ls -1 "$out"/*.deb
echo "==> lintian"
changes=$(ls "$out"/emotiond_"$version"_*.changes)
lintian --display-info --pedantic "$changes" >"$out/lintian.txt" 2>&1 || true
cat "$out/lintian.txt"
if grep -q '^E: ' "$out/lintian.txt"; then
        echo "build-deb.sh: lintian reports errors" >&2
        exit 1
fi
echo "==> Done: $out"

#!/bin/sh
# emotiond against the fastest JavaScript peer measured (Human, and optionally face-api.js), per
# photo, on one core: the check of issue 25's goal, "at least 5x faster than the fastest peer".
#
#   scripts/bench_peers.sh FER2013.csv.gz [-- bench.py options, e.g. --peer faceapi --rounds 3]
#
# Needs Node.js and npm (Debian: apt-get install nodejs npm; a benchmark, so not in scripts/setup.sh)
# and a build in build/ (or --build DIR). The peers' npm packages are installed by
# scripts/peers/install.sh (pinned, checked, into a cache folder, never into the repository). The
# photos, the timing and the table: scripts/peers/bench.py.
set -eu
cd "$(dirname "$0")/.."
fer=${1:?usage: scripts/bench_peers.sh FER2013.csv.gz [-- bench.py options]}
shift
[ "${1:-}" = "--" ] && shift
command -v taskset >/dev/null || { echo "$0: taskset not found (Debian: apt-get install util-linux)" >&2; exit 1; }
[ -f "$fer" ] || { echo "$0: FER2013 file $fer not found" >&2; exit 1; }
peers=$(scripts/peers/install.sh)
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), node $(node --version)"
echo "emotiond: $(git rev-parse --short HEAD 2>/dev/null || echo '?'), OpenCV $(pkg-config --modversion opencv4)"
exec /usr/bin/python3 scripts/peers/bench.py --fer "$fer" --modules "$peers" "$@"

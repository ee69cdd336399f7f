#!/bin/sh
# Installs the JavaScript peers' npm packages, pinned by scripts/peers/package-lock.json (npm checks
# every package's integrity hash), into $EMO_PEERS_DIR (default ~/.cache/emotiond/peers), never
# into the repository, and only when the lock file changed; prints that folder. Used by
# scripts/bench_peers.sh and scripts/eval_faceapi.py. Needs Node.js and npm (Debian: apt-get
# install nodejs npm): benchmarks and evaluations only, so not in scripts/setup.sh.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
for tool in node npm; do
        command -v "$tool" >/dev/null || { echo "$0: $tool not found (Debian: apt-get install nodejs npm)" >&2; exit 1; }
done
peers=${EMO_PEERS_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/emotiond/peers}
mkdir -p "$peers"
if ! cmp -s "$here/package-lock.json" "$peers/package-lock.json" || [ ! -d "$peers/node_modules" ]; then
        cp "$here/package.json" "$here/package-lock.json" "$peers/"
        # --ignore-scripts: nothing the packages ship is run at install time.
        (cd "$peers" && npm ci --ignore-scripts --no-audit --no-fund) >&2
fi
echo "$peers"

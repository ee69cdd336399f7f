#!/bin/sh
# Run every input under the given folders once through one fuzz target, with the limits of
# scripts/test-hardening.sh: a crash, leak, undefined behaviour, time-out, or an allocation over
# 512 MB fails. Folders that do not exist are skipped (the corpus kept from earlier fuzz runs is
# optional); finding no input at all fails.
#
#   replay.sh FUZZER FOLDER...
set -eu
fuzzer=$1
shift
list=$(mktemp)
trap 'rm -f "$list"' EXIT
for dir in "$@"; do
        [ ! -d "$dir" ] || find "$dir" -type f >>"$list"
done
n=$(wc -l <"$list")
if [ "$n" -eq 0 ]; then
        echo "replay.sh: no input in $*" >&2
        exit 1
fi
echo "$(basename "$fuzzer"): replaying $n inputs from $*"
# libFuzzer runs each file named on its command line once, and stops at the first failure.
xargs -d '\n' "$fuzzer" -malloc_limit_mb=512 -rss_limit_mb=2048 -timeout=10 <"$list"

#!/bin/sh
# The built systemd unit parses without a warning (a misspelt or unknown directive is ignored by
# systemd, with only a log line, so it must fail here) and its sandbox keeps systemd's exposure
# score at or under 1.8 of 10 (`systemd-analyze security`; the unit without a sandbox scored 8.4).
#   check_unit.sh BUILD/deploy/emotiond.service
set -eu
unit=$1
command -v systemd-analyze >/dev/null || { echo "systemd-analyze not found: apt-get install systemd" >&2; exit 1; }
out=$(mktemp) err=$(mktemp)
trap 'rm -f "$out" "$err"' EXIT
rc=0
systemd-analyze security --offline=true --threshold=18 "$unit" >"$out" 2>"$err" || rc=$?
grep Overall "$out" || true
if [ -s "$err" ]; then
        echo "systemd-analyze complained about $unit:" >&2
        cat "$err" >&2
        exit 1
fi
if [ "$rc" -ne 0 ]; then
        echo "$unit: exposure over 1.8 (systemd-analyze exit $rc)" >&2
        grep '✗' "$out" >&2 || true
        exit 1
fi

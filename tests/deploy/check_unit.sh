#!/bin/sh
# The built systemd units parse without a warning (a misspelt or unknown directive is ignored by
# systemd, with only a log line, so it must fail here) and the service's sandbox keeps systemd's
# exposure score at or under 1.8 of 10 (`systemd-analyze security`; the unit without a sandbox
# scored 8.4). With the socket unit and the configuration: the socket unit verifies cleanly next
# to the service and listens on the configuration's ipc endpoint (the daemon serves a passed socket
# in place of the configured endpoint it covers), with the service's group and no access for
# others.
#   check_unit.sh BUILD/deploy/emotiond.service [BUILD/deploy/emotiond.socket BUILD/deploy/emotiond.conf]
set -eu
unit=$1
socket=${2:-}
conf=${3:-}
command -v systemd-analyze >/dev/null || { echo "systemd-analyze not found: apt-get install systemd" >&2; exit 1; }
out=$(mktemp) err=$(mktemp) dir=$(mktemp -d)
trap 'rm -f "$out" "$err"; rm -rf "$dir"' EXIT
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
[ -n "$socket" ] || exit 0

cp "$unit" "$socket" "$dir/"
systemd-analyze verify "$dir/$(basename "$socket")" >"$out" 2>"$err" || { cat "$err" >&2; exit 1; }
if [ -s "$err" ]; then
        echo "systemd-analyze verify complained about $socket:" >&2
        cat "$err" >&2
        exit 1
fi
listen=$(sed -n 's/^ListenStream=//p' "$socket" | head -1)
endpoint=$(sed -n 's/^endpoints *= *//p' "$conf" | head -1)
[ "ipc://$listen" = "$endpoint" ] ||
        { echo "$socket listens on '$listen', $conf has endpoints = '$endpoint'" >&2; exit 1; }
group=$(sed -n 's/^Group=//p' "$unit")
grep -qx "SocketGroup=$group" "$socket" && grep -qx 'SocketMode=0660' "$socket" ||
        { echo "$socket: want SocketGroup=$group (the service's Group=) and SocketMode=0660" >&2; exit 1; }
echo "$socket: verified, ListenStream=$listen, SocketGroup=$group, SocketMode=0660"

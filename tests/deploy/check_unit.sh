#!/bin/sh
# The built systemd units parse without a warning (a misspelt or unknown directive is ignored by
# systemd, with only a log line, so it must fail here); the service's sandbox keeps systemd's
# exposure score at or under 1.8 of 10 (`systemd-analyze security`; the unit without a sandbox
# scored 8.4) and gives the daemon no writable place but, at most, its runtime directory. With the
# socket unit and the configuration: the socket unit verifies cleanly next to the service and
# listens on the configuration's ipc endpoint (the daemon serves a passed socket in place of the
# configured endpoint it covers), with the service's group and no access for others.
#   check_unit.sh BUILD/deploy/emotiond.service [BUILD/deploy/emotiond.socket BUILD/deploy/emotiond.conf]
set -eu
unit=$1
socket=${2:-}
conf=${3:-}
command -v systemd-analyze >/dev/null || { echo "systemd-analyze not found: apt-get install systemd" >&2; exit 1; }
command -v python3 >/dev/null || { echo "python3 not found: apt-get install python3" >&2; exit 1; }
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

# No writable place but the runtime directory (docs/privacy.md: the daemon keeps nothing, and the
# unit makes sure it cannot). What the sandbox amounts to is read from systemd's own evaluation of
# the unit, which applies what DynamicUser=yes implies (ProtectSystem=strict, ProtectHome=read-only,
# PrivateTmp=yes); the directives that would open a writable place again are read from the unit.
systemd-analyze security --offline=true --json=short "$unit" >"$out" 2>/dev/null || true
python3 - "$unit" "$out" <<'PY'
import json, sys

unit, report = sys.argv[1], sys.argv[2]
checks = {e["json_field"]: e for e in json.load(open(report))}
problems = []
if "strict" not in checks["ProtectSystem"]["description"]:
    problems.append("ProtectSystem is not strict: " + checks["ProtectSystem"]["description"])
if not checks["PrivateTmp"]["set"]:
    problems.append("PrivateTmp is off: /tmp and /var/tmp are shared and writable")
home = checks["ProtectHome"]
if not (home["set"] or "read-only" in home["description"]):
    problems.append("home directories are writable: " + home["description"])

# Directives that give a writable place (or send the daemon's output to a file) whatever
# ProtectSystem= says; RuntimeDirectory=, if any, may name only the folder of the socket (with
# socket activation, systemd creates the socket and the service needs none).
writable = ("ReadWritePaths", "StateDirectory", "CacheDirectory", "LogsDirectory", "BindPaths",
            "TemporaryFileSystem")
runtime = []
for n, line in enumerate(open(unit, encoding="utf-8"), 1):
    line = line.strip()
    if not line or line[0] in "#;" or "=" not in line:
        continue
    key, value = (s.strip() for s in line.split("=", 1))
    if key in writable and value:
        problems.append(f"line {n}: {line} gives the daemon a writable place")
    if key in ("StandardOutput", "StandardError") and value.split(":")[0] in ("file", "append", "truncate"):
        problems.append(f"line {n}: {line} writes the daemon's output to a file")
    if key == "RuntimeDirectory":
        runtime += value.split()
    if key == "RuntimeDirectoryPreserve" and value not in ("no", "false", "0", "off"):
        problems.append(f"line {n}: {line} keeps the runtime directory after a stop")
if runtime not in ([], ["emotiond"]):
    problems.append(f"RuntimeDirectory is {runtime}, expected none or ['emotiond']")
for p in problems:
    print(f"{unit}: {p}", file=sys.stderr)
sys.exit(1 if problems else 0)
PY
echo "writable: nothing but the runtime directory, if any (ProtectSystem=strict, PrivateTmp, home read-only or hidden)"
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

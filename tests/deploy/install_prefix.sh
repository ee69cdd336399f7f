#!/bin/bash
# `cmake --install BUILD --prefix P` gives a working installation under P (issue 26): the installed
# daemon starts with nothing but its installed configuration, finds the model and dialogue lines of
# P (not those of the prefix the build was configured for), takes the YuNet detector that the
# installed emotiond-setup-detectors put in P's state folder, and the installed `emotion` gets the
# shipped model's answer for a face photo from it. Nothing is written outside P (checked against
# install_manifest.txt).
#
#   install_prefix.sh BUILD FIXTURES YUNET
#
# The daemon binds an ipc:// endpoint in a private folder (the one line of the configuration the
# test changes); HOME and XDG_DATA_HOME point to empty folders, so the user's own detectors are
# not what is found.
set -u
build=$1 fixtures=$2 yunet=$3
tmp=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; [ -s "$tmp/daemon.log" ] && sed 's/^/    daemon: /' "$tmp/daemon.log" >&2; exit 1; }

prefix=$tmp/prefix
cmake --install "$build" --prefix "$prefix" >"$tmp/install.log" 2>&1 || { cat "$tmp/install.log"; fail "cmake --install"; }
outside=$(grep -v "^$prefix/" "$build/install_manifest.txt")
[ -z "$outside" ] || fail "installed outside $prefix: $outside"
conf=$prefix/etc/emotiond/emotiond.conf
for f in "$prefix/sbin/emotiond" "$prefix/bin/emotion" "$prefix/sbin/emotiond-setup-detectors" "$conf" \
        "$prefix/share/emotiond/models/emotion.json" "$prefix/share/emotiond/dialogue/fr.ini"; do
        [ -e "$f" ] || fail "$f was not installed"
done
[ -d "$prefix/etc/emotiond/clients.d" ] || fail "$prefix/etc/emotiond/clients.d (clients_dir) was not made"
grep -q "^clients_dir = $prefix/etc/emotiond/clients.d$" "$conf" ||
        fail "$conf does not name the clients.d under $prefix: $(grep '^clients_dir' "$conf")"
# The man pages, when this build made them (scdoc found).
if [ -e "$build/docs/man/emotiond.8" ]; then
        for page in man8/emotiond.8 man5/emotiond.conf.5 man1/emotion.1; do
                [ -s "$prefix/share/man/$page" ] || fail "$prefix/share/man/$page was not installed"
        done
fi
grep -q "^model = $prefix/share/emotiond/models/emotion.json$" "$conf" ||
        fail "$conf does not name the model under $prefix: $(grep '^model' "$conf")"
grep -q "^ExecStart=$prefix/sbin/emotiond --config $conf$" "$prefix/lib/systemd/system/emotiond.service" ||
        fail "the installed unit does not start $prefix/sbin/emotiond with $conf"

export HOME=$tmp/home XDG_DATA_HOME=$tmp/home/.local/share XDG_RUNTIME_DIR=$tmp/run
mkdir -p "$HOME" "$XDG_RUNTIME_DIR"
# YuNet from the local copy; no BlazeFace here (the nonexistent tarball makes it exit 3, "could
# not fetch", at once instead of trying the network).
EMO_YUNET_FILE=$yunet EMO_BLAZEFACE_TGZ=$tmp/none.tgz "$prefix/sbin/emotiond-setup-detectors" >"$tmp/setup.log" 2>&1
rc=$?
[ $rc -eq 0 ] || [ $rc -eq 3 ] || { cat "$tmp/setup.log"; fail "emotiond-setup-detectors exit $rc"; }
detector=$prefix/var/lib/emotiond/detectors/face_detection_yunet_2022mar.onnx
[ -r "$detector" ] || fail "emotiond-setup-detectors did not put YuNet in $prefix/var/lib/emotiond/detectors"

sock=$tmp/run/emotiond-test.sock
sed -i "s|^endpoints = .*|endpoints = ipc://$sock|" "$conf"
"$prefix/sbin/emotiond" --config "$conf" >/dev/null 2>"$tmp/daemon.log" &
pid=$!
for _ in $(seq 300); do [ -S "$sock" ] && break; kill -0 $pid 2>/dev/null || break; sleep 0.1; done
[ -S "$sock" ] || fail "the installed daemon did not bind $sock"
grep -q "model .*($prefix/share/emotiond/models/" "$tmp/daemon.log" || fail "the daemon did not load the model of $prefix"
grep -q "yunet detector $detector" "$tmp/daemon.log" || fail "the daemon did not take YuNet from $detector"

expected=$(python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
i = d["images"]["one_face.jpg"]["faces"][0]["index"]
print(["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"][d["python"]["predictions_500"][i]])' \
        "$fixtures/fixtures.json") || fail "cannot read $fixtures/fixtures.json"
out=$("$prefix/bin/emotion" analyze --json --server "ipc://$sock" --timeout 20000 --attempts 1 "$fixtures/one_face.jpg" 2>"$tmp/cli.err")
rc=$?
emotion=$(echo "$out" | python3 -c 'import json, sys; print(json.load(sys.stdin)["faces"][0]["emotion"])' 2>/dev/null)
[ $rc -eq 0 ] && [ "$emotion" = "$expected" ] ||
        fail "installed emotion analyze: exit $rc, emotion '$emotion', expected '$expected': $out $(cat "$tmp/cli.err")"

kill -TERM $pid
wait $pid
rc=$?
pid=
[ $rc -eq 0 ] || fail "the daemon exited $rc on SIGTERM"
echo "PASS: installed under $prefix, started from $conf alone, answered '$emotion' for one_face.jpg"

#!/bin/bash
# emotion-gtk's live mode on a redistributable sample: a 640x480 video made from the public-domain
# astronaut portrait that scripts/quickstart.sh fetches (.cache/astronaut.png; EMO_SAMPLE_PHOTO to
# use another photo), played under Xvfb against a private emotiond (scripts/daemon.sh).
#
#   scripts/gtk-live.sh figures          docs/figures/gtk-photo.png (in French, the default),
#                                        gtk-live.png, gtk-tiles.png and gtk-daemon-absent.png
#   scripts/gtk-live.sh bench [SECONDS]  the live preview of the video at 25 fps for SECONDS (300):
#                                        the app's CPU and RSS, its round trip to the daemon, and
#                                        the same video through `emotion watch --live` for comparison
#
# Needs a build (build/bin), xvfb-run, ImageMagick's import and python3 with OpenCV (setup.sh --tests).
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-}
photo=${EMO_SAMPLE_PHOTO:-.cache/astronaut.png}
if [ ! -f "$photo" ]; then
        echo "$0: no $photo: run scripts/quickstart.sh once (it fetches it), or set EMO_SAMPLE_PHOTO" >&2
        exit 1
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/emo-gtk-live.XXXXXX")
# shellcheck source=scripts/daemon.sh
. scripts/daemon.sh
trap 'daemon_cleanup; rm -rf "$work"' EXIT
# The preferences of whoever runs this stay out of the pictures and the figures.
export XDG_CONFIG_HOME=$work/config
mkdir "$work/daemon"
daemon_start "$work/daemon" --model models/emonet-xs.json --dialogue-dir deploy/dialogue
video=$work/sample.avi
/usr/bin/python3 scripts/make-sample-video.py "$photo" "$video" --fps 25 --seconds 10 2>/dev/null

# Run "$@" under a fresh Xvfb screen of 1280x800, as the tests do (cairo renderer: same pixels on
# every machine).
xrun() {
        xvfb-run -a -s "-screen 0 1280x800x24" env GSK_RENDERER=cairo GTK_A11Y=none LANG=C.UTF-8 "$@"
}

case "$mode" in
figures)
        # The window is 1100x680 at the top left of the screen (no window manager under Xvfb).
        cat >"$work/shots.sh" <<SHOTS
set -e
build/bin/emotion-gtk --server $daemon_endpoint "$photo" & pid=\$!
sleep 6; import -window root -crop 1100x680+0+0 +repage docs/figures/gtk-photo.png; kill \$pid; wait \$pid || true
# The default endpoint of the system service, where no daemon runs here: the banner.
build/bin/emotion-gtk --server ipc:///run/emotiond/emotiond.sock --lang en & pid=\$!
sleep 3; import -window root -crop 1100x680+0+0 +repage docs/figures/gtk-daemon-absent.png; kill \$pid; wait \$pid || true
build/bin/emotion-gtk --server $daemon_endpoint --lang en --live --loop "$video" & pid=\$!
sleep 8; import -window root -crop 1100x680+0+0 +repage docs/figures/gtk-live.png; kill \$pid; wait \$pid || true
build/bin/emotion-gtk --server $daemon_endpoint --lang en --live --loop "$video" "$video" "$video" & pid=\$!
sleep 10; import -window root -crop 1100x680+0+0 +repage docs/figures/gtk-tiles.png; kill \$pid; wait \$pid || true
SHOTS
        xrun bash "$work/shots.sh"
        echo "docs/figures/gtk-photo.png, gtk-daemon-absent.png, gtk-live.png and gtk-tiles.png written"
        ;;
bench)
        seconds=${2:-300}
        cat >"$work/bench.sh" <<BENCH
set -e
build/bin/emotion-gtk --server $daemon_endpoint --lang en --live --loop --state $work/state.json "$video" & pid=\$!
sample() { # CPU ticks of the process, RSS kB
        echo "\$(awk '{print \$14 + \$15}' /proc/\$pid/stat) \$(awk '/^VmRSS/ {print \$2}' /proc/\$pid/status)"
}
sleep 10
read -r t0 rss0 <<<"\$(sample)"; s0=\$(date +%s.%N)
sleep $seconds
read -r t1 rss1 <<<"\$(sample)"; s1=\$(date +%s.%N)
kill -USR1 \$pid; sleep 1; kill \$pid; wait \$pid || true
hz=\$(getconf CLK_TCK)
awk -v t0=\$t0 -v t1=\$t1 -v s0=\$s0 -v s1=\$s1 -v hz=\$hz -v r0=\$rss0 -v r1=\$rss1 'BEGIN {
        printf "emotion-gtk: %.1f%% of one core over %.0f s; RSS %.1f MiB after 10 s, %.1f MiB at the end\\n",
               (t1 - t0) / hz / (s1 - s0) * 100, s1 - s0, r0 / 1024, r1 / 1024 }'
BENCH
        xrun bash "$work/bench.sh"
        python3 - "$work/state.json" <<'PY'
import json, sys
t = json.load(open(sys.argv[1]))["tiles"][0]
print(f"emotion-gtk: {t['frames']} frames shown, {t['fps']:.1f} fps at the end; {t['replies']} analysed, "
      f"round trip {t['mean_latency_ms']:.0f} ms mean (the daemon's own time {t['mean_daemon_ms']:.0f} ms)")
PY
        # The same video through the CLI, live (paced at 25 fps, newest frame wins), for 10 s.
        build/bin/emotion watch --server "$daemon_endpoint" --live --json "$video" >"$work/watch.jsonl"
        python3 - "$work/watch.jsonl" <<'PY'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
total = [l["timing_us"]["total"] / 1000 for l in lines if l.get("status") == "ok"]
print(f"emotion watch --live: {len(total)} frames analysed in the video's 10 s, "
      f"the daemon's own time {sum(total) / len(total):.0f} ms mean")
PY
        ;;
*)
        echo "usage: $0 figures | bench [SECONDS]" >&2
        exit 2
        ;;
esac

#!/usr/bin/env bash
# The worst decode the JPEG limits still let through (daemon/vision/vision.h: at most
# EMO_JPEG_MAX_SCANS = 100 scans, and scans x pixels at most EMO_JPEG_MAX_PASSES = 20 passes over
# max_pixels): JPEGs of the largest size the daemon takes by default (max_pixels = 40,000,000:
# 8000x5000, 4:4:4), baseline, progressive with libjpeg's standard 10-scan script, with 20 scans
# (the budget at that size) and with 100 (over it: refused), and 100 scans at 8 megapixels (the
# budget again), each sent N times to a local emotiond (one worker, one OpenCV thread,
# OPENCV_IO_MAX_IMAGE_PIXELS as the systemd unit sets it). Prints the daemon's own decode and
# total times, then how long a 640x480 request waits behind a worst-case one.
#
#   scripts/bench_jpeg_scans.sh [N] [MODEL.json]          (N: requests per file, default 3)
#
# Contents: noise (the most nonzero coefficients; quality 40, so that its baseline file fits in
# max_message_bytes = 32 MiB: quality 50 does not), a synthetic photo-like image (1/f texture,
# soft colour, a few hard edges; quality 90), and a flat grey image. The 100-scan files are
# written by cjpeg -scans: 11 DC scans (point transform 10 down to 0) and, per component, AC bands
# each with a first scan and 10 refinement scans (Ah > 0), the most libjpeg's encoder allows.
# flat-100bogus is made here: a DC scan, a first AC scan (1-63) per component, then full-band AC
# refinement scans of one component each, repeated beyond any valid progression; libjpeg only
# warns about that, and OpenCV decodes it.
# Needs cjpeg (Debian: libjpeg-turbo-progs) and /usr/bin/python3 with numpy and OpenCV.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-3}; model=${2:-models/emonet-xs.json}
width=8000 height=5000 max_message_bytes=$((32 << 20))
if ! command -v cjpeg >/dev/null; then
        echo "$0: cjpeg not found; install it (Debian: apt-get install libjpeg-turbo-progs)" >&2
        exit 1
fi
tmp=$(mktemp -d)

# shellcheck source=scripts/daemon.sh
. scripts/daemon.sh
trap 'daemon_cleanup; rm -rf "$tmp"' EXIT

# Source images (PPM), the bogus-progression file, and the scan count as the daemon counts it.
cat >"$tmp/tool.py" <<'PY'
import sys
import numpy as np
import cv2


def photo(w, h, out):
    rng = np.random.default_rng(1)
    lum = np.zeros((h, w), np.float32)
    for k in range(2, 12):  # octaves of smooth noise, amplitude ~ 1/frequency
        s = 2 ** k
        small = rng.standard_normal((max(2, h * s // w), s)).astype(np.float32)
        lum += cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC) * (50.0 / (k - 1))
    lum += rng.standard_normal((h, w)).astype(np.float32) * 3  # sensor noise
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    lum += xx / w * 60 + yy / h * 30 + 90
    chroma = cv2.resize(rng.standard_normal((6, 10, 3)).astype(np.float32), (w, h),
                        interpolation=cv2.INTER_CUBIC) * 25
    img = lum[..., None] + chroma
    for _ in range(40):  # hard edges
        x, y, r = int(rng.integers(w)), int(rng.integers(h)), int(rng.integers(20, w // 10))
        c = tuple(float(v) for v in rng.integers(0, 256, 3))
        if rng.integers(2):
            cv2.circle(img, (x, y), r, c, -1)
        else:
            cv2.rectangle(img, (x, y), (x + r, y + r // 2), c, -1)
    cv2.imwrite(out, np.clip(img, 0, 255).astype(np.uint8))


def scans(p):
    """The scans of JPEG p, walked like emo__jpeg_scans() in daemon/vision/jpeg.c: a list of
    (start, end) for each, from its start-of-scan marker (or from the end of the previous scan's
    data, so that tables in between go with it) to the end of its entropy-coded data; and where
    the end-of-image marker is."""
    i, out, prev_end, in_data = 2, [], None, False
    while i + 1 < len(p):
        if p[i] != 0xFF:
            i += 1
            continue
        m = p[i + 1]
        if m == 0xFF:
            i += 1
            continue
        if m in (0x00, 0x01) or 0xD0 <= m <= 0xD7:
            i += 2
            continue
        if in_data:  # the first real marker after a scan ends its data
            out[-1] = (out[-1][0], i)
            prev_end, in_data = i, False
        if m == 0xD9:
            break
        if m == 0xDA:
            out.append((i if prev_end is None else prev_end, None))
            in_data = True
        i += 2 + (p[i + 2] << 8 | p[i + 3])
    return out, i


def dup(src, n, k, dst):
    """Repeat the last k scans of src until it has n scans."""
    p = open(src, "rb").read()
    sc, eoi = scans(p)
    body = [p[s:e] for s, e in sc]
    tail = body[-k:]
    while len(body) < n:
        body += tail[: n - len(body)]
    open(dst, "wb").write(p[: sc[0][0]] + b"".join(body) + p[eoi:])


cmd = sys.argv[1]
if cmd == "photo":
    photo(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4])
elif cmd == "noise":
    w, h = int(sys.argv[2]), int(sys.argv[3])
    cv2.imwrite(sys.argv[4], np.random.default_rng(2).integers(0, 256, (h, w, 3), np.uint8))
elif cmd == "flat":
    w, h = int(sys.argv[2]), int(sys.argv[3])
    cv2.imwrite(sys.argv[4], np.full((h, w, 3), 128, np.uint8))
elif cmd == "dup":
    dup(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5])
elif cmd == "scans":
    print(len(scans(open(sys.argv[2], "rb").read())[0]))
PY
py() { /usr/bin/python3 "$tmp/tool.py" "$@"; }

# 100 scans: 11 DC (all components), then for each AC band of one component a first scan at
# point transform 10 and 10 refinements, the bands covering 1-63 of every component, plus
# one first scan of the last coefficient of component 2.
{
        bands=("0: 1-21" "0: 22-42" "0: 43-63" "1: 1-21" "1: 22-42" "1: 43-63" "2: 1-31" "2: 32-62")
        for al in 10 9 8 7 6 5 4 3 2 1 0; do
                ah=$((al == 10 ? 0 : al + 1))
                echo "0,1,2: 0-0, $ah, $al;"
                if [ "$al" = 10 ]; then echo "2: 63-63, 0, 0;"; fi
                for b in "${bands[@]}"; do echo "$b, $ah, $al;"; done
        done
} >"$tmp/scans100.txt"
# 20 scans: DC in two (point transform 1, then its refinement), then for each component two AC
# bands, each with a first scan at point transform 2 and two refinements.
{
        echo "0,1,2: 0-0, 0, 1;"
        echo "0,1,2: 0-0, 1, 0;"
        for c in 0 1 2; do
                for band in 1-31 32-63; do echo "$c: $band, 0, 2; $c: $band, 2, 1; $c: $band, 1, 0;"; done
        done
} >"$tmp/scans20.txt"
# A valid start for the bogus file: DC, then a first and a refinement scan of 1-63 per component.
echo "0,1,2: 0-0, 0, 0; 0: 1-63, 0, 1; 1: 1-63, 0, 1; 2: 1-63, 0, 1;
      0: 1-63, 1, 0; 1: 1-63, 1, 0; 2: 1-63, 1, 0;" >"$tmp/scans7.txt"

echo "== building the images ($width x $height, in $tmp)"
py noise "$width" "$height" "$tmp/noise.ppm"
py photo "$width" "$height" "$tmp/photo.ppm"
py flat "$width" "$height" "$tmp/flat.ppm"
py photo 640 480 "$tmp/small.ppm"
py noise 4000 2000 "$tmp/noise8mp.ppm"
files=()
enc() { # NAME SOURCE QUALITY [cjpeg options]
        local name=$1 src=$2 q=$3
        shift 3
        nice -n 5 cjpeg -quality "$q" -sample 1x1 "$@" -outfile "$tmp/$name.jpg" "$tmp/$src.ppm"
        files+=("$name")
}
enc "photo-640x480-baseline" small 90
for c in "noise 40" "photo 90"; do
        read -r src q <<<"$c"
        enc "$src-baseline" "$src" "$q"
        enc "$src-10scans" "$src" "$q" -progressive
        enc "$src-20scans" "$src" "$q" -scans "$tmp/scans20.txt"
        enc "$src-100scans" "$src" "$q" -scans "$tmp/scans100.txt"
done
enc "noise-8MP-100scans" noise8mp 40 -scans "$tmp/scans100.txt"
enc "flat-100scans" flat 90 -scans "$tmp/scans100.txt"
nice -n 5 cjpeg -quality 90 -sample 1x1 -scans "$tmp/scans7.txt" -outfile "$tmp/flat7.jpg" "$tmp/flat.ppm"
py dup "$tmp/flat7.jpg" 100 3 "$tmp/flat-100bogus.jpg"
files+=("flat-100bogus")
for f in "${files[@]}"; do
        bytes=$(stat -c %s "$tmp/$f.jpg")
        if [ "$bytes" -gt $((max_message_bytes - 4096)) ]; then
                echo "$0: $f.jpg is $bytes bytes, over max_message_bytes; lower its quality" >&2
                exit 1
        fi
done

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "OpenCV $(pkg-config --modversion opencv4), $(cjpeg -version 2>&1 | head -1), model $model, $n requests per file"
mkdir "$tmp/daemon"
OPENCV_IO_MAX_IMAGE_PIXELS=40000000 daemon_start "$tmp/daemon" --model "$model" --dialogue-dir deploy/dialogue -w 1

analyze() { # FILE: one JSON line; the daemon's deadline only applies while queued, so wait long
        build/bin/emotion analyze --json --timeout 120000 --attempts 1 --server "$daemon_endpoint" "$1"
}
echo
echo "| file | scans | pixels | bytes | decode ms median | decode ms max | total ms median | status |"
echo "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |"
for f in "${files[@]}"; do
        : >"$tmp/$f.json"
        # A refusal is in the status column; the CLI's message for it would break the table.
        for _ in $(seq "$n"); do analyze "$tmp/$f.jpg" >>"$tmp/$f.json" 2>/dev/null || true; done
        jq -rs --arg f "$f" --arg scans "$(py scans "$tmp/$f.jpg")" --arg bytes "$(stat -c %s "$tmp/$f.jpg")" '
                def med: sort | .[(length - 1) / 2 | floor];
                [.[] | select(.status == "ok")] as $ok
                | "| \($f) | \($scans) | \(if $ok == [] then "-" else $ok[0].width * $ok[0].height end) | \($bytes) | "
                  + (if $ok == [] then "- | - | -" else
                     ([$ok[].timing_us.decode / 1000] | "\(med * 10 | round / 10) | \(max * 10 | round / 10)")
                     + " | \([$ok[].timing_us.total / 1000] | med * 10 | round / 10)" end)
                  + " | \([.[].status] | group_by(.) | map("\(.[0]) x\(length)") | join(", ")) |"' "$tmp/$f.json"
done

# A normal request behind a worst-case one on the single worker.
echo
worst=noise-20scans
analyze "$tmp/$worst.jpg" >"$tmp/worst.json" &
worst_pid=$!
sleep 0.5
start=$(date +%s%N)
analyze "$tmp/photo-640x480-baseline.jpg" >"$tmp/behind.json"
end=$(date +%s%N)
wait "$worst_pid"
jq -r --arg w "$worst" --argjson wall $(((end - start) / 1000000)) \
        '"640x480 request sent 0.5 s after \($w): waited \(.timing_us.queue / 1000 | round) ms in the queue, " +
         "\(.timing_us.total / 1000 | . * 10 | round / 10) ms in the daemon, \($wall) ms at the client"' "$tmp/behind.json"
jq -r --arg w "$worst" '"(\($w) itself: decode \(.timing_us.decode / 1000 | round) ms, total \(.timing_us.total / 1000 | round) ms)"' \
        "$tmp/worst.json"
if grep -q "Inconsistent progression" "$daemon_dir/emotiond.log"; then
        echo "daemon log: $(grep -c "Inconsistent progression" "$daemon_dir/emotiond.log") libjpeg warning line(s), e.g. \"$(grep -m1 "Inconsistent progression" "$daemon_dir/emotiond.log")\""
fi
daemon_stop

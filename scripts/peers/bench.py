#!/usr/bin/python3
"""emotiond against a JavaScript peer, per photo, on one core (run by scripts/bench_peers.sh).

    /usr/bin/python3 scripts/peers/bench.py --fer FER2013.csv.gz --modules CACHE --peer human \
        [--build build] [--core 1] [--rounds 3] [--reps 10] [--warmup 3] [--json OUT.jsonl] \
        [--keep-frames DIR]

Two sets of photos:
  frames  20 webcam-like 640x480 JPEGs, one face each: a FER2013 PublicTest face (48x48 grey,
          enlarged to 150-240 px and tinted as the test fixtures are) pasted on a textured
          background (blurred noise, a gradient, three soft-edged rectangles), written at JPEG quality 90.
  group   the six demo photos that ship in @vladmandic/face-api (demo/sample1..6.jpg, 1920 px wide,
          22 faces in all), as they are.
emotiond (one worker) and the peer (one Node.js process, one thread) are pinned with taskset to the
same core as the client (`emotion bench`, one client). They alternate photo by photo: each photo goes
--warmup + --reps times to emotiond, then the same to the peer, with the order of the two swapped
every round, for --rounds rounds. A photo's time is the median of its reps (emotiond: latency at the
client, decoding included; the peer: `detect` on the decoded image, its JPEG decoding timed apart and
not counted), then the median over rounds; a set's time is the mean over its photos.
Beside the wall-clock times, CPU time per photo, which other processes on the core do not add to
(though they still cost it caches): the daemon's, all threads, from /proc/PID/task/*/schedstat over
each `emotion bench` run divided by its requests (warm-up included, the client's own CPU not
counted); the peer's, the Node.js process's (process.cpuUsage, all threads) per `detect`, mean of
the reps.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import cv2
import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "tests", "data"))
from make_fixtures import read_publictest, tinted_patch  # noqa: E402  the fixtures' face patches

N_FRAMES = 20
SEED = 25


def make_frames(fer, out):
    """The frames set; returns [(path, truth box)]."""
    _, _, faces, _ = read_publictest(fer)
    rng = np.random.default_rng(SEED)
    picks = rng.choice(len(faces), N_FRAMES, replace=False)
    frames = []
    for n, index in enumerate(picks):
        base = rng.integers(70, 190, 3).astype(np.float32)
        yy, xx = np.mgrid[0:480, 0:640].astype(np.float32)
        grad = (xx / 640.0 - 0.5) * rng.integers(-60, 60) + (yy / 480.0 - 0.5) * rng.integers(-60, 60)
        img = base + grad[..., None] + rng.normal(0, 30, (480, 640, 3))
        img = cv2.GaussianBlur(np.clip(img, 0, 255).astype(np.uint8), (0, 0), 2.5)
        for _ in range(3):  # furniture: soft-edged rectangles
            colour = tuple(int(c) for c in rng.integers(0, 255, 3))
            x0, y0 = int(rng.integers(0, 600)), int(rng.integers(0, 440))
            cv2.rectangle(img, (x0, y0), (x0 + int(rng.integers(40, 250)), y0 + int(rng.integers(40, 250))), colour, -1)
        img = cv2.GaussianBlur(img, (0, 0), 1.5)
        side = int(rng.integers(150, 241))
        patch, m = tinted_patch(faces[index], side)
        x = int(rng.integers(m, 640 - side - m))
        y = int(rng.integers(m, 480 - side - m))
        img[y - m:y - m + patch.shape[0], x - m:x - m + patch.shape[1]] = patch
        path = os.path.join(out, "frame_%02d.jpg" % n)
        cv2.imwrite(path, img, [cv2.IMWRITE_JPEG_QUALITY, 90])
        frames.append((path, [x, y, side, side]))
    return frames


def pinned(core, argv):
    return ["taskset", "-c", str(core)] + argv


def start_daemon(args, tmp):
    ep = "ipc://%s/emotiond.sock" % tmp
    model = os.path.join(ROOT, "models", "emotion.json")
    if not os.path.exists(model):
        model = os.path.join(ROOT, "models", "emonet-xs.json")
    log = open(os.path.join(tmp, "emotiond.log"), "w")
    argv = [os.path.join(args.build, "bin", "emotiond"), "--endpoint", ep, "--model", model,
            "--dialogue-dir", os.path.join(ROOT, "deploy", "dialogue"), "--device", "cpu", "-w", "1"]
    if args.yunet:
        argv += ["--yunet-model", args.yunet]
    for setting in args.set:
        argv += ["--set", setting]
    proc = subprocess.Popen(pinned(args.core, argv), stderr=log)
    for _ in range(100):
        r = subprocess.run([os.path.join(args.build, "bin", "emotion"), "health", "--server", ep,
                            "--timeout", "200", "--attempts", "1"], capture_output=True)
        if r.returncode == 0:
            return proc, ep
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    sys.exit("emotiond did not answer; its log:\n" + open(os.path.join(tmp, "emotiond.log")).read())


def cpu_ns(pid):
    """CPU time of all threads of process pid so far, ns (scheduler statistics: no tick granularity)."""
    total = 0
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/schedstat" % (pid, tid)) as f:
                total += int(f.read().split()[0])
        except FileNotFoundError:
            pass
    return total


def run_emotiond(args, daemon, ep, path):
    c0 = cpu_ns(daemon.pid)
    r = subprocess.run(pinned(args.core, [os.path.join(args.build, "bin", "emotion"), "bench", "--server", ep,
                                          "--clients", "1", "--requests", str(args.reps), "--warmup",
                                          str(args.warmup), "--duration", "600", "--json", path]),
                       capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit("emotion bench failed on %s:\n%s%s" % (path, r.stdout, r.stderr))
    cpu = (cpu_ns(daemon.pid) - c0) / 1e6 / (args.warmup + args.reps + 1)  # + bench's health request
    row = json.loads(r.stdout.strip().splitlines()[-1])
    return {"ms": row["latency_ms"]["p50"], "cpu": cpu, "faces": round(row["faces_per_reply"]),
            "stages": row["stages_ms"]}


class Peer:
    def __init__(self, args):
        argv = pinned(args.core, ["node", os.path.join(ROOT, "scripts", "peers", "peer.js"), args.peer,
                                  args.modules])
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.info = json.loads(self.proc.stdout.readline())

    def run(self, args, path):
        self.proc.stdin.write(json.dumps({"file": path, "reps": args.reps, "warmup": args.warmup}) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            sys.exit("the peer stopped")
        r = json.loads(line)
        return {"ms": statistics.median(r["times_ms"]), "cpu": statistics.mean(r["cpu_ms"]), "faces": len(r["faces"]), "decode": r["decode_ms"],
                "boxes": r["faces"]}

    def close(self):
        self.proc.stdin.close()
        self.proc.wait()


def emotiond_boxes(args, ep, paths):
    """Each photo's face boxes from `emotion analyze --json` (outside the timing)."""
    r = subprocess.run([os.path.join(args.build, "bin", "emotion"), "analyze", "--json", "--server", ep] + paths,
                       capture_output=True, text=True)
    rows = [json.loads(line) for line in r.stdout.splitlines() if line.strip()]
    return {row["file"]: [f["box"] for f in row.get("faces", [])] for row in rows}


def same_face(a, b):
    """Two boxes [x, y, w, h] on one face: each one's centre inside the other. Not IoU: detectors frame
    faces differently, and Human's boxes are up to twice the face's side."""
    def inside(p, q):
        cx, cy = p[0] + p[2] / 2.0, p[1] + p[3] / 2.0
        return q[0] <= cx <= q[0] + q[2] and q[1] <= cy <= q[1] + q[3]
    return inside(a, b) and inside(b, a)


def matched(boxes, others):
    """How many of boxes are on a face that one of others is on."""
    return sum(any(same_face(b, o) for o in others) for b in boxes)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--fer", required=True)
    ap.add_argument("--modules", required=True, help="folder holding the peers' node_modules")
    ap.add_argument("--peer", default="human", choices=("human", "faceapi"))
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    ap.add_argument("--yunet")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="a daemon setting (emotiond --set), e.g. detect_max_side=256; repeatable")
    ap.add_argument("--core", type=int, default=os.cpu_count() - 1)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--json", help="write every measurement here, one JSON object a line")
    ap.add_argument("--keep-frames", metavar="DIR", help="write the frames set into DIR and keep it (for "
                    "build/bin/emo_bench_stages, say)")
    args = ap.parse_args()
    args.build = os.path.abspath(args.build)

    tmp = tempfile.mkdtemp(prefix="bench_peers.")
    daemon = peer = None
    try:
        if args.keep_frames:
            os.makedirs(args.keep_frames, exist_ok=True)
        frames = make_frames(args.fer, args.keep_frames or tmp)
        demo = os.path.join(args.modules, "node_modules", "@vladmandic", "face-api", "demo")
        sets = [("frames", [p for p, _ in frames]),
                ("group", [os.path.join(demo, "sample%d.jpg" % i) for i in range(1, 7)])]
        truth = dict(frames)
        load0 = os.getloadavg()
        daemon, ep = start_daemon(args, tmp)
        peer = Peer(args)
        print("peer: %s" % json.dumps(peer.info), flush=True)
        print("core %d (emotiond -w 1, emotion bench --clients 1, the peer), %d rounds, %d reps after %d warm-up "
              "per photo; load average at start %.2f %.2f %.2f" % ((args.core, args.rounds, args.reps, args.warmup)
                                                                  + load0), flush=True)
        res = {}
        out = open(args.json, "w") if args.json else None
        t0 = time.time()
        for rnd in range(args.rounds):
            for name, paths in sets:
                for path in paths:
                    order = ("emotiond", "peer") if rnd % 2 == 0 else ("peer", "emotiond")
                    for who in order:
                        m = run_emotiond(args, daemon, ep, path) if who == "emotiond" else peer.run(args, path)
                        res.setdefault((name, path, who), []).append(m)
                        if out:
                            out.write(json.dumps(dict(m, set=name, file=os.path.basename(path), who=who,
                                                      round=rnd)) + "\n")
            print("round %d done, %.0f s, load average %.2f %.2f %.2f" % ((rnd + 1, time.time() - t0)
                                                                        + os.getloadavg()), flush=True)
        load1 = os.getloadavg()

        print()
        print("| set | photos | emotiond ms | %s ms | ratio | emotiond CPU ms | %s CPU ms | CPU ratio "
              "| faces (emotiond / peer) | peer JPEG decode ms, not counted |" % (args.peer, args.peer))
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        stage_rows = []
        for name, paths in sets:
            med = lambda who, key, p: statistics.median(m[key] for m in res[(name, p, who)])  # noqa: E731
            e = statistics.mean(med("emotiond", "ms", p) for p in paths)
            q = statistics.mean(med("peer", "ms", p) for p in paths)
            dec = statistics.mean(med("peer", "decode", p) for p in paths)
            ce = statistics.mean(med("emotiond", "cpu", p) for p in paths)
            cq = statistics.mean(med("peer", "cpu", p) for p in paths)
            fe = sum(res[(name, p, "emotiond")][-1]["faces"] for p in paths)
            fp = sum(res[(name, p, "peer")][-1]["faces"] for p in paths)
            print("| %s | %d | %.1f | %.1f | %.1fx | %.1f | %.1f | %.1fx | %d / %d | %.1f |" % (
                name, len(paths), e, q, q / e, ce, cq, cq / ce, fe, fp, dec))
            st = {k: statistics.mean(statistics.median(m["stages"][k] for m in res[(name, p, "emotiond")])
                                     for p in paths) for k in ("queue", "decode", "detect", "classify", "total")}
            stage_rows.append((name, fe, st))
        print()
        print("emotiond's own stage times (daemon means per photo, median over rounds, mean over the set):")
        print()
        print("| set | faces | queue | decode | detect | classify | total |")
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
        for name, fe, st in stage_rows:
            print("| %s | %d | %.2f | %.2f | %.2f | %.2f | %.2f |" % (name, fe, st["queue"], st["decode"], st["detect"],
                                                                    st["classify"], st["total"]))
        # Which faces: emotiond's boxes against the placed faces and against the peer's boxes.
        eboxes = emotiond_boxes(args, ep, [p for _, paths in sets for p in paths])
        pboxes = {p: [f["box"] for f in res[(name, p, "peer")][-1]["boxes"]] for name, paths in sets for p in paths}
        print()
        print("frames: the placed face found by emotiond in %d of %d, by the peer in %d; "
              "other boxes: emotiond %d, peer %d" % (
                  sum(matched([truth[p]], eboxes[p]) for p in truth), len(truth),
                  sum(matched([truth[p]], pboxes[p]) for p in truth),
                  sum(len(eboxes[p]) - matched(eboxes[p], [truth[p]]) for p in truth),
                  sum(len(pboxes[p]) - matched(pboxes[p], [truth[p]]) for p in truth)))
        for name, paths in sets:
            for p in paths:
                if name == "frames" and len(eboxes[p]) == 1 == len(pboxes[p]) and matched(pboxes[p], [truth[p]]):
                    continue
                print("  %s: emotiond %d faces, peer %d, %d of emotiond's also found by the peer%s" % (
                    os.path.basename(p), len(eboxes[p]), len(pboxes[p]), matched(eboxes[p], pboxes[p]),
                    "" if name == "group" else "; placed %s, emotiond %s, peer %s" % (truth[p], eboxes[p], pboxes[p])))
        print("load average at start %.2f %.2f %.2f, at end %.2f %.2f %.2f" % (load0 + load1))
    finally:
        if peer:
            peer.close()
        if daemon:
            daemon.terminate()
            daemon.wait()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()

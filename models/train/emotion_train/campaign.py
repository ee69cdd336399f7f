"""campaign: train every candidate architecture at once, on one machine, in two phases.

Phase 1 trains the candidates (the original design, the emonet family, FER+ variants) side by
side, each in its own `emotion-model train` process with the same time budget. Phase 2 distils a
fixed set of phase-1 models (the teachers, chosen by size before any result is known, never by
their PublicTest score) into the small models that fit the daemon's latency budget.

Built for a lent GPU machine (several processes share the GPU well, since 48x48 models keep it far
from busy), but it runs anywhere `emotion-model train` runs. A time budget fixes each run's number
of epochs from a timing probe, and config.json records it, so any run can be repeated on a CPU
with `--epochs N`.

Two plans (--plan):
- study (the default): the architecture study of docs/REPORT.md. Phase 1 trains nine candidates,
  phase 2 distils five of them into small models. Runs are kept and scored at their best epoch.
- distil: stronger teachers, then fine-tunes of a shipped model. Phase 1 trains four large
  networks (emonet-xl and emonet-l, two seeds each) on full one-cycle schedules; phase 2 fine-tunes
  --init (the default emonet-xs: ../emonet-xs.json, or its soup.pt) six times, distilled from those four teachers' last
  epochs, with two learning rates and three seeds each. Nothing is chosen on PublicTest: teachers
  and students are their last epochs, and the fine-tunes are meant to be averaged into one soup
  (`emotion-model soup`). With --deadline, phase 2 gets the time phase 1 left.

Results: OUT/runs/NAME/ (best.pt and last.pt, config.json, log.jsonl, publictest.npz with the
PublicTest probabilities of the plan's checkpoint, plain and with mirror-image averaging),
OUT/summary.json, and with --bundle, the runs packed into tar files for the trip home (by default
at most 7 of at most 15 MiB, 58 MiB in all: what the first lent machine let through;
--bundle-files, --bundle-file-mib and --bundle-total-mib set another machine's limits), weights
stored as .npz (readable by any PyTorch and numpy; float16 for a network whose float32 weights
would not fit one file), with the distillation targets phase 2 used (teacher-*.npy).
`--unbundle` turns them back into best.pt (study) or last.pt (distil) files holding the weights,
and puts the targets into DEST/cache/.
"""
import argparse
import io
import json
import os
import subprocess
import sys
import tarfile
import time
from dataclasses import dataclass

from . import cli_command

# name, architecture, extra `emotion-model train` options. Students of phase 2 get --teacher
# options for every name in TEACHERS.
PHASE1 = [
    ("original", "original", []),
    ("emonet-xl", "emonet-xl", []),
    ("emonet-l", "emonet-l", []),
    ("emonet-l-fp", "emonet-l", ["--ferplus", "{ferplus}", "--ferplus-weight", "0.5"]),
    ("emonet-m", "emonet-m", []),
    ("emonet-s", "emonet-s", []),
    ("emonet-xs", "emonet-xs", []),
    ("emonet-xs-fp", "emonet-xs", ["--ferplus", "{ferplus}", "--ferplus-weight", "0.3"]),
    ("emonet-xs3", "emonet-xs3", []),
]
TEACHERS = ["original", "emonet-xl", "emonet-l", "emonet-l-fp", "emonet-m"]
PHASE2 = [
    ("emonet-xs-kd", "emonet-xs", ["--kd-alpha", "0.7", "--kd-temperature", "4"]),
    ("emonet-xs-kd-seed2", "emonet-xs", ["--kd-alpha", "0.7", "--kd-temperature", "4", "--seed", "2"]),
    ("emonet-xs-kd-a5t2", "emonet-xs", ["--kd-alpha", "0.5", "--kd-temperature", "2"]),
    ("emonet-xs-kd-fp", "emonet-xs", ["--kd-alpha", "0.7", "--kd-temperature", "4",
                                      "--ferplus", "{ferplus}", "--ferplus-weight", "0.3"]),
    ("emonet-xs3-kd", "emonet-xs3", ["--kd-alpha", "0.7", "--kd-temperature", "4"]),
    ("emonet-s-kd", "emonet-s", ["--kd-alpha", "0.7", "--kd-temperature", "4"]),
]
# What --bundle keeps when everything does not fit: students first, teachers last.
BUNDLE_ORDER = [n for n, _, _ in PHASE2] + ["emonet-xs", "emonet-xs-fp", "emonet-xs3", "emonet-s", "emonet-m",
                                           "original", "emonet-l", "emonet-l-fp", "emonet-xl"]


KD = ["--kd-alpha", "0.7", "--kd-temperature", "4"]
DISTIL_PHASE1 = [
    ("t-xl-1", "emonet-xl", ["--seed", "1"]),
    ("t-xl-2", "emonet-xl", ["--seed", "2"]),
    ("t-l-1", "emonet-l", ["--seed", "1"]),
    ("t-l-2", "emonet-l", ["--seed", "2"]),
]
DISTIL_PHASE2 = [(f"ft-{i}", "emonet-xs", ["--init", "{init}", "--lr", lr, "--seed", str(20 + i)] + KD)
                 for i, lr in enumerate(["0.02"] * 3 + ["0.03"] * 3, start=1)]
# name: (phase 1, teachers, phase 2, bundle order, checkpoint the runs are scored, taught and kept at)
PLANS = {
    "study": (PHASE1, TEACHERS, PHASE2, BUNDLE_ORDER, "best"),
    "distil": (DISTIL_PHASE1, [n for n, _, _ in DISTIL_PHASE1], DISTIL_PHASE2,
               [n for n, _, _ in DISTIL_PHASE2 + DISTIL_PHASE1[::-1]], "last"),
}


MIB = 1 << 20


@dataclass(frozen=True)
class BundleLimits:
    """What may come back from a training machine: each tar file at most file_bytes, at most files
    of them, total_bytes in all (beyond it, runs travel without their weights)."""
    file_bytes: int = 15 * MIB
    files: int = 7
    total_bytes: int = 58 * MIB

    @classmethod
    def from_args(cls, args):
        """The limits given by --bundle-file-mib, --bundle-files and --bundle-total-mib."""
        d = cls()
        return cls(file_bytes=int(getattr(args, "bundle_file_mib", d.file_bytes / MIB) * MIB),
                   files=getattr(args, "bundle_files", d.files),
                   total_bytes=int(getattr(args, "bundle_total_mib", d.total_bytes / MIB) * MIB))


def plan_checkpoint(args):
    return PLANS[getattr(args, "plan", "study")][4]


def run_phase(jobs, args, teachers, log, phase):
    procs = []
    env = dict(os.environ, EMOTION_MODEL_BARRIER=f"{args.out}/barrier-{phase}:{len(jobs)}")
    for name, arch, extra in jobs:
        out = os.path.join(args.out, "runs", name)
        max_epochs = args.max_epochs2 if phase == 2 and args.max_epochs2 else args.max_epochs
        cmd = cli_command() + ["train", "--data", args.data, "--arch", arch, "--out", out,
                               "--epochs", str(max_epochs), "--time-budget", str(args.budget), "--threads", "1",
                               "--device", args.device, "--cache", args.cache]
        if args.limit:
            cmd += ["--limit", str(args.limit)]
        cmd += [a.format(ferplus=args.ferplus or args.data, init=args.init) for a in extra]
        for t in teachers:
            cmd += ["--teacher", os.path.join(args.out, "runs", t, plan_checkpoint(args) + ".pt")]
        os.makedirs(out, exist_ok=True)
        f = open(os.path.join(args.out, "runs", name + ".out"), "w")
        print(f"[{time.strftime('%H:%M:%S')}] start {name}: {' '.join(cmd[len(cli_command()):])}", file=log, flush=True)
        procs.append((name, subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, env=env), f))
    failed = []
    for name, p, f in procs:
        rc = p.wait()
        f.close()
        with open(os.path.join(args.out, "runs", name + ".out")) as g:
            tail = g.read().strip().splitlines()[-1:] or [""]
        print(f"[{time.strftime('%H:%M:%S')}] {name}: exit {rc}: {tail[0]}", file=log, flush=True)
        if rc:
            failed.append(name)
    return failed


def publictest_probs(args, names):
    """PublicTest probabilities of each run's checkpoint (best.pt or last.pt, by plan), plain and
    mirror-averaged, saved as publictest.npz (kept while the checkpoint is not newer, so phase 2
    does not redo phase 1's runs)."""
    import numpy as np
    import torch
    from .data import load_dataset
    from .train import load_model, pick_device, predict
    device = pick_device(args.device)
    images, labels, usages = load_dataset(args.data, args.cache)
    x, y = images[usages == "PublicTest"], labels[usages == "PublicTest"]
    summary = {}
    for name in names:
        run = os.path.join(args.out, "runs", name)
        path, probs_path = os.path.join(run, plan_checkpoint(args) + ".pt"), os.path.join(run, "publictest.npz")
        if not os.path.exists(path):
            continue
        model, ck = load_model(path, device)
        if not (os.path.exists(probs_path) and os.path.getmtime(probs_path) >= os.path.getmtime(path)):
            plain = predict(model, x, ck["mean"], ck["std"], device=device)
            mirror = predict(model, np.ascontiguousarray(x[:, :, ::-1]), ck["mean"], ck["std"], device=device)
            np.savez_compressed(probs_path, plain=plain, hflip=(plain + mirror) / 2, labels=y)
        with np.load(probs_path) as z:
            plain, flip = z["plain"], z["hflip"]
        with open(os.path.join(run, "config.json")) as f:
            config = json.load(f)
        summary[name] = {"arch": ck["arch"], "epoch": int(ck["epoch"]), "epochs": config["epochs"],
                         "accuracy": float((plain.argmax(1) == y).mean()),
                         "accuracy_hflip": float((flip.argmax(1) == y).mean())}
        del model
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return summary


def bundle(args, names, limits=None, extra=()):
    """Pack runs into tar files for the trip home, weights as .npz (state dict arrays + a JSON of
    the rest), so that a different PyTorch version can read them. Weights whose float32 arrays
    would not fit one file travel as float16 (the JSON says so). limits: a BundleLimits (default:
    the options in args). extra: more files, kept at the top of the bundle under their base names
    (the distillation targets). Returns the runs left out, wholly or but their weights."""
    limits = limits or BundleLimits.from_args(args)
    limit, max_files, total = limits.file_bytes, limits.files, limits.total_bytes
    import numpy as np
    import torch
    from .train import load_weights
    import glob
    ckpt = plan_checkpoint(args)
    os.makedirs(args.bundle, exist_ok=True)
    for old in glob.glob(os.path.join(args.bundle, "runs-*.tar")):
        os.remove(old)
    items, left_out = [], []
    for name in names:
        run = os.path.join(args.out, "runs", name)
        if not os.path.exists(run + ".out"):
            continue  # never started
        files = {}
        for fn in ("config.json", "log.jsonl", "publictest.npz"):
            if os.path.exists(os.path.join(run, fn)):
                with open(os.path.join(run, fn), "rb") as f:
                    files[f"{name}/{fn}"] = f.read()
        with open(os.path.join(args.out, "runs", name + ".out"), "rb") as f:
            files[f"{name}/train.out"] = f.read()
        if os.path.exists(os.path.join(run, ckpt + ".pt")):
            ck = load_weights(os.path.join(run, ckpt + ".pt"))
            arrays = {k: v.numpy() for k, v in ck["model"].items()}
            meta = {k: v for k, v in ck.items() if k != "model"}
            if sum(a.nbytes for a in arrays.values()) + (1 << 20) > limit:
                arrays = {k: a.astype(np.float16) if a.dtype == np.float32 else a for k, a in arrays.items()}
                meta["stored_as"] = "float16"
            buf = io.BytesIO()
            np.savez(buf, **arrays)
            files[f"{name}/{ckpt}.npz"] = buf.getvalue()
            files[f"{name}/{ckpt}.json"] = json.dumps(meta).encode()
        items.append((name, files))
    for path in reversed(list(extra)):
        with open(path, "rb") as f:
            items.insert(0, (os.path.basename(path), {f"cache/{os.path.basename(path)}": f.read()}))
    with open(os.path.join(args.out, "summary.json"), "rb") as f:
        items.insert(0, ("summary", {"summary.json": f.read()}))
    bins, used = [], 0
    for name, files in items:
        size = sum(len(b) + 1024 for b in files.values())
        meta_only = {k: v for k, v in files.items() if not k.endswith(".npz") or k.endswith("publictest.npz")}
        if used + size > total:
            left_out.append(name)
            files, size = meta_only, sum(len(b) + 1024 for b in meta_only.values())
        target = next((b for b in bins if b["size"] + size <= limit), None)
        if target is None:
            if len(bins) == max_files:
                left_out.append(name + " (all)")
                continue
            target = {"size": 0, "files": {}}
            bins.append(target)
        target["files"].update(files)
        target["size"] += size
        used += size
    for i, b in enumerate(bins):
        with tarfile.open(os.path.join(args.bundle, f"runs-{i}.tar"), "w") as tar:
            for fn, data in b["files"].items():
                info = tarfile.TarInfo(fn)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return left_out


def unbundle(folder, dest):
    """runs-*.tar from --bundle -> DEST/NAME/{best.pt or last.pt, config.json, log.jsonl,
    publictest.npz}, and the distillation targets into DEST/cache/. The .pt files hold the
    weights in best.pt's form (what export, soup and --teacher read), float32 again where they
    travelled as float16."""
    import glob
    import numpy as np
    import torch
    tars = sorted(glob.glob(os.path.join(folder, "runs-*.tar")))
    if not tars:
        raise ValueError(f"{folder}: no runs-*.tar bundle files")
    for path in tars:
        with tarfile.open(path) as tar:
            tar.extractall(dest)
    for name in sorted(os.listdir(dest)):
        for ckpt in ("best", "last"):
            npz = os.path.join(dest, name, ckpt + ".npz")
            if not os.path.exists(npz):
                continue
            with open(os.path.join(dest, name, ckpt + ".json")) as f:
                ck = json.load(f)
            with np.load(npz) as z:
                ck["model"] = {k: torch.from_numpy(z[k].astype(np.float32) if z[k].dtype == np.float16 else z[k])
                               for k in z.files}
            torch.save(ck, os.path.join(dest, name, ckpt + ".pt"))
            note = ", from float16" if ck.get("stored_as") == "float16" else ""
            print(f"{name}: {ckpt}.pt (epoch {ck['epoch']}, PublicTest {ck['public_test_acc']:.4f}{note})")


def main():
    p = argparse.ArgumentParser(prog=f"python3 -m {__name__}", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", help="fer2013.csv(.gz) or a pack from `emotion-model pack`")
    p.add_argument("--ferplus", help="fer2013new.csv (default: the pack's FER+ votes)")
    p.add_argument("--out", help="campaign folder")
    p.add_argument("--budget", type=float, default=200, help="seconds of training per run and phase")
    p.add_argument("--budget2", type=float, help="seconds per run in phase 2 (default --budget)")
    p.add_argument("--deadline", type=float, help="seconds for the whole campaign: phase 2's budget is what "
                   "phase 1 left, less time to start and finish (instead of --budget2)")
    p.add_argument("--max-epochs", type=int, default=300)
    p.add_argument("--max-epochs2", type=int, help="most epochs of a phase-2 run (default --max-epochs)")
    p.add_argument("--plan", choices=sorted(PLANS), default="study", help="which runs (see above)")
    p.add_argument("--init", help="distil: the checkpoint phase 2 fine-tunes (a run's soup.pt, or a shipped model's .json, "
                   "e.g. ../emonet-xs.json)")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--cache", default=os.path.expanduser("~/.cache/emotiond"))
    p.add_argument("--runs", help="comma-separated names: run only these (phase 2 ones need their teachers)")
    p.add_argument("--limit", type=int, default=0, help="first N Training rows only (smoke tests)")
    p.add_argument("--bundle", help="also write runs-*.tar here (see above)")
    p.add_argument("--bundle-files", type=int, default=BundleLimits.files,
                   help="most tar files the training machine lets through (default %(default)s)")
    p.add_argument("--bundle-file-mib", type=float, default=BundleLimits.file_bytes / MIB,
                   help="most MiB per tar file (default %(default)g)")
    p.add_argument("--bundle-total-mib", type=float, default=BundleLimits.total_bytes / MIB,
                   help="most MiB in all; beyond it, runs travel without their weights (default %(default)g)")
    p.add_argument("--unbundle", nargs=2, metavar=("FOLDER", "DEST"), help="only unpack a bundle, then exit")
    args = p.parse_args()
    if args.unbundle:
        try:
            unbundle(*args.unbundle)
        except (ValueError, OSError, tarfile.TarError) as e:
            print(f"{__name__}: {e}", file=sys.stderr)
            return 1
        return 0
    if not args.data or not args.out:
        p.error("--data and --out are required")
    if min(args.bundle_files, args.bundle_file_mib, args.bundle_total_mib) <= 0:
        p.error("--bundle-files, --bundle-file-mib and --bundle-total-mib must be positive")
    all1, all_teachers, all2, _, ckpt = PLANS[args.plan]
    if args.plan == "distil" and not args.init:
        p.error("--plan distil needs --init (the checkpoint its phase 2 fine-tunes)")
    if args.init and not os.path.exists(args.init):
        p.error(f"--init {args.init}: no such file")
    os.makedirs(os.path.join(args.out, "runs"), exist_ok=True)
    log = sys.stdout
    t0 = time.time()
    phase1, phase2 = all1, all2
    if args.runs:
        wanted = set(args.runs.split(","))
        unknown = wanted - {n for n, _, _ in all1 + all2}
        if unknown:
            p.error(f"--runs: unknown {', '.join(sorted(unknown))}")
        phase1 = [j for j in all1 if j[0] in wanted]
        phase2 = [j for j in all2 if j[0] in wanted]
    failed = run_phase(phase1, args, [], log, 1) if phase1 else []
    teachers = [t for t in all_teachers if os.path.exists(os.path.join(args.out, "runs", t, ckpt + ".pt"))]
    print(f"phase 1 done in {time.time() - t0:.0f} s; teachers: {', '.join(teachers)}", flush=True)
    # Results so far are summarised (and bundled) now, so that they survive if phase 2 is cut short.
    finish(args, [n for n, _, _ in phase1], failed, teachers, t0)
    if not phase2:
        return 1 if failed else 0
    # The targets once, here, rather than in every phase-2 process at the same time.
    targets = teacher_targets(args, teachers, phase2) if teachers else []
    if args.deadline:
        # Loading, targets from the cache and the timing probe take ~30 s; finishing ~60 s.
        args.budget = max(10.0, (args.deadline - (time.time() - t0) - 90) / 1.05)
        print(f"phase 2 budget: {args.budget:.0f} s per run", flush=True)
    elif args.budget2:
        args.budget = args.budget2
    failed += run_phase(phase2, args, teachers, log, 2) if teachers else [n for n, _, _ in phase2]
    print(f"phase 2 done at {time.time() - t0:.0f} s", flush=True)
    finish(args, [n for n, _, _ in phase1 + phase2], failed, teachers, t0, targets)
    return 1 if failed else 0


def teacher_targets(args, teachers, phase2):
    """Compute (and cache) the distillation targets phase 2's runs will ask for: the same call,
    on the same faces, as `emotion-model train --teacher` makes, once per temperature the runs
    use (train's default where a run names none). Returns the cache files."""
    import numpy as np
    from .data import load_dataset
    from .train import cached_teacher_log_probs, pick_device, teacher_cache_path
    if not args.cache:
        return []
    images, _, usages = load_dataset(args.data, args.cache)
    x = images[usages == "Training"]
    if args.limit:
        x = x[:args.limit]
    paths = [os.path.join(args.out, "runs", t, plan_checkpoint(args) + ".pt") for t in teachers]
    temperatures = sorted({float(e[e.index("--kd-temperature") + 1]) if "--kd-temperature" in e else 4.0
                           for _, _, e in phase2})
    x = np.ascontiguousarray(x)
    for t in temperatures:
        cached_teacher_log_probs(paths, x, t, pick_device(args.device), args.cache)
    return [teacher_cache_path(paths, x, t, args.cache) for t in temperatures]


def finish(args, names, failed, teachers, t0, targets=()):
    summary = publictest_probs(args, names)
    summary = {"teachers": teachers, "failed": failed, "seconds": time.time() - t0, "runs": summary}
    with open(os.path.join(args.out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    for name, r in summary["runs"].items():
        print(f"{name:22s} {r['arch']:11s} epochs {r['epochs']:3d} (best {r['epoch']:3d})  "
              f"PublicTest {r['accuracy']:.4f}  hflip {r['accuracy_hflip']:.4f}", flush=True)
    if args.bundle:
        order = PLANS[args.plan][3]
        left_out = bundle(args, [n for n in order if n in names], extra=targets)
        print(f"bundle: weights left out for {', '.join(left_out) or 'none'}", flush=True)


if __name__ == "__main__":
    sys.exit(main())

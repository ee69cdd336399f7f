"""ablation: what each part of the training recipe is worth, measured on one architecture.

Trains one short run per variant of the recipe (the full recipe three times, with three seeds, to
show how much runs of the same recipe differ), each with the same schedule, then scores every run's
last epoch on PublicTest. The last epoch is scored, not the best one, so that no choice is made
on PublicTest. Variants:

  recipe, recipe-seed2, recipe-seed3
                         the full recipe (augmentation, label smoothing, no class weights)
  no-augment             no augmentation at all
  without-affine/flip/jitter/erase
                         the full recipe with one part of the augmentation switched off
  weights-sqrt/inverse   class-weighted loss, (faces / class faces)^0.5 or ^1
  no-smoothing           no label smoothing (the recipe uses 0.1)

Results: OUT/NAME/ (an `emotion-model train` run folder each), OUT/ablation.json, and a Markdown
table on stdout. Runs that finished are not trained again and unfinished ones resume (train
--resume), so an interrupted ablation continues where it stopped.
"""
import argparse
import json
import os
import subprocess
import sys
import time

from . import cli_command

VARIANTS = [
    ("recipe", []),
    ("recipe-seed2", ["--seed", "2"]),
    ("recipe-seed3", ["--seed", "3"]),
    ("no-augment", ["--no-augment"]),
    ("without-affine", ["--augment-without", "affine"]),
    ("without-flip", ["--augment-without", "flip"]),
    ("without-jitter", ["--augment-without", "jitter"]),
    ("without-erase", ["--augment-without", "erase"]),
    ("weights-sqrt", ["--class-weights", "sqrt"]),
    ("weights-inverse", ["--class-weights", "inverse"]),
    ("no-smoothing", ["--label-smoothing", "0"]),
]


def read_run(run):
    """(config, per-epoch log records) of a run folder."""
    with open(os.path.join(run, "config.json")) as f:
        config = json.load(f)
    with open(os.path.join(run, "log.jsonl")) as f:
        epochs = [r for r in map(json.loads, filter(str.strip, f)) if "epoch" in r]
    return config, epochs


def finished(run):
    try:
        config, epochs = read_run(run)
    except (OSError, ValueError):
        return False
    return bool(epochs) and epochs[-1]["epoch"] == config["epochs"]


def train_all(args, variants):
    """Runs the variants not yet finished, args.jobs at a time; returns the names that failed."""
    pending = [(n, e) for n, e in variants if not finished(os.path.join(args.out, n))]
    running, failed = [], []
    while pending or running:
        while pending and len(running) < args.jobs:
            name, extra = pending.pop(0)
            out = os.path.join(args.out, name)
            os.makedirs(out, exist_ok=True)
            cmd = cli_command() + ["train", "--data", args.data, "--arch", args.arch, "--epochs", str(args.epochs),
                                   "--out", out, "--resume", "--threads", str(args.threads), "--device", "cpu",
                                   "--cache", args.cache] + extra
            if args.limit:
                cmd += ["--limit", str(args.limit)]
            log = open(os.path.join(args.out, name + ".out"), "a")
            print(f"[{time.strftime('%H:%M:%S')}] start {name}: {' '.join(cmd[len(cli_command()):])}", flush=True)
            running.append((name, subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT), log))
        time.sleep(0.5)
        for item in list(running):
            name, proc, log = item
            if proc.poll() is None:
                continue
            running.remove(item)
            log.close()
            print(f"[{time.strftime('%H:%M:%S')}] {name}: exit {proc.returncode}", flush=True)
            if proc.returncode:
                failed.append(name)
    return failed


def score(args, variants):
    """Last-epoch PublicTest metrics of each finished run."""
    import torch
    from . import LABELS
    from .arch import build
    from .data import load_dataset
    from .evaluate import metrics
    from .train import load_checkpoint, predict
    images, labels, usages = load_dataset(args.data, args.cache)
    x, y = images[usages == "PublicTest"], labels[usages == "PublicTest"]
    torch.set_num_threads(os.cpu_count())
    results = {}
    for name, extra in variants:
        run = os.path.join(args.out, name)
        if not finished(run):
            print(f"{name}: not finished, left out", file=sys.stderr)
            continue
        config, epochs = read_run(run)
        model = build(config["arch"])
        model.load_state_dict(load_checkpoint(os.path.join(run, "last.pt"))["model"])
        model.eval()
        m = metrics(y, predict(model, x, config["mean"], config["std"]).argmax(1))
        results[name] = {
            "accuracy": m["accuracy"], "macro_f1": m["macro_f1"],
            "recall": {c: m["per_class"][c]["recall"] for c in LABELS},
            "train_acc": epochs[-1]["train_acc"], "best_epoch_acc": max(r["public_test_acc"] for r in epochs),
            "epochs": config["epochs"], "seconds": sum(r["seconds"] for r in epochs),
            "train_options": extra,
        }
    return results


def table(results):
    lines = ["| variant | PublicTest, last epoch | macro F1 | disgust recall | fear recall | training acc. |",
             "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for name, r in results.items():
        lines.append(f"| {name} | {100 * r['accuracy']:.2f} % | {r['macro_f1']:.3f} | {r['recall']['disgust']:.3f} "
                     f"| {r['recall']['fear']:.3f} | {100 * r['train_acc']:.1f} % |")
    return "\n".join(lines)


def main():
    p = argparse.ArgumentParser(prog=f"python3 -m {__name__}", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="fer2013.csv(.gz) or a pack written by `emotion-model pack`")
    p.add_argument("--out", required=True, help="folder for the runs and ablation.json")
    p.add_argument("--arch", default="emonet-xs")
    p.add_argument("--epochs", type=int, default=10, help="one-cycle schedule of every run")
    p.add_argument("--jobs", type=int, default=2, help="runs at once")
    p.add_argument("--threads", type=int, default=1, help="CPU threads per run")
    p.add_argument("--variants", help="comma-separated subset of: " + ", ".join(n for n, _ in VARIANTS))
    p.add_argument("--limit", type=int, default=0, help="first N Training rows only (smoke tests)")
    p.add_argument("--cache", default=os.path.expanduser("~/.cache/emotiond"))
    args = p.parse_args()
    variants = VARIANTS
    if args.variants:
        known = dict(VARIANTS)
        wanted = args.variants.split(",")
        unknown = [n for n in wanted if n not in known]
        if unknown:
            p.error(f"--variants: unknown {', '.join(unknown)}; known: {', '.join(known)}")
        variants = [(n, known[n]) for n in wanted]
    if args.epochs < 1 or args.jobs < 1 or args.threads < 1:
        p.error("--epochs, --jobs and --threads must be at least 1")
    os.makedirs(args.out, exist_ok=True)
    failed = train_all(args, variants)
    results = score(args, [(n, e) for n, e in variants if n not in failed])
    with open(os.path.join(args.out, "ablation.json"), "w") as f:
        json.dump({"arch": args.arch, "epochs": args.epochs, "results": results}, f, indent=2)
    print(table(results))
    if failed:
        print(f"failed: {', '.join(failed)} (see OUT/NAME.out)", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

"""PNG figures for the model card (docs/figures). Matplotlib with the Agg backend: no display."""
import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 - the backend must be chosen first
import matplotlib.ticker  # noqa: E402
import numpy as np  # noqa: E402

from . import LABELS  # noqa: E402


def _save(fig, path):
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path


def confusion_png(m, path, title=""):
    """Rows normalised to recall (colour and percentage), raw counts underneath."""
    cm = np.array(m["confusion"], dtype=np.float64)
    rows = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(7, 6))
    im = ax.imshow(rows, cmap="Blues", vmin=0, vmax=1)
    for i in range(len(LABELS)):
        for j in range(len(LABELS)):
            ax.text(j, i, f"{rows[i, j]:.0%}\n{int(cm[i, j])}", ha="center", va="center", fontsize=8,
                    color="white" if rows[i, j] > 0.5 else "black")
    ax.set_xticks(range(len(LABELS)), LABELS, rotation=45, ha="right")
    ax.set_yticks(range(len(LABELS)), LABELS)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=10)
    fig.colorbar(im, ax=ax, fraction=0.046, label="fraction of true class")
    return _save(fig, path)


def read_logs(log_paths, used_epochs=None):
    """Join the log.jsonl of runs that continue each other (train --init): each run's epochs are
    renumbered to follow the epochs the next run started from, and the epochs after those, which
    the next run did not build on, are dropped. used_epochs[k] is how many epochs of run k the
    weights carry (an exported model's training cycles say it: the last epoch, or the best one);
    without it a run is taken to continue from its predecessor's best epoch. Returns the joined
    records and the epochs at which a new run starts."""
    joined, starts = [], []
    for k, log_path in enumerate(log_paths):
        with open(log_path) as f:
            log = [json.loads(line) for line in f if line.strip()]
        log = [r for r in log if "epoch" in r]  # not {"stopped": E} (time budget overrun)
        if used_epochs and k < len(used_epochs):
            log = [r for r in log if r["epoch"] <= used_epochs[k]]
        elif k + 1 < len(log_paths) and log:
            best = max(log, key=lambda r: r["public_test_acc"])["epoch"]
            log = [r for r in log if r["epoch"] <= best]
        offset = joined[-1]["epoch"] if joined else 0
        if joined:
            starts.append(offset)
        joined += [dict(r, epoch=r["epoch"] + offset) for r in log]
    return joined, starts


def curve_png(log_paths, path, title="", used_epochs=None):
    """Loss and accuracy per epoch from the log.jsonl of a run, or of runs continuing each other
    (read_logs), with the weight average's accuracy where the run averaged weights (--swa-epochs).
    The marked point is what the weights that were exported score: the average's last value when
    there is one, else the last epoch's (with used_epochs) or the best epoch's."""
    if isinstance(log_paths, str):
        log_paths = [log_paths]
    log, starts = read_logs(log_paths, used_epochs)
    ep = [r["epoch"] for r in log]
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 3.8))
    a1.plot(ep, [r["train_loss"] for r in log], label="training loss")
    a1.set_xlabel("epoch")
    a1.set_ylabel("training loss")
    a1.legend()
    a2.plot(ep, [r["train_acc"] for r in log], label="Training (augmented)")
    a2.plot(ep, [r["public_test_acc"] for r in log], label="PublicTest")
    swa = [r for r in log if "swa_public_test_acc" in r]
    if swa:
        a2.plot([r["epoch"] for r in swa], [r["swa_public_test_acc"] for r in swa], color="C3",
                label="PublicTest, weight average")
        mark = (swa[-1]["epoch"], swa[-1]["swa_public_test_acc"])
    elif used_epochs:
        mark = (log[-1]["epoch"], log[-1]["public_test_acc"])
    else:
        best = max(log, key=lambda r: r["public_test_acc"])
        mark = (best["epoch"], best["public_test_acc"])
    a2.scatter([mark[0]], [mark[1]], color="C3" if swa else "C1", zorder=3)
    a2.annotate(f"{mark[1]:.3f}", mark, textcoords="offset points", xytext=(-10, 8))
    for s in starts:
        for ax in (a1, a2):
            ax.axvline(s + 0.5, color="grey", linestyle="--", linewidth=0.8)
        a2.annotate("new cycle (--init)", (s + 0.7, a2.get_ylim()[1]), fontsize=7, color="grey",
                    textcoords="offset points", xytext=(0, -10))
    a2.set_xlabel("epoch")
    a2.set_ylabel("accuracy")
    a2.legend()
    fig.suptitle(title)
    return _save(fig, path)


def _grid(faces, captions, path, cols, title="", colours=None):
    rows = (len(faces) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(cols * 1.3, rows * 1.55), squeeze=False,
                             layout="constrained")
    for k, ax in enumerate(axes.flat):
        ax.axis("off")
        if k < len(faces):
            ax.imshow(faces[k], cmap="gray", vmin=0, vmax=255)
            ax.set_title(captions[k], fontsize=7, color=(colours[k] if colours else "black"))
    fig.suptitle(title, fontsize=10)
    return _save(fig, path)


def failures_png(images, y_true, probs, path, count=24, cols=8):
    """The mistakes the model is most sure of: often label noise in FER2013, sometimes real
    confusions (fear/surprise, sad/neutral)."""
    pred = probs.argmax(1)
    wrong = np.flatnonzero(pred != y_true)
    order = wrong[np.argsort(-probs[wrong, pred[wrong]], kind="stable")][:count]
    captions = [f"true {LABELS[y_true[i]]}\npred {LABELS[pred[i]]} {probs[i, pred[i]]:.2f}" for i in order]
    return _grid(images[order], captions, path, cols, "most confident mistakes", ["firebrick"] * len(order))


def examples_png(images, labels, path, per_class=6, seed=0):
    """A few random faces of each class, one row per class."""
    rng = np.random.default_rng(seed)
    faces, captions = [], []
    for c, name in enumerate(LABELS):
        idx = np.flatnonzero(labels == c)
        for i in rng.choice(idx, size=min(per_class, len(idx)), replace=False):
            faces.append(images[i])
            captions.append(name)
    return _grid(np.array(faces), captions, path, per_class, "FER2013 examples")


def class_counts_png(labels, usages, path):
    """Faces per class and split: the imbalance (disgust is ~1.5 %) explains much of the per-class table."""
    splits = [s for s in ("Training", "PublicTest", "PrivateTest") if (usages == s).any()]
    fig, ax = plt.subplots(figsize=(8, 3.8))
    width = 0.8 / len(splits)
    x = np.arange(len(LABELS))
    for k, s in enumerate(splits):
        counts = np.bincount(labels[usages == s], minlength=len(LABELS))
        bars = ax.bar(x + (k - (len(splits) - 1) / 2) * width, counts, width, label=s)
        ax.bar_label(bars, fontsize=7)
    ax.set_xticks(x, LABELS)
    ax.set_ylabel("faces")
    ax.set_title("FER2013 faces per class")
    ax.legend()
    return _save(fig, path)


def frontier_png(points, path, budget_ms=None):
    """PublicTest accuracy against OpenCV DNN latency on a logarithmic time axis, one numbered point
    per model, named in the legend (small models crowd together); the upper-left hull is the set
    worth shipping."""
    fig, ax = plt.subplots(figsize=(9, 4.8))
    for i, p in enumerate(points, start=1):
        label = f"{i}. {p['name']}: {100 * p['accuracy']:.2f} %, {p['ms_per_face']:.2f} ms" + \
            (f" ({p['note']})" if p.get("note") else "")
        ax.scatter(p["ms_per_face"], p["accuracy"], s=30 + p.get("macs", 0) / 4e6, alpha=0.7, label=label)
        ax.annotate(str(i), (p["ms_per_face"], p["accuracy"]), textcoords="offset points",
                    xytext=(5, 3), fontsize=8)
    pareto, best = [], -1.0
    for p in sorted(points, key=lambda p: (p["ms_per_face"], -p["accuracy"])):
        if p["accuracy"] > best:
            pareto.append(p)
            best = p["accuracy"]
    ax.plot([p["ms_per_face"] for p in pareto], [p["accuracy"] for p in pareto], "--", color="grey", lw=1)
    if budget_ms:
        ax.axvline(budget_ms, color="firebrick", lw=1, ls=":")
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
    ax.set_xticks([1, 2, 3, 5, 10, 20])
    ax.set_xlabel("ms per face (OpenCV DNN, batch 1, 1 thread; log scale)")
    ax.set_ylabel("PublicTest accuracy")
    ax.set_title("accuracy vs latency (marker area ~ MACs)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1), borderaxespad=0, markerscale=0.5)
    return _save(fig, path)

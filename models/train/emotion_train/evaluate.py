"""Evaluation of an exported model the way the daemon runs it: the ONNX file through OpenCV DNN,
normalised and test-time-augmented as its metadata says. Training-time numbers come from
PyTorch; these come from the shipped artefact, so they also catch a broken export."""
import json
import math
import os

import cv2
import numpy as np

from . import LABELS
from .data import file_sha256

FORMAT = "emotiond-model/1"
TTA_MODES = ("none", "hflip")


class ModelError(ValueError):
    """A model file or metadata that cannot be used; the message says which and why."""


def write_json(path, obj):
    """The --json output of evaluate, compare and bench: indented, newline-terminated, announced."""
    with open(path, "w") as f:
        json.dump(obj, f, indent=2)
        f.write("\n")
    print(f"wrote {path}")


def normalise(images, norm):
    """uint8 [N,48,48] -> float32 blob [N,1,48,48]: x = (pixel * scale - mean) / std."""
    x = images.astype(np.float32) * np.float32(norm["scale"])
    x = (x - np.float32(norm["mean"])) / np.float32(norm["std"])
    return np.ascontiguousarray(x[:, None, :, :])


def temper(p, temperature):
    """softmax(log(p) / T) row by row: the net's softmax output at temperature T, since log(p)
    differs from the logits by one constant per row. p is floored at 1e-30 so that a class ruled
    out entirely stays finite."""
    z = np.log(np.maximum(p.astype(np.float64), 1e-30)) / temperature
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def class_weights(meta):
    """The metadata's prior_correction as the weights the daemon multiplies the probabilities by,
    training_prior[k] ** -power (then renormalised); None when it has none. ModelError for a
    correction the daemon would refuse (daemon/model.c checks the same)."""
    pc = meta.get("prior_correction")
    if pc is None:
        return None
    try:
        power = float(pc["power"])
        prior = np.array([float(v) for v in pc["training_prior"]], dtype=np.float64)
    except (KeyError, TypeError, ValueError) as e:
        raise ModelError(f"prior_correction is not {{power, training_prior}}: {e}") from None
    if not 0 <= power <= 2 or prior.shape != (len(LABELS),) or not ((prior > 0) & (prior <= 1)).all() \
            or abs(prior.sum() - 1) > 1e-3:
        raise ModelError(f"prior_correction: power {power} outside 0..2, or training_prior {prior.tolist()} "
                         f"not {len(LABELS)} shares summing to 1")
    return None if power == 0 else prior ** -power


def reweight(p, weights):
    """Probabilities [N,7] multiplied by the class weights and renormalised (as the daemon does)."""
    if weights is None:
        return p
    w = p.astype(np.float64) * weights
    return w / w.sum(1, keepdims=True)


def dnn_predict(net, images, norm, tta="none", batch=256, temperature=1.0, weights=None):
    """Probabilities [N,7] from an OpenCV DNN net for uint8 faces [N,48,48]. With tta 'hflip' the
    mirrored face is run too and the two probability vectors are averaged, as the daemon does.
    temperature != 1 tempers each view's probabilities before the average (distillation).
    weights (class_weights of the metadata) reweights the result as the daemon does."""
    if tta not in TTA_MODES:
        raise ModelError(f"unknown tta {tta!r}; known: {', '.join(TTA_MODES)}")
    view = (lambda q: q.copy()) if temperature == 1.0 else (lambda q: temper(q, temperature))
    out = []
    for i in range(0, len(images), batch):
        x = normalise(images[i:i + batch], norm)
        net.setInput(x)
        p = view(net.forward())
        if tta == "hflip":
            net.setInput(np.ascontiguousarray(x[:, :, :, ::-1]))
            p = (p + view(net.forward())) / 2
        out.append(p)
    return reweight(np.concatenate(out).astype(np.float64), weights)


def load_model(json_path, verify=True):
    """Read model metadata and its ONNX file -> (cv2.dnn net, metadata dict). With verify, the
    ONNX file's sha256 must equal the recorded one: a stale or swapped file is refused."""
    try:
        with open(json_path) as f:
            meta = json.load(f)
    except (OSError, ValueError) as e:
        raise ModelError(f"{json_path}: cannot read metadata: {e}") from None
    if meta.get("format") != FORMAT:
        raise ModelError(f"{json_path}: format is {meta.get('format')!r}, expected {FORMAT!r}")
    if tuple(meta.get("labels", ())) != LABELS:
        raise ModelError(f"{json_path}: labels {meta.get('labels')} differ from {list(LABELS)}")
    onnx_path = os.path.join(os.path.dirname(os.path.abspath(json_path)), meta["onnx"])
    if verify:
        digest = file_sha256(onnx_path)
        if digest != meta["sha256"]:
            raise ModelError(f"{onnx_path}: sha256 {digest} differs from {meta['sha256']} in {json_path}")
    try:
        net = cv2.dnn.readNetFromONNX(onnx_path)
    except cv2.error as e:
        raise ModelError(f"{onnx_path}: OpenCV cannot load it: {e}") from None
    class_weights(meta)  # refuse a correction the daemon would refuse
    return net, meta


def metrics(y_true, y_pred, n_classes=len(LABELS), probs=None):
    """Accuracy, confusion matrix (rows true, columns predicted), per-class precision/recall/F1
    and their macro average. A class never predicted has precision 0, not NaN. With the
    probabilities [N, n_classes], also top-2 and top-3 accuracy, overall and per class (how often
    the true class is among the k most probable): whether an error is a near miss between two
    classes or a face the network reads as something else altogether."""
    cm = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(cm, (y_true, y_pred), 1)
    tp = np.diag(cm).astype(np.float64)
    support = cm.sum(axis=1)
    predicted = cm.sum(axis=0)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    per_class = {LABELS[c]: {"precision": float(precision[c]), "recall": float(recall[c]),
                             "f1": float(f1[c]), "support": int(support[c])} for c in range(n_classes)}
    m = {"n": int(len(y_true)), "accuracy": float(tp.sum() / max(1, len(y_true))),
         "macro_f1": float(f1.mean()), "per_class": per_class, "confusion": cm.tolist()}
    if probs is not None:
        # Rank of the true class among the probabilities, 0 for the most probable (ties count
        # against the true class: a class is ahead of it when strictly more probable, or equal
        # and listed first, as argmax breaks ties).
        p_true = probs[np.arange(len(y_true)), y_true][:, None]
        ahead = (probs > p_true) | ((probs == p_true) & (np.arange(n_classes)[None, :] < y_true[:, None]))
        rank = ahead.sum(axis=1)
        for k in (2, 3):
            m[f"top{k}"] = float(np.mean(rank < k)) if len(y_true) else 0.0
            for c in range(n_classes):
                sel = y_true == c
                per_class[LABELS[c]][f"top{k}"] = float(np.mean(rank[sel] < k)) if sel.any() else 0.0
    return m


def format_table(m):
    topk = "top2" in m
    head = f"{'class':10s} {'precision':>9s} {'recall':>7s} {'F1':>6s} {'support':>8s}"
    lines = [head + (f" {'top-2':>6s} {'top-3':>6s}" if topk else "")]
    for name, r in m["per_class"].items():
        line = f"{name:10s} {r['precision']:9.3f} {r['recall']:7.3f} {r['f1']:6.3f} {r['support']:8d}"
        lines.append(line + (f" {r['top2']:6.3f} {r['top3']:6.3f}" if topk else ""))
    lines.append(f"{'accuracy':10s} {m['accuracy']:9.4f}   (n = {m['n']}, macro F1 {m['macro_f1']:.4f})")
    if topk:
        lines.append(f"{'top-2':10s} {m['top2']:9.4f}   (the true class among the two most probable)")
        lines.append(f"{'top-3':10s} {m['top3']:9.4f}")
    lines.append("confusion (rows true, columns predicted):")
    lines.append(" " * 10 + "".join(f"{n[:7]:>8s}" for n in LABELS))
    for name, row in zip(LABELS, m["confusion"]):
        lines.append(f"{name:10s}" + "".join(f"{v:8d}" for v in row))
    return "\n".join(lines)


def select_rows(args, usages):
    """The rows --usage asks for (all of them for "all"); ModelError when there are none."""
    sel = np.ones(len(usages), bool) if args.usage == "all" else usages == args.usage
    if not sel.any():
        raise ModelError(f"{args.data}: no {args.usage} rows")
    return sel


def run_evaluate(args):
    from .data import load_dataset
    cv2.setNumThreads(args.threads)
    net, meta = load_model(args.model)
    images, labels, usages = load_dataset(args.data, args.cache)
    sel = select_rows(args, usages)
    x, y = images[sel], labels[sel]
    tta = args.tta or meta["tta"]
    probs = dnn_predict(net, x, meta["normalization"], tta, weights=class_weights(meta))
    m = metrics(y, probs.argmax(1), probs=probs)
    name = args.name or args.usage
    power = (meta.get("prior_correction") or {}).get("power", 0)
    m.update(model=meta["name"], usage=args.usage, set=name, tta=tta, prior_power=power)
    print(f"{meta['name']} on {name} through OpenCV {cv2.__version__} DNN, tta {tta}, prior correction {power}")
    print(format_table(m))
    if args.json:
        write_json(args.json, m)
    if args.figures:
        from . import figures
        os.makedirs(args.figures, exist_ok=True)
        written = [
            figures.confusion_png(m, os.path.join(args.figures, "confusion.png"),
                                  title=f"{meta['name']}, {name} (n = {m['n']}), accuracy {m['accuracy']:.3f}"),
            figures.failures_png(x, y, probs, os.path.join(args.figures, "failures.png")),
            figures.examples_png(x, y, os.path.join(args.figures, "examples.png")),
            figures.class_counts_png(labels, usages, os.path.join(args.figures, "class-counts.png")),
        ]
        if args.log:
            # The metadata's cycles say how many epochs of each run the exported weights carry.
            cycles = meta.get("training", {}).get("cycles") or []
            used = [c["epochs"] for c in cycles] if len(cycles) == len(args.log) else None
            written.append(figures.curve_png(args.log, os.path.join(args.figures, "training-curve.png"),
                                             title=f"{meta['architecture']} training", used_epochs=used))
        for path in written:
            print(f"wrote {path}")
    return m


def mcnemar(only_a, only_b):
    """Exact two-sided McNemar test on the faces where two models disagree about being right:
    only_a faces right only for model A, only_b right only for B. Returns the probability of a
    split at least this uneven if each such face were a fair coin (no difference in accuracy)."""
    n = only_a + only_b
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(min(only_a, only_b) + 1))
    return min(1.0, 2 * tail / 2 ** n)


def paired_difference(right_a, right_b):
    """Accuracy of B minus accuracy of A on the same faces (boolean arrays), with the McNemar
    counts, the exact p value and a 95 % normal interval of the paired difference."""
    n = len(right_a)
    only_a = int((right_a & ~right_b).sum())
    only_b = int((right_b & ~right_a).sum())
    diff = (only_b - only_a) / n
    se = math.sqrt(max(0.0, only_a + only_b - (only_b - only_a) ** 2 / n)) / n
    return {"n": n, "right_only_a": only_a, "right_only_b": only_b, "difference": diff,
            "ci95": [diff - 1.96 * se, diff + 1.96 * se], "p_mcnemar": mcnemar(only_a, only_b)}


def run_compare(args):
    """The first --model is the baseline; every other one is compared with it, face by face."""
    from .data import load_dataset
    if len(args.model) < 2:
        raise ModelError("compare needs at least two --model files")
    cv2.setNumThreads(args.threads)
    models = [load_model(path) for path in args.model]
    images, labels, usages = load_dataset(args.data, args.cache)
    sel = select_rows(args, usages)
    x, y = images[sel], labels[sel]
    right = []
    name = args.name or args.usage
    result = {"usage": args.usage, "set": name, "models": [], "against_baseline": []}
    for net, meta in models:
        tta = args.tta or meta["tta"]
        right.append(dnn_predict(net, x, meta["normalization"], tta, weights=class_weights(meta)).argmax(1) == y)
        result["models"].append({"model": meta["name"], "tta": tta, "accuracy": float(right[-1].mean())})
    base = result["models"][0]["model"]
    print(f"{name}, n = {len(y)}, through OpenCV {cv2.__version__} DNN")
    for m in result["models"]:
        print(f"  {m['model']:24s} tta {m['tta']:5s} accuracy {m['accuracy']:.4f}")
    for (_, meta), r in zip(models[1:], right[1:]):
        d = paired_difference(right[0], r)
        d.update(model=meta["name"], baseline=base)
        result["against_baseline"].append(d)
        print(f"{meta['name']} against {base}: {d['difference'] * 100:+.2f} points "
              f"(95 % interval {d['ci95'][0] * 100:+.2f} to {d['ci95'][1] * 100:+.2f}); "
              f"right only here {d['right_only_b']}, only in {base} {d['right_only_a']}, "
              f"McNemar p = {d['p_mcnemar']:.3g}")
    if args.json:
        write_json(args.json, result)
    return result


def run_prior(args):
    """Set (or with power 0 remove) an exported model's prior_correction: the class shares of the
    Training rows of --data and the power, written into its metadata (the ONNX file is unchanged),
    with evaluation.accuracy measured again on PublicTest as the daemon will now decide."""
    from .data import load_dataset
    if not 0 <= args.power <= 2:
        raise ModelError(f"--power {args.power}: use 0 (none) to 2")
    cv2.setNumThreads(args.threads)
    net, meta = load_model(args.model)
    images, labels, usages = load_dataset(args.data, args.cache)
    train = usages == "Training"
    if not train.any():
        raise ModelError(f"{args.data}: no Training rows to take the class shares from")
    if args.power == 0:
        meta.pop("prior_correction", None)
    else:
        shares = np.bincount(labels[train], minlength=len(LABELS)) / train.sum()
        if (shares == 0).any():
            raise ModelError(f"{args.data}: a class has no Training row")
        meta["prior_correction"] = {"power": float(args.power), "training_prior": [float(v) for v in shares],
                                    "training_rows": int(train.sum())}
    out = args.out or args.model
    if os.path.dirname(os.path.abspath(out)) != os.path.dirname(os.path.abspath(args.model)):
        raise ModelError(f"{out}: the metadata must stay next to {meta['onnx']}")
    if args.out:
        meta["name"] = os.path.splitext(os.path.basename(out))[0]
    test = usages == "PublicTest"
    if test.any():
        probs = dnn_predict(net, images[test], meta["normalization"], meta["tta"], weights=class_weights(meta))
        accuracy = float((probs.argmax(1) == labels[test]).mean())
        meta["evaluation"] = {"split": "PublicTest", "n": int(test.sum()), "accuracy": accuracy}
        print(f"{meta['name']}: PublicTest accuracy {accuracy:.4f} with prior correction {args.power}")
    with open(out + ".tmp", "w") as f:
        json.dump(meta, f, indent=2)
        f.write("\n")
    os.replace(out + ".tmp", out)
    print(f"wrote {out}")

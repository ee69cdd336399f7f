"""Export of a training checkpoint to the files the daemon loads: NAME.onnx and NAME.json.

The ONNX graph is the network plus a softmax (opset 11, input "input" [N,1,48,48], output
"prob" [N,7], dynamic batch). OpenCV 4.6 is the runtime, not onnxruntime, so the export proves
itself there: PublicTest faces must give the same probabilities through cv2.dnn as through
PyTorch, and the accuracy in the metadata is measured through cv2.dnn.
"""
import io
import json
import os
import re

import cv2
import numpy as np
import onnx
import torch
from torch import nn

from . import IMAGE_SIZE, LABELS
from .arch import build, macs
from .data import file_sha256, load_dataset
from .evaluate import FORMAT, ModelError, dnn_predict
from .framing import DEFAULT_FRAMING, load_framing
from .train import load_model, load_weights, predict

OPSET = 11
PARITY_FACES = 200
PARITY_TOLERANCE = 1e-4


def strip_identities(model):
    """Remove Identity nodes in place by pointing their consumers at the Identity's input.

    torch 1.13 deduplicates equal constants (e.g. the zero biases of freshly folded batch norms)
    and re-exports each use through an Identity on the shared initializer; OpenCV 4.6's importer
    rejects an Identity fed by an initializer ("inputs.size()" assertion). An Identity that
    produces a graph output is kept: its name is part of the interface. Returns the count removed."""
    graph = model.graph
    graph_outputs = {o.name for o in graph.output}
    rename, kept = {}, []
    for node in graph.node:
        if node.op_type == "Identity" and node.output[0] not in graph_outputs:
            rename[node.output[0]] = rename.get(node.input[0], node.input[0])  # chains collapse
        else:
            kept.append(node)
    for node in kept:
        for i, name in enumerate(node.input):
            if name in rename:
                node.input[i] = rename[name]
    stale = [v for v in graph.value_info if v.name in rename]
    for v in stale:
        graph.value_info.remove(v)
    removed = len(graph.node) - len(kept)
    del graph.node[:]
    graph.node.extend(kept)
    return removed


def to_onnx(net):
    """PyTorch classifier (logits) -> serialised ONNX bytes that OpenCV 4.6 loads, softmax included."""
    wrapped = nn.Sequential(net, nn.Softmax(dim=1)).eval()
    buf = io.BytesIO()
    with torch.no_grad():
        torch.onnx.export(wrapped, torch.zeros(1, 1, IMAGE_SIZE, IMAGE_SIZE), buf, opset_version=OPSET,
                          input_names=["input"], output_names=["prob"],
                          dynamic_axes={"input": {0: "batch"}, "prob": {0: "batch"}},
                          do_constant_folding=True)
    model = onnx.load_from_string(buf.getvalue())
    strip_identities(model)
    onnx.checker.check_model(model)
    return model.SerializeToString()


def load_checkpoint(path):
    """best.pt or last.pt -> (model in eval mode, checkpoint dict, run config dict). The run's
    config.json (next to the checkpoint) supplies what the checkpoint does not record: rows, seed, FER+."""
    try:
        model, ck = load_model(path)
    except (OSError, ValueError) as e:
        raise ModelError(str(e)) from None
    config_path = os.path.join(os.path.dirname(os.path.abspath(path)), "config.json")
    try:
        with open(config_path) as f:
            config = json.load(f)
    except (OSError, ValueError) as e:
        raise ModelError(f"{config_path}: the run's config is needed for the metadata: {e}") from None
    return model, ck, config


def parity(net_cv, model, faces, mean, std):
    """Largest absolute difference of probabilities between OpenCV DNN (one batch, and the first
    face alone, which is how the daemon calls it) and PyTorch."""
    norm = {"scale": 1 / 255.0, "mean": mean, "std": std}
    ref = predict(model, faces, mean, std)
    got = dnn_predict(net_cv, faces, norm, "none", batch=len(faces))
    one = dnn_predict(net_cv, faces[:1], norm, "none", batch=1)
    if got.shape != ref.shape:
        raise ModelError(f"OpenCV output shape {got.shape}, PyTorch {ref.shape}")
    return float(max(np.abs(got - ref).max(), np.abs(one - ref[:1]).max()))


def exported_epochs(meta):
    """Epochs behind an exported model, from its metadata: its training's epochs, or for a soup the
    most any ingredient was trained for."""
    training = meta.get("training", {})
    return int(training.get("epochs") or max((int(i.get("epochs", 0)) for i in training.get("soup", ())), default=0))


def training_cycles(checkpoint, config, ck):
    """The learning-rate cycles behind a checkpoint, oldest first: [{epochs, lr}], following the
    --init chain of the runs (a run started with --init continues the weights of another). Paths
    in config.json are relative to where training ran, which is the run folder minus its --out.
    ck is the loaded checkpoint; the earlier ones are loaded here."""
    cycles = []
    for k in range(16):  # a chain longer than this is a loop
        if k > 0:
            ck = load_weights(checkpoint)
            if ck.get("soup"):
                # The chain starts at a soup (a run fine-tuned from one): its ingredients, each with
                # its own chain, and as epochs the most any ingredient was trained for.
                if not all(isinstance(i, dict) for i in ck["soup"]):
                    raise ModelError(f"{checkpoint}: a soup.pt without its ingredients' provenance; make it "
                                     "again with emotion-model soup")
                cycles.insert(0, {"epochs": max(int(i["epochs"]) for i in ck["soup"]), "soup": ck["soup"]})
                return cycles
        cycle = {"epochs": int(ck["epoch"]), "lr": float(config["lr"])}
        if ck.get("swa_n"):
            # A weight average: the last swa_n of those epochs ran at swa_lr and were averaged.
            cycle["swa"] = {"epochs": int(ck["swa_n"]), "lr": float(config["swa_lr"])}
        cycles.insert(0, cycle)
        init = config.get("init")
        if not init:
            return cycles
        run_dir = os.path.dirname(os.path.abspath(checkpoint))
        out = os.path.normpath(config.get("out", ""))
        base = run_dir[:-len(out)] if out and run_dir.endswith(out) else os.getcwd()
        checkpoint = init if os.path.isabs(init) else os.path.join(base, init)
        if checkpoint.endswith(".json"):
            # The chain starts at an exported model (train --init models/emonet-xs.json): its
            # metadata records how it was made.
            try:
                with open(checkpoint) as f:
                    meta = json.load(f)
            except (OSError, ValueError) as e:
                raise ModelError(f"{checkpoint}: the --init model's metadata: {e}") from None
            cycles.insert(0, {"epochs": exported_epochs(meta), "exported": {
                "name": meta.get("name"), "sha256": meta.get("sha256"), "training": meta.get("training", {})}})
            return cycles
        try:
            with open(os.path.join(os.path.dirname(checkpoint), "config.json")) as f:
                config = json.load(f)
        except OSError as e:
            raise ModelError(f"{checkpoint}: the --init run's config.json: {e}") from None
    raise ModelError(f"{checkpoint}: --init chain longer than 16 runs")


def metadata(name, onnx_file, digest, ck, config, framing, tta, n_params, n_macs, n_eval, accuracy,
             cycles=None, soup=None):
    """The NAME.json schema the daemon parses (json-c); key names are an interface. A soup's
    training lists its ingredients (soup.pt's "soup", written by emotion-model soup) instead of one
    chain of cycles."""
    training = {"data": "FER2013 Training" + (" with FER+ soft labels" if config.get("ferplus") else ""),
                "rows": int(config["n_train"])}
    if soup:
        training.update(soup=soup, batchnorm="recomputed on the augmented Training faces")
    else:
        # epochs: those the shipped weights were trained for (the exported epoch of each cycle), not
        # the runs' plans.
        training.update(epochs=sum(c["epochs"] for c in cycles) if cycles else int(ck["epoch"]),
                        cycles=cycles or [{"epochs": int(ck["epoch"]), "lr": float(config.get("lr", 0))}])
    training["seed"] = int(config["seed"])
    return {
        "format": FORMAT,
        "name": name,
        "onnx": onnx_file,
        "sha256": digest,
        "labels": list(LABELS),
        "input": {"name": "input", "width": IMAGE_SIZE, "height": IMAGE_SIZE, "channels": 1, "layout": "NCHW"},
        "output": {"name": "prob", "kind": "probabilities"},
        "normalization": {"scale": 1 / 255.0, "mean": float(ck["mean"]), "std": float(ck["std"])},
        "framing": {k: float(framing[k]) for k in ("scale", "offset_x", "offset_y")},
        "tta": tta,
        "architecture": ck["arch"],
        "macs": int(n_macs),
        "params": int(n_params),
        "training": training,
        "evaluation": {"split": "PublicTest", "n": int(n_eval), "accuracy": float(accuracy)},
    }


def run_export(args):
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", args.name):
        raise ModelError(f"model name {args.name!r}: use letters, digits, '.', '_' and '-'")
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    framing = load_framing(args.framing_json) if args.framing_json else dict(DEFAULT_FRAMING)
    model, ck, config = load_checkpoint(args.checkpoint)
    images, labels, usages = load_dataset(args.data, args.cache)
    test = usages == "PublicTest"
    x, y = images[test], labels[test]
    if len(x) < PARITY_FACES:
        raise ModelError(f"{args.data}: {len(x)} PublicTest rows, the parity check needs {PARITY_FACES}")

    blob = to_onnx(model)
    net = cv2.dnn.readNetFromONNX(np.frombuffer(blob, dtype=np.uint8))
    diff = parity(net, model, x[:PARITY_FACES], float(ck["mean"]), float(ck["std"]))
    print(f"parity OpenCV {cv2.__version__} DNN vs PyTorch on {PARITY_FACES} PublicTest faces: "
          f"max |dp| = {diff:.2e} (limit {PARITY_TOLERANCE:.0e})")
    if not diff <= PARITY_TOLERANCE:  # also catches NaN
        raise ModelError(f"export does not match PyTorch in OpenCV: max probability difference {diff:.3e} "
                         f"> {PARITY_TOLERANCE:.0e}; nothing written")
    norm = {"scale": 1 / 255.0, "mean": float(ck["mean"]), "std": float(ck["std"])}
    accuracy = float((dnn_predict(net, x, norm, args.tta).argmax(1) == y).mean())
    source = f"soup of {len(ck['soup'])}" if ck.get("soup") else f"epoch {ck['epoch']}"
    print(f"PublicTest accuracy through OpenCV DNN, tta {args.tta}: {accuracy:.4f} (n = {len(x)}; "
          f"checkpoint {source}, PyTorch {ck.get('public_test_acc', float('nan')):.4f} without tta)")

    os.makedirs(args.out_dir, exist_ok=True)
    onnx_path = os.path.join(args.out_dir, args.name + ".onnx")
    json_path = os.path.join(args.out_dir, args.name + ".json")
    # Write both under temporary names and rename at the end, so a failed export never leaves a
    # NAME.json whose sha256 names a different NAME.onnx.
    with open(onnx_path + ".tmp", "wb") as f:
        f.write(blob)
    meta = metadata(args.name, os.path.basename(onnx_path), file_sha256(onnx_path + ".tmp"), ck, config, framing,
                    args.tta, sum(p.numel() for p in model.parameters()), macs(model), len(x), accuracy,
                    None if ck.get("soup") else training_cycles(args.checkpoint, config, ck), ck.get("soup"))
    with open(json_path + ".tmp", "w") as f:
        json.dump(meta, f, indent=2)
        f.write("\n")
    os.replace(onnx_path + ".tmp", onnx_path)
    os.replace(json_path + ".tmp", json_path)
    print(f"wrote {onnx_path} ({len(blob)} bytes, sha256 {meta['sha256'][:16]}...) and {json_path}")
    return meta

"""An exported model (metadata .json + ONNX, as shipped in models/) back into trainable PyTorch
weights, so that `train --init models/emonet-xs.json` fine-tunes the shipped default itself: its
checkpoint lived in a run folder, and run folders are not kept.

The export folds every BatchNorm into the convolution before it (ONNX Conv with a bias), and the
split cannot be recovered from the file. The network rebuilt here keeps the folded convolution and
gives each BatchNorm the running statistics that convolution's output really has on the Training
faces, with a scale and shift that cancel them. In evaluation it computes what the ONNX file
computes (checked against OpenCV DNN to 1e-4, as the export is); in training, where BatchNorm
normalises by the batch, each layer starts near that same function instead of at an arbitrary one."""
import os

import numpy as np
import torch
from torch import nn

from .arch import build
from .evaluate import ModelError, load_model as load_exported
from .export import exported_epochs, parity

# Nodes an EmoNet export is made of; anything else is a graph this importer does not understand.
_EMONET_NODES = {"Conv", "Relu", "MaxPool", "Add", "GlobalAveragePool", "Flatten", "Gemm", "Softmax"}
PARITY_TOLERANCE = 1e-4
CALIBRATION_FACES = 8192


def _conv_bn_pairs(model):
    """The network's Conv2d modules in the order the forward pass (and so the ONNX graph) runs them,
    each with the BatchNorm2d that follows it."""
    mods = list(model.modules())
    pairs = []
    for i, m in enumerate(mods):
        if isinstance(m, nn.Conv2d):
            bn = mods[i + 1] if i + 1 < len(mods) else None
            if not isinstance(bn, nn.BatchNorm2d):
                raise ModelError(f"{type(model).__name__}: a convolution without BatchNorm after it")
            pairs.append((m, bn))
    return pairs


def _graph_weights(onnx_path):
    """(conv [(W, b)] in graph order, (W, b) of the final Gemm as [out, in]) from the ONNX file."""
    import onnx
    from onnx import numpy_helper
    graph = onnx.load(onnx_path).graph
    init = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    unknown = sorted({n.op_type for n in graph.node} - _EMONET_NODES)
    if unknown:
        raise ModelError(f"{onnx_path}: holds {', '.join(unknown)} nodes; only emonet exports can be imported")
    convs, gemms = [], []
    for node in graph.node:
        if node.op_type not in ("Conv", "Gemm"):
            continue
        if len(node.input) != 3 or any(name not in init for name in node.input[1:]):
            raise ModelError(f"{onnx_path}: {node.op_type} node {node.name!r} lacks a constant weight and bias")
        w, b = init[node.input[1]], init[node.input[2]]
        if node.op_type == "Conv":
            convs.append((w, b))
        else:
            attrs = {a.name: a for a in node.attribute}
            trans_b = attrs["transB"].i if "transB" in attrs else 0
            gemms.append((w if trans_b else w.T, b))
    if len(gemms) != 1:
        raise ModelError(f"{onnx_path}: {len(gemms)} Gemm nodes, an emonet export has one")
    return convs, gemms[0]


def _conv_output_stats(model, pairs, faces, mean, std, batch=512):
    """Per-channel mean and variance of each convolution's output (before its BatchNorm) over the
    faces, with the network in evaluation mode: float64 sums, one pass."""
    sums = [None] * len(pairs)

    def hook(k):
        def record(mod, inp, out):
            o = out.detach().double()
            s = (o.sum(dim=(0, 2, 3)), (o * o).sum(dim=(0, 2, 3)), o.numel() // o.shape[1])
            sums[k] = s if sums[k] is None else tuple(a + c for a, c in zip(sums[k], s))
        return record

    handles = [conv.register_forward_hook(hook(k)) for k, (conv, _) in enumerate(pairs)]
    model.eval()
    try:
        with torch.no_grad():
            for i in range(0, len(faces), batch):
                t = torch.from_numpy(faces[i:i + batch]).float().unsqueeze(1)
                model((t / 255.0 - mean) / std)
    finally:
        for h in handles:
            h.remove()
    stats = []
    for s1, s2, n in sums:
        mu = s1 / n
        stats.append((mu, (s2 / n - mu * mu).clamp(min=0)))
    return stats


def from_exported(json_path, arch, faces, check_faces=200):
    """Metadata .json of an exported emonet -> a best.pt-style checkpoint dict (arch, model, mean,
    std, epoch, public_test_acc) whose network computes what the ONNX file computes. faces: uint8
    [N,48,48] Training faces, for the BatchNorm statistics and the parity check. ModelError when the
    export is another architecture, not an emonet graph, or does not match once rebuilt."""
    net, meta = load_exported(json_path)
    if meta.get("architecture") != arch:
        raise ModelError(f"{json_path}: holds {meta.get('architecture')}, not {arch}")
    norm = meta["normalization"]
    if abs(norm.get("scale", 0) - 1 / 255.0) > 1e-12:
        raise ModelError(f"{json_path}: input scale {norm.get('scale')}, training uses 1/255")
    mean, std = float(norm["mean"]), float(norm["std"])
    onnx_path = os.path.join(os.path.dirname(os.path.abspath(json_path)), meta["onnx"])
    convs, (head_w, head_b) = _graph_weights(onnx_path)

    model = build(arch)
    pairs = _conv_bn_pairs(model)
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if len(convs) != len(pairs) or len(linears) != 1:
        raise ModelError(f"{onnx_path}: {len(convs)} convolutions, {arch} has {len(pairs)}")
    with torch.no_grad():
        for k, ((conv, bn), (w, b)) in enumerate(zip(pairs, convs)):
            if tuple(w.shape) != tuple(conv.weight.shape) or b.shape != (conv.out_channels,):
                raise ModelError(f"{onnx_path}: convolution {k} is {list(w.shape)}, {arch} has "
                                 f"{list(conv.weight.shape)}")
            conv.weight.copy_(torch.from_numpy(w.astype(np.float32)))
            # First an exact identity plus the folded bias, so the statistics below are measured on
            # the function of the file.
            bn.running_mean.zero_()
            bn.running_var.fill_(1.0 - bn.eps)
            bn.weight.fill_(1.0)
            bn.bias.copy_(torch.from_numpy(b.astype(np.float32)))
        lin = linears[0]
        if tuple(head_w.shape) != tuple(lin.weight.shape):
            raise ModelError(f"{onnx_path}: the classifier is {list(head_w.shape)}, {arch} has {list(lin.weight.shape)}")
        lin.weight.copy_(torch.from_numpy(head_w.astype(np.float32)))
        lin.bias.copy_(torch.from_numpy(head_b.astype(np.float32)))

        # Then each BatchNorm gets the running statistics its input has, and a scale and shift that
        # undo them: (y - mu) / sqrt(var + eps) * sqrt(var + eps) + mu + b = y + b.
        # 8,192 faces spread over the set measure them to a fraction of a percent, in a quarter of the time.
        calib = faces if len(faces) <= CALIBRATION_FACES else \
            faces[np.linspace(0, len(faces) - 1, CALIBRATION_FACES).astype(np.int64)]
        for (conv, bn), (mu, var) in zip(pairs, _conv_output_stats(model, pairs, calib, mean, std)):
            sd = torch.sqrt(var + bn.eps)
            bn.running_mean.copy_(mu.float())
            bn.running_var.copy_(var.float())
            bn.weight.copy_(sd.float())
            bn.bias.add_(mu.float())
            bn.num_batches_tracked.zero_()

    check = faces[:check_faces]
    diff = parity(net, model.eval(), check, mean, std)
    if diff > PARITY_TOLERANCE:
        raise ModelError(f"{json_path}: rebuilt in PyTorch it differs from OpenCV DNN by {diff:.2e} "
                         f"(> {PARITY_TOLERANCE}) on {len(check)} faces")
    acc = meta.get("evaluation", {}).get("accuracy", float("nan"))
    return {"arch": arch, "model": model.state_dict(), "mean": mean, "std": std, "epoch": exported_epochs(meta),
            "public_test_acc": float(acc), "imported": {"from": os.path.abspath(json_path),
                                                        "sha256": meta["sha256"], "parity": diff}}

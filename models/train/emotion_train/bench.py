"""Latency of models in OpenCV DNN as the daemon runs them: one face per forward pass, one thread.
Latency does not depend on the weights, so an architecture can be measured before it is trained
(--arch exports an untrained instance)."""
import json
import os
import tempfile
import time

import cv2
import numpy as np

from . import IMAGE_SIZE


def bench_net(net, runs=300, warmup=30, seed=0):
    """Median and 10th/90th percentile milliseconds of one batch-1 forward pass. The input changes
    between runs (a fixed array could let a runtime cache something the daemon cannot)."""
    rng = np.random.default_rng(seed)
    inputs = rng.standard_normal((8, 1, 1, IMAGE_SIZE, IMAGE_SIZE)).astype(np.float32)
    for i in range(warmup):
        net.setInput(inputs[i % len(inputs)])
        net.forward()
    times = np.empty(runs)
    for i in range(runs):
        net.setInput(inputs[i % len(inputs)])
        t0 = time.perf_counter()
        net.forward()
        times[i] = time.perf_counter() - t0
    q10, med, q90 = np.percentile(times * 1e3, [10, 50, 90])
    return {"ms_per_face": float(med), "p10": float(q10), "p90": float(q90), "runs": runs}


def _arch_onnx(name, folder):
    import torch
    from .arch import build, macs
    from .export import to_onnx
    torch.manual_seed(0)
    model = build(name).eval()
    path = os.path.join(folder, name + ".onnx")
    with open(path, "wb") as f:
        f.write(to_onnx(model))
    return path, macs(model), sum(p.numel() for p in model.parameters())


def run_bench(args):
    if args.runs < 300:
        raise ValueError("--runs must be at least 300 for a stable median")
    cv2.setNumThreads(args.threads)
    results = []
    with tempfile.TemporaryDirectory(prefix="emotion-bench-") as tmp:
        jobs = [(os.path.splitext(os.path.basename(p))[0], p, None, None) for p in args.onnx]
        for name in args.arch:
            path, n_macs, n_params = _arch_onnx(name, tmp)
            jobs.append((name, path, n_macs, n_params))
        if not jobs:
            raise ValueError("nothing to measure: give --onnx FILE or --arch NAME")
        print(f"OpenCV {cv2.__version__} DNN, {cv2.getNumThreads()} thread(s), batch 1, "
              f"median of {args.runs} runs after {args.warmup} warm-up")
        for name, path, n_macs, n_params in jobs:
            r = bench_net(cv2.dnn.readNetFromONNX(path), runs=args.runs, warmup=args.warmup)
            r.update(name=name, macs=n_macs, params=n_params)
            results.append(r)
            extra = f"  {n_macs / 1e6:7.1f} MMACs {n_params / 1e6:5.2f} M params" if n_macs else ""
            print(f"{name:24s} {r['ms_per_face']:7.3f} ms/face  (p10 {r['p10']:.3f}, p90 {r['p90']:.3f}){extra}",
                  flush=True)
    if args.json:
        from .evaluate import write_json
        write_json(args.json, results)
    return results


def run_frontier(args):
    from .figures import frontier_png
    with open(args.points) as f:
        points = json.load(f)
    for i, p in enumerate(points):
        for key in ("name", "accuracy", "ms_per_face"):
            if key not in p:
                raise ValueError(f"{args.points}: point {i} has no {key!r}")
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    frontier_png(points, args.out, budget_ms=args.budget_ms)
    print(f"wrote {args.out} ({len(points)} points)")

"""Training loop: fixed seeds, checkpoints every epoch (resume with --resume), a JSON-lines log,
one-cycle SGD, label smoothing, optional FER+ soft labels, optional distillation from teacher
checkpoints and optional stochastic weight averaging over the last epochs. Runs on the CPU or, where one is present, a CUDA GPU (the same code; on the GPU the
data, the augmentation and the bookkeeping stay on the device). Model selection uses PublicTest,
as FER2013's protocol intends; PrivateTest is never read here."""
import json
import math
import os
import pickle
import time
from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F

from . import LABELS
from .arch import build, macs
from .augment import augment
from .data import load_dataset, load_ferplus


# What `--augment-without` can switch off, and the augment() arguments that do it.
AUGMENT_PARTS = {
    "affine": dict(rotate=0.0, scale=0.0, shift=0.0),  # rotation, scale and shift
    "flip": dict(flip=False),
    "jitter": dict(jitter=0.0),  # brightness and contrast
    "erase": dict(erase=0.0),
}
CLASS_WEIGHTS = {"none": 0.0, "sqrt": 0.5, "inverse": 1.0}


def augment_options(without, camera=0.0):
    """--augment-without parts and --camera-augment -> keyword arguments of augment()."""
    if not 0 <= camera <= 1:
        raise ValueError(f"--camera-augment {camera}: not a probability between 0 and 1")
    options = {"camera": camera} if camera else {}
    for part in without or ():
        if part not in AUGMENT_PARTS:
            raise ValueError(f"--augment-without {part}: not one of {', '.join(AUGMENT_PARTS)}")
        options.update(AUGMENT_PARTS[part])
    return options


def class_weights(labels, mode, n_classes=len(LABELS)):
    """Per-class loss weights (n / n_c)^p, p 0.5 for "sqrt" and 1 for "inverse", scaled so that
    the average weight over the training faces is 1 (the learning rate keeps its meaning)."""
    if mode not in CLASS_WEIGHTS:
        raise ValueError(f"--class-weights {mode}: not one of {', '.join(CLASS_WEIGHTS)}")
    counts = np.bincount(labels, minlength=n_classes).astype(np.float64)
    w = np.where(counts > 0, (len(labels) / np.maximum(counts, 1)) ** CLASS_WEIGHTS[mode], 0.0)
    w /= (w * counts).sum() / len(labels)
    return torch.tensor(w, dtype=torch.float32)


def _log(path, record):
    with open(path, "a") as f:
        f.write(json.dumps(record) + "\n")


def load_checkpoint(path, device="cpu"):
    """torch.load of our own checkpoints on any PyTorch from 1.13 on (2.6 turned weights_only on,
    which refuses the scheduler state in last.pt). A file that is not one is a ValueError naming it."""
    try:
        try:
            return torch.load(path, map_location=device, weights_only=False)
        except TypeError:  # a PyTorch without weights_only
            return torch.load(path, map_location=device)
    except (RuntimeError, EOFError, pickle.UnpicklingError) as e:
        raise ValueError(f"{path}: not a readable checkpoint: {e}") from None


def load_weights(path, device="cpu"):
    """The weights of a run's best.pt (its best epoch on PublicTest) or last.pt (the end of its
    latest epoch, which is what a run that ships its last epoch exports) -> a best.pt-style dict:
    arch, model, mean, std, epoch (epochs trained, counted from 1) and public_test_acc. last.pt is
    saved for --resume and counts epochs from 0; what it lacks (files from before it recorded
    them) comes from the run's config.json and log.jsonl beside it."""
    ck = load_checkpoint(path, device)
    if "sched" in ck:
        run_dir = os.path.dirname(os.path.abspath(path))
        done = int(ck["epoch"]) + 1
        try:
            with open(os.path.join(run_dir, "config.json")) as f:
                config = json.load(f)
            with open(os.path.join(run_dir, "log.jsonl")) as f:
                log = [json.loads(line) for line in f]
        except (OSError, ValueError) as e:
            raise ValueError(f"{path}: a last.pt needs its run's config.json and log.jsonl: {e}") from None
        acc = [r["public_test_acc"] for r in log if r.get("epoch") == done]
        ck = {"arch": ck.get("arch", config.get("arch")), "model": ck["model"],
              "mean": ck.get("mean", config.get("mean")), "std": ck.get("std", config.get("std")),
              "epoch": done, "public_test_acc": ck.get("public_test_acc", acc[-1] if acc else float("nan"))}
    missing = [k for k in ("arch", "model", "mean", "std", "epoch") if ck.get(k) is None]
    if missing:
        raise ValueError(f"{path}: not a best.pt or last.pt checkpoint (no {', '.join(missing)})")
    return ck


def load_model(path, device="cpu"):
    """A best.pt or last.pt -> (network in eval mode on device, load_weights' dict)."""
    ck = load_weights(path, device)
    model = build(ck["arch"]).to(device)
    model.load_state_dict(ck["model"])
    return model.eval(), ck


def pick_device(name):
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda: PyTorch sees no CUDA GPU here")
    return torch.device(name)


def probabilities(model, x, mean, std, batch=512, tta=False, device="cpu", temperature=1.0):
    """x uint8 [N,48,48] -> class probabilities [N,7] as a tensor on device, softmax(logits / T);
    tta averages each face with its mirror image."""
    model.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(x), batch):
            t = torch.from_numpy(x[i:i + batch]).to(device).float().unsqueeze(1)
            t = (t / 255.0 - mean) / std
            p = F.softmax(model(t) / temperature, dim=1)
            if tta:
                p = (p + F.softmax(model(torch.flip(t, dims=[3])) / temperature, dim=1)) / 2
            out.append(p)
    return torch.cat(out)


def predict(model, x, mean, std, batch=512, tta=False, device="cpu"):
    """x uint8 [N,48,48] -> probabilities float [N,7] as a numpy array."""
    return probabilities(model, x, mean, std, batch, tta, device).cpu().numpy()


def exported_teacher_probs(json_path, x, temperature):
    """Tempered class probabilities [N,7] of an exported model (metadata .json + ONNX, as shipped
    in models/), run through OpenCV DNN as the daemon runs it, averaged over each face and its
    mirror image (evaluate.dnn_predict; its ONNX graph ends in a softmax, which evaluate.temper
    turns into the tempered one)."""
    from .evaluate import dnn_predict, load_model as load_exported
    net, meta = load_exported(json_path)
    p = dnn_predict(net, x, meta["normalization"], tta="hflip", batch=512, temperature=temperature)
    return torch.from_numpy(p.astype(np.float32)), meta


def teacher_log_probs(paths, x, temperature, device):
    """Distillation targets, computed once: the log of the tempered class probabilities of the
    teachers, averaged over the teachers and over each face and its mirror image. A teacher is a
    trained checkpoint (best.pt) or an exported model's metadata (.json, e.g. the shipped
    models/emonet-s.json). x: uint8 [N,48,48]. Offline targets cost one forward pass per teacher
    per face instead of one per training step; the student still sees augmented faces, as with
    FER+ soft labels."""
    total = 0
    for path in paths:
        if path.endswith(".json"):
            p, meta = exported_teacher_probs(path, x, temperature)
            acc = meta.get("evaluation", {}).get("accuracy", float("nan"))
            print(f"teacher {path}: exported {meta.get('name')}, PublicTest {acc:.4f}", flush=True)
            total = total + p.to(device)
            continue
        model, ck = load_model(path, device)
        print(f"teacher {path}: {ck['arch']}, PublicTest {ck['public_test_acc']:.4f}", flush=True)
        total = total + probabilities(model, x, ck["mean"], ck["std"], batch=1024, tta=True, device=device,
                                      temperature=temperature)
    return torch.log(total / len(paths))


def load_teacher_targets(path, n, device):
    """Saved distillation targets (--teacher-targets, or a teacher-*.npy in the cache): float
    log-probabilities [n, 7], each row a distribution. Anything else is a ValueError naming the file."""
    try:
        t = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as e:
        raise ValueError(f"distillation targets {path}: not a readable .npy file: {e}") from None
    if t.shape != (n, len(LABELS)) or not np.issubdtype(t.dtype, np.floating):
        raise ValueError(f"distillation targets {path}: holds {t.dtype} {t.shape}, not float ({n}, {len(LABELS)}) "
                         f"for the {n} Training faces used here")
    total = np.exp(t.astype(np.float64)).sum(1)
    if not np.all(np.isfinite(t)) or np.abs(total - 1).max() > 1e-3:
        raise ValueError(f"distillation targets {path}: rows are not log-probabilities (exp sums to "
                         f"{total.min():.4f}..{total.max():.4f})")
    print(f"teacher targets from {path}", flush=True)
    return torch.from_numpy(t.astype(np.float32)).to(device)


def teacher_cache_path(paths, x, temperature, cache_dir):
    """Where cached_teacher_log_probs keeps the targets of these teachers, faces and temperature."""
    import hashlib
    from .data import file_sha256
    h = hashlib.sha256()
    for path in paths:
        h.update(file_sha256(path).encode())
    h.update(repr(float(temperature)).encode())
    h.update(np.ascontiguousarray(x).tobytes())
    return os.path.join(cache_dir, f"teacher-{h.hexdigest()[:24]}.npy")


def cached_teacher_log_probs(paths, x, temperature, device, cache_dir):
    """teacher_log_probs, kept in cache_dir (when given) under a key made of the teachers' file
    hashes, the temperature and the faces: on one core the targets take minutes per teacher, and a
    resumed run or a second seed asks for the same ones."""
    if not cache_dir:
        return teacher_log_probs(paths, x, temperature, device)
    cached = teacher_cache_path(paths, x, temperature, cache_dir)
    if os.path.exists(cached):
        return load_teacher_targets(cached, len(x), device)
    soft = teacher_log_probs(paths, x, temperature, device)
    os.makedirs(cache_dir, exist_ok=True)
    tmp = f"{cached}.{os.getpid()}.tmp.npy"
    np.save(tmp, soft.cpu().numpy())
    os.replace(tmp, cached)
    return soft


def recompute_batchnorm(model, x, mean, std, aug_opts, augmented=True, batch=256, seed=0):
    """BatchNorm running statistics from one pass over the training faces x (float [N,1,48,48] in
    0..1), augmented as in training, by torch.optim.swa_utils.update_bn, with a fixed generator:
    the same weights always get the same statistics. A weight average needs them recomputed,
    because the mean of per-epoch statistics is not the statistics of the mean network."""
    gen = torch.Generator(device=x.device).manual_seed(seed)

    def batches():
        for i in range(0, len(x), batch):
            xb = x[i:i + batch]
            yield ((augment(xb, gen, **aug_opts) if augmented else xb) - mean) / std

    torch.optim.swa_utils.update_bn(batches(), model)
    return model.eval()


def _time_epochs(model, x, targets, args, aug_opts, mean, std, xte, device, steps_per_epoch):
    """Seconds one epoch takes here, from timed training steps on a copy of the model (the real
    model and the random streams are left untouched)."""
    import copy
    model = copy.deepcopy(model)
    probe_opt = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9)
    probe_gen = torch.Generator(device=device).manual_seed(12345)
    model.train()
    n = min(30, steps_per_epoch)

    def step():
        idx = torch.randint(0, len(x), (args.batch,), generator=probe_gen, device=device)
        xb = augment(x[idx], probe_gen, **aug_opts) if args.augment else x[idx]
        loss = F.cross_entropy(model((xb - mean) / std), targets[idx])
        probe_opt.zero_grad(set_to_none=True)
        loss.backward()
        probe_opt.step()

    for _ in range(5):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    t0 = time.time()
    for _ in range(n):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    per_epoch = (time.time() - t0) / n * steps_per_epoch
    t0 = time.time()
    predict(model, xte, mean, std, device=device)
    return per_epoch + (time.time() - t0)


def _time_swa_extra(model, x, mean, std, aug_opts, augmented, xte, device):
    """Seconds an averaged epoch adds: the BatchNorm pass over the training faces (timed on 2,048
    of them, on a copy of the model) and one more PublicTest pass."""
    import copy
    m = copy.deepcopy(model)
    n = min(len(x), 2048)
    t0 = time.time()
    recompute_batchnorm(m, x[:n], mean, std, aug_opts, augmented)
    per_face = (time.time() - t0) / n
    t0 = time.time()
    predict(m, xte, mean, std, device=device)
    return 1.05 * (per_face * len(x) + time.time() - t0)


def epochs_within(budget, per_epoch, extra, swa_epochs):
    """The most epochs whose time fits the budget when the last min(swa_epochs, epochs) of them
    each cost `extra` seconds more."""
    if swa_epochs * (per_epoch + extra) >= budget:
        return int(budget / (per_epoch + extra))
    return swa_epochs + int((budget - swa_epochs * (per_epoch + extra)) / per_epoch)


def _retime(args, opt, sched, done, elapsed, per_epoch, budget, epoch_cap, steps_per_epoch, log_path):
    """After the second epoch of a --time-budget run (done epochs, elapsed seconds so far, the last
    one per_epoch seconds): fix the number of epochs again from that epoch's real duration. The
    probe's 30 steps can be wrong when other runs share the machine; the first epoch is not used,
    because it carries one-off costs (on a GPU, cuDNN's autotuning made it 1.5-2.5 times longer than
    the next ones). The one-cycle schedule is rebuilt for the new length and moved on to where the
    run is; config.json records the new count. Returns the scheduler to use."""
    epochs = max(done, min(epoch_cap, done + int((budget - elapsed) / (1.02 * per_epoch))))
    if epochs == args.epochs:
        return sched
    print(f"epoch {done} took {per_epoch:.1f} s: {epochs} epochs instead of {args.epochs}", flush=True)
    _log(log_path, {"retimed": epochs, "planned": args.epochs, "epoch_seconds": per_epoch})
    args.epochs = epochs
    with open(os.path.join(args.out, "config.json")) as f:
        config = json.load(f)
    config.update(epochs=epochs, retimed_from=config["epochs"])
    with open(os.path.join(args.out, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, epochs=epochs,
                                                steps_per_epoch=steps_per_epoch, pct_start=0.2)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # stepping a new scheduler before the optimiser is the point
        for _ in range(done * steps_per_epoch):
            sched.step()
    return sched


def _barrier():
    """EMOTION_MODEL_BARRIER=DIR:N (set by campaign.py): wait, up to two minutes, until N runs
    have loaded their data, so that each one times its steps while the others train too."""
    spec = os.environ.get("EMOTION_MODEL_BARRIER")
    if not spec:
        return
    folder, n = spec.rsplit(":", 1)
    os.makedirs(folder, exist_ok=True)
    open(os.path.join(folder, str(os.getpid())), "w").close()
    deadline = time.time() + 120
    while len(os.listdir(folder)) < int(n) and time.time() < deadline:
        time.sleep(0.2)


@dataclass
class _Data:
    """What one run trains on and is scored on. The Training faces and targets live on the
    training device; PublicTest stays in numpy for predict()."""
    faces: np.ndarray  # Training faces, uint8 [N,48,48] (teacher targets and --init read these)
    x: torch.Tensor  # the same faces as float [N,1,48,48] in 0..1, on the device
    y: torch.Tensor  # their labels, on the device
    targets: torch.Tensor  # target distributions [N,7]: one-hot, or mixed with FER+ votes
    sample_weight: Optional[torch.Tensor]  # per-class loss weights (--class-weights), or None
    x_test: np.ndarray  # PublicTest faces, uint8
    y_test: np.ndarray
    mean: float  # input normalisation: of these Training faces, or of the --init model
    std: float


@dataclass
class _Distillation:
    """The teachers' part of the loss: weight alpha (0: none), temperature, targets [N,7] (log)."""
    alpha: float = 0.0
    temperature: float = 4.0
    soft: Optional[torch.Tensor] = None


@dataclass
class _Run:
    """The state the epochs of one run carry from one to the next (all of it is in last.pt)."""
    model: torch.nn.Module
    opt: torch.optim.Optimizer
    gen: torch.Generator  # data order and augmentation
    device: torch.device
    aug_opts: dict
    steps_per_epoch: int
    sched: Optional[torch.optim.lr_scheduler.OneCycleLR] = None  # None when every epoch is averaged
    swa: Optional[torch.optim.swa_utils.AveragedModel] = None
    cycle_epochs: int = 0  # epochs on the one-cycle schedule; the ones after it are averaged
    start: int = 0  # first epoch to train (counted from 0)
    best: float = 0.0  # best PublicTest accuracy so far
    ckpt_path: str = ""
    log_path: str = ""


def _check_options(args):
    """Refuse inconsistent options before anything is loaded; returns --swa-epochs (0 for none)
    and fills in the default --swa-lr."""
    if not 0 <= getattr(args, "kd_alpha", 0.0) <= 1:
        raise ValueError(f"--kd-alpha {args.kd_alpha}: must lie in 0..1")
    if not getattr(args, "kd_temperature", 1.0) > 0:
        raise ValueError(f"--kd-temperature {args.kd_temperature}: must be positive")
    if getattr(args, "time_budget", 0) < 0:
        raise ValueError(f"--time-budget {args.time_budget}: must not be negative")
    swa_epochs = getattr(args, "swa_epochs", 0) or 0
    if swa_epochs < 0:
        raise ValueError(f"--swa-epochs {swa_epochs}: must not be negative")
    if swa_epochs and getattr(args, "swa_lr", None) is None:
        args.swa_lr = args.lr / 10
    if swa_epochs and not args.swa_lr > 0:
        raise ValueError(f"--swa-lr {args.swa_lr}: must be positive")
    if getattr(args, "teacher_targets", None):
        if getattr(args, "teacher", None):
            raise ValueError("--teacher-targets replaces --teacher: give one or the other")
        if not os.path.isfile(args.teacher_targets):
            raise ValueError(f"--teacher-targets {args.teacher_targets}: not a readable .npy file: no such file")
    return swa_epochs


def _prepare(args):
    """Seeds, threads and the device; returns the device."""
    device = pick_device(getattr(args, "device", "cpu"))
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    torch.set_num_threads(args.threads)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    os.makedirs(args.out, exist_ok=True)
    return device


def _load_data(args, device):
    """The Training rows (the first --limit of them) with their targets, and PublicTest."""
    images, labels, usages = load_dataset(args.data, args.cache)
    tr = usages == "Training"
    te = usages == "PublicTest"
    if args.limit:
        idx = np.flatnonzero(tr)[:args.limit]
        tr = np.zeros_like(tr)
        tr[idx] = True
    xtr, ytr = images[tr], labels[tr]
    if len(xtr) == 0 or not te.any():
        raise ValueError(f"{args.data}: training needs Training and PublicTest rows")
    targets = F.one_hot(torch.from_numpy(ytr), len(LABELS)).float()
    if args.ferplus:
        votes = torch.from_numpy(load_ferplus(args.ferplus, len(labels))[tr])
        has = votes.sum(1, keepdim=True) > 0
        targets = torch.where(has, (1 - args.ferplus_weight) * targets + args.ferplus_weight * votes, targets)
    weight_mode = getattr(args, "class_weights", "none") or "none"
    return _Data(faces=xtr, x=torch.from_numpy(xtr).to(device).float().unsqueeze(1) / 255.0,
                 y=torch.from_numpy(ytr).to(device), targets=targets.to(device),
                 sample_weight=class_weights(ytr, weight_mode).to(device) if weight_mode != "none" else None,
                 x_test=images[te], y_test=labels[te],
                 mean=float(xtr.mean() / 255.0), std=float(xtr.std() / 255.0))


def _distillation(args, data, device):
    """The teachers' targets (--teacher, from the cache when there) or saved ones (--teacher-targets)."""
    saved = getattr(args, "teacher_targets", None)
    kd = _Distillation(temperature=getattr(args, "kd_temperature", 4.0))
    kd.alpha = getattr(args, "kd_alpha", 0.0) if getattr(args, "teacher", None) or saved else 0.0
    if kd.alpha and saved:
        kd.soft = load_teacher_targets(saved, len(data.faces), device)
    elif kd.alpha:
        kd.soft = cached_teacher_log_probs(args.teacher, data.faces, kd.temperature, device, args.cache)
    return kd


def _initialise(args, model, data, device):
    """--init: the weights of an earlier run, or of an exported model rebuilt from its ONNX file;
    the run then normalises faces as those weights were trained."""
    if args.init.endswith(".json"):
        # An exported model, e.g. the shipped default: rebuilt from its ONNX file.
        from .imported import from_exported
        ck = from_exported(args.init, args.arch, data.faces)
        print(f"imported {args.init}: OpenCV DNN and the rebuilt network agree to "
              f"{ck['imported']['parity']:.1e}", flush=True)
    else:
        ck = load_weights(args.init, device)
    if ck["arch"] != args.arch:
        raise ValueError(f"--init {args.init} holds {ck['arch']}, not {args.arch}")
    model.load_state_dict(ck["model"])
    # The weights expect the faces normalised as they were trained; on the same Training rows
    # that is what this run measured anyway.
    data.mean, data.std = float(ck["mean"]), float(ck["std"])
    print(f"initialised from {args.init} (epoch {ck['epoch']}, PublicTest {ck['public_test_acc']:.4f})",
          flush=True)


def _fit_time_budget(args, run, data, swa_epochs):
    """--time-budget: measure this machine, then fix the number of epochs (the one-cycle schedule
    needs its length up front; config.json records it, so --epochs N repeats the run anywhere)."""
    _barrier()
    budget = args.time_budget
    per_epoch = _time_epochs(run.model, data.x, data.targets, args, run.aug_opts, data.mean, data.std,
                             data.x_test, run.device, run.steps_per_epoch)
    per_epoch = 1.05 * per_epoch + 0.1  # checkpoints, and a margin
    # An averaged epoch also recomputes BatchNorm over Training and scores the average.
    extra = _time_swa_extra(run.model, data.x, data.mean, data.std, run.aug_opts, args.augment, data.x_test,
                            run.device) if swa_epochs else 0.0
    args.epochs = max(1, min(args.epochs, epochs_within(budget, per_epoch, extra, swa_epochs)))
    note = f" (+{extra:.2f} s per averaged epoch)" if swa_epochs else ""
    print(f"time budget {budget:g} s at ~{per_epoch:.2f} s/epoch{note}: {args.epochs} epochs", flush=True)


def _schedule(args, run, swa_epochs):
    """The last swa_epochs epochs (all of them, at most) run at the constant --swa-lr and their
    weights are averaged; the one-cycle schedule covers the epochs before them."""
    swa_epochs = min(swa_epochs, args.epochs)
    run.cycle_epochs = args.epochs - swa_epochs
    if run.cycle_epochs:
        run.sched = torch.optim.lr_scheduler.OneCycleLR(run.opt, max_lr=args.lr, epochs=run.cycle_epochs,
                                                        steps_per_epoch=run.steps_per_epoch, pct_start=0.2)
    # Stochastic weight averaging (Izmailov et al., 2018): the running mean of the weights at the
    # end of each averaged epoch (parameters only; BatchNorm is recomputed for it).
    if swa_epochs:
        run.swa = torch.optim.swa_utils.AveragedModel(run.model)
    return swa_epochs


def _resume(run, device):
    """--resume: the run's state at the end of its last finished epoch (last.pt); returns the
    checkpoint, whose generator states _restore_global_rng sets later."""
    ck = load_checkpoint(run.ckpt_path, device)
    run.model.load_state_dict(ck["model"])
    run.opt.load_state_dict(ck["opt"])
    if run.sched is not None and ck.get("sched"):
        run.sched.load_state_dict(ck["sched"])
    if run.swa is not None and ck.get("swa"):
        run.swa.load_state_dict(ck["swa"])
    run.gen.set_state(ck["gen"].cpu())
    run.start, run.best = ck["epoch"] + 1, ck["best"]
    print(f"resumed at epoch {run.start}, best PublicTest {run.best:.4f}", flush=True)
    return ck


def _write_config(args, data, device, resuming):
    """config.json: the options and what the run measured (a resumed run keeps the first one's)."""
    config = {k: v for k, v in vars(args).items() if k != "func"}
    config.update(mean=data.mean, std=data.std, macs=macs(build(args.arch)), n_train=int(len(data.faces)),
                  n_test=int(len(data.x_test)), device=str(device), torch=torch.__version__)
    if not resuming:
        with open(os.path.join(args.out, "config.json"), "w") as f:
            json.dump(config, f, indent=2)


def _restore_global_rng(ck, device):
    """Dropout draws from the global generator. It is restored after everything that draws from
    it too (building networks initialises their weights), so that the first resumed epoch sees
    the draws it would have seen in a run that was never interrupted."""
    if ck.get("rng") is None:
        return
    torch.set_rng_state(ck["rng"].cpu())
    if device.type == "cuda" and ck.get("cuda_rng") is not None:
        torch.cuda.set_rng_state(ck["cuda_rng"].cpu(), device)


def _batch_loss(logits, idx, data, kd, args):
    """Label loss (label smoothing, class weights), mixed with the distillation loss."""
    if data.sample_weight is None:
        loss = F.cross_entropy(logits, data.targets[idx], label_smoothing=args.label_smoothing)
    else:
        # Rare classes weigh more; the weights average 1 over Training, not over the batch.
        loss = (F.cross_entropy(logits, data.targets[idx], label_smoothing=args.label_smoothing,
                                reduction="none") * data.sample_weight[data.y[idx]]).mean()
    if kd.alpha:
        # Hinton et al. (2015): KL to the tempered teacher distribution, scaled by T^2 so its
        # gradients keep their size whatever the temperature.
        t = kd.temperature
        distil = F.kl_div(F.log_softmax(logits / t, dim=1), kd.soft[idx], reduction="batchmean",
                          log_target=True) * t ** 2
        loss = (1 - kd.alpha) * loss + kd.alpha * distil
    return loss


def _train_epoch(args, run, data, kd, epoch, in_swa):
    """One pass over the Training faces in a fresh random order; returns (mean loss, accuracy)
    on the augmented faces."""
    device, model = run.device, run.model
    model.train()
    perm = torch.randperm(len(data.x), generator=run.gen, device=device)
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), dtype=torch.long, device=device)
    seen = 0
    for step in range(run.steps_per_epoch):
        idx = perm[step * args.batch:(step + 1) * args.batch]
        x = augment(data.x[idx], run.gen, **run.aug_opts) if args.augment else data.x[idx]
        logits = model((x - data.mean) / data.std)
        loss = _batch_loss(logits, idx, data, kd, args)
        run.opt.zero_grad(set_to_none=True)
        loss.backward()
        run.opt.step()
        if not in_swa:
            run.sched.step()
        loss_sum += loss.detach() * len(idx)
        correct += (logits.argmax(1) == data.y[idx]).sum()
        seen += len(idx)
        if args.progress and step % 20 == 0:
            print(f"\repoch {epoch + 1}/{args.epochs} step {step}/{run.steps_per_epoch} "
                  f"loss {loss_sum.item() / seen:.3f}", end="", flush=True)
    train_loss = loss_sum.item() / seen
    if not math.isfinite(train_loss):
        raise ValueError(f"training diverged at epoch {epoch + 1} (loss {train_loss}); lower --lr")
    return train_loss, correct.item() / seen


def _cpu_state(model):
    return {k: v.detach().cpu() for k, v in model.state_dict().items()}


def _average_epoch(args, run, data, epoch):
    """An averaged epoch's end: add the weights to the average, recompute its BatchNorm, score it
    and write it to swa.pt (a best.pt-style file that export reads). Returns the log fields."""
    run.swa.update_parameters(run.model)
    n_averaged = int(run.swa.n_averaged)
    averaged = recompute_batchnorm(run.swa.module, data.x, data.mean, data.std, run.aug_opts, args.augment)
    acc = float((predict(averaged, data.x_test, data.mean, data.std, device=run.device).argmax(1)
                 == data.y_test).mean())
    path = os.path.join(args.out, "swa.pt")
    torch.save({"arch": args.arch, "model": _cpu_state(averaged), "mean": data.mean, "std": data.std,
                "epoch": epoch + 1, "public_test_acc": acc, "swa_n": n_averaged}, path + ".tmp")
    os.replace(path + ".tmp", path)
    return {"swa_n": n_averaged, "swa_public_test_acc": acc}


def _save_checkpoints(args, run, data, epoch, acc, in_swa):
    """best.pt when the epoch beats the best PublicTest score so far; last.pt always: everything
    --resume needs (epoch counted from 0 there), and exportable as it is (load_weights)."""
    if acc > run.best:
        run.best = acc
        torch.save({"arch": args.arch, "model": _cpu_state(run.model), "mean": data.mean, "std": data.std,
                    "epoch": epoch + 1, "public_test_acc": acc}, os.path.join(args.out, "best.pt"))
    device = run.device
    torch.save({"model": _cpu_state(run.model), "opt": run.opt.state_dict(),
                "sched": run.sched.state_dict() if run.sched is not None else None,
                "swa": _cpu_state(run.swa) if in_swa else None,
                "gen": run.gen.get_state(), "rng": torch.get_rng_state(),
                "cuda_rng": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
                "epoch": epoch, "best": run.best, "arch": args.arch, "mean": data.mean, "std": data.std,
                "public_test_acc": acc}, run.ckpt_path + ".tmp")
    os.replace(run.ckpt_path + ".tmp", run.ckpt_path)


def train(args):
    """One training run as the options say (models/README.md, `train`): writes config.json,
    log.jsonl, best.pt, last.pt (and swa.pt) into args.out; returns the best PublicTest accuracy."""
    swa_epochs = _check_options(args)
    aug_opts = augment_options(getattr(args, "augment_without", None), getattr(args, "camera_augment", 0.0))
    device = _prepare(args)
    data = _load_data(args, device)
    kd = _distillation(args, data, device)
    model = build(args.arch).to(device)
    if getattr(args, "init", None):
        _initialise(args, model, data, device)
    opt = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9, nesterov=True,
                          weight_decay=args.weight_decay)
    run = _Run(model=model, opt=opt, gen=torch.Generator(device=device).manual_seed(args.seed), device=device,
               aug_opts=aug_opts, steps_per_epoch=(len(data.x) + args.batch - 1) // args.batch,
               ckpt_path=os.path.join(args.out, "last.pt"), log_path=os.path.join(args.out, "log.jsonl"))
    resuming = args.resume and os.path.exists(run.ckpt_path)
    if resuming:
        # The schedule's length is the one the run started with (a time budget may have chosen it).
        with open(os.path.join(args.out, "config.json")) as f:
            args.epochs = json.load(f)["epochs"]
    budget = getattr(args, "time_budget", 0)
    epoch_cap = args.epochs
    if budget and not resuming:
        _fit_time_budget(args, run, data, swa_epochs)
    swa_epochs = _schedule(args, run, swa_epochs)
    ck = _resume(run, device) if resuming else None
    if not resuming and os.path.exists(run.log_path):
        os.remove(run.log_path)
    _write_config(args, data, device, resuming)
    if resuming:
        _restore_global_rng(ck, device)

    t_start = time.time()
    epoch = run.start - 1
    while epoch + 1 < args.epochs:  # not a range: _retime may change args.epochs after the second epoch
        epoch += 1
        if budget and epoch > run.start and time.time() - t_start > 1.3 * budget:
            # The timing probe was too optimistic (the machine got busier): keep the time promise.
            print(f"time budget overrun: stopped after {epoch} of {args.epochs} epochs", flush=True)
            _log(run.log_path, {"stopped": epoch, "planned": args.epochs})
            break
        in_swa = epoch >= run.cycle_epochs
        if in_swa:
            for group in opt.param_groups:
                group["lr"] = args.swa_lr
        t0 = time.time()
        train_loss, train_acc = _train_epoch(args, run, data, kd, epoch, in_swa)
        acc = float((predict(model, data.x_test, data.mean, data.std, device=device).argmax(1) == data.y_test).mean())
        record = dict(epoch=epoch + 1, train_loss=train_loss, train_acc=train_acc, public_test_acc=acc,
                      lr=opt.param_groups[0]["lr"], seconds=time.time() - t0)
        if in_swa:
            record.update(_average_epoch(args, run, data, epoch))
        record["seconds"] = time.time() - t0
        _log(run.log_path, record)
        if budget and not resuming and epoch == 1 and not swa_epochs:
            run.sched = _retime(args, opt, run.sched, epoch + 1, time.time() - t_start, record["seconds"], budget,
                                epoch_cap, run.steps_per_epoch, run.log_path)
            run.cycle_epochs = args.epochs
        swa_note = f" average of {record['swa_n']}: {record['swa_public_test_acc']:.4f}" if in_swa else ""
        print(f"\repoch {epoch + 1}/{args.epochs} loss {train_loss:.3f} train {train_acc:.4f} "
              f"PublicTest {acc:.4f}{swa_note} ({record['seconds']:.1f} s)", flush=True)
        _save_checkpoints(args, run, data, epoch, acc, in_swa)
    print(f"best PublicTest accuracy {run.best:.4f}", flush=True)
    return run.best

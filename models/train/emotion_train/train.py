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


def augment_options(without):
    """--augment-without parts -> keyword arguments of augment()."""
    options = {}
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


def train(args):
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
    aug_opts = augment_options(getattr(args, "augment_without", None))
    device = pick_device(getattr(args, "device", "cpu"))
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    torch.set_num_threads(args.threads)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    os.makedirs(args.out, exist_ok=True)
    images, labels, usages = load_dataset(args.data, args.cache)
    tr = usages == "Training"
    te = usages == "PublicTest"
    if args.limit:
        idx = np.flatnonzero(tr)[:args.limit]
        tr = np.zeros_like(tr)
        tr[idx] = True
    xtr, ytr = images[tr], labels[tr]
    xte, yte = images[te], labels[te]
    if len(xtr) == 0 or len(xte) == 0:
        raise ValueError(f"{args.data}: training needs Training and PublicTest rows")
    targets = F.one_hot(torch.from_numpy(ytr), len(LABELS)).float()
    if args.ferplus:
        votes = torch.from_numpy(load_ferplus(args.ferplus, len(labels))[tr])
        has = votes.sum(1, keepdim=True) > 0
        targets = torch.where(has, (1 - args.ferplus_weight) * targets + args.ferplus_weight * votes, targets)
    targets = targets.to(device)
    ytr_t = torch.from_numpy(ytr).to(device)
    weight_mode = getattr(args, "class_weights", "none") or "none"
    sample_weight = class_weights(ytr, weight_mode).to(device) if weight_mode != "none" else None
    mean = float(xtr.mean() / 255.0)
    std = float(xtr.std() / 255.0)
    xtr_t = torch.from_numpy(xtr).to(device).float().unsqueeze(1) / 255.0

    temperature = getattr(args, "kd_temperature", 4.0)
    saved = getattr(args, "teacher_targets", None)
    alpha = getattr(args, "kd_alpha", 0.0) if getattr(args, "teacher", None) or saved else 0.0
    if alpha and saved:
        soft = load_teacher_targets(saved, len(xtr), device)
    else:
        soft = cached_teacher_log_probs(args.teacher, xtr, temperature, device, args.cache) if alpha else None
    model = build(args.arch).to(device)
    if getattr(args, "init", None):
        if args.init.endswith(".json"):
            # An exported model, e.g. the shipped default: rebuilt from its ONNX file.
            from .imported import from_exported
            ck = from_exported(args.init, args.arch, xtr)
            print(f"imported {args.init}: OpenCV DNN and the rebuilt network agree to "
                  f"{ck['imported']['parity']:.1e}", flush=True)
        else:
            ck = load_weights(args.init, device)
        if ck["arch"] != args.arch:
            raise ValueError(f"--init {args.init} holds {ck['arch']}, not {args.arch}")
        model.load_state_dict(ck["model"])
        # The weights expect the faces normalised as they were trained; on the same Training rows
        # that is what this run measured anyway.
        mean, std = float(ck["mean"]), float(ck["std"])
        print(f"initialised from {args.init} (epoch {ck['epoch']}, PublicTest {ck['public_test_acc']:.4f})",
              flush=True)
    opt = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9, nesterov=True,
                          weight_decay=args.weight_decay)
    steps_per_epoch = (len(xtr) + args.batch - 1) // args.batch
    gen = torch.Generator(device=device).manual_seed(args.seed)
    ckpt_path = os.path.join(args.out, "last.pt")
    log_path = os.path.join(args.out, "log.jsonl")
    resuming = args.resume and os.path.exists(ckpt_path)
    if resuming:
        # The schedule's length is the one the run started with (a time budget may have chosen it).
        with open(os.path.join(args.out, "config.json")) as f:
            args.epochs = json.load(f)["epochs"]
    budget = getattr(args, "time_budget", 0)
    epoch_cap = args.epochs
    if budget and not resuming:
        _barrier()
        # The one-cycle schedule needs its length up front: measure this machine, then fix the
        # number of epochs (recorded in config.json, so --epochs N repeats the run anywhere).
        per_epoch = _time_epochs(model, xtr_t, targets, args, aug_opts, mean, std, xte, device, steps_per_epoch)
        per_epoch = 1.05 * per_epoch + 0.1  # checkpoints, and a margin
        # An averaged epoch also recomputes BatchNorm over Training and scores the average.
        extra = _time_swa_extra(model, xtr_t, mean, std, aug_opts, args.augment, xte, device) if swa_epochs else 0.0
        args.epochs = max(1, min(args.epochs, epochs_within(budget, per_epoch, extra, swa_epochs)))
        note = f" (+{extra:.2f} s per averaged epoch)" if swa_epochs else ""
        print(f"time budget {budget:g} s at ~{per_epoch:.2f} s/epoch{note}: {args.epochs} epochs", flush=True)
    # The last swa_epochs epochs (all of them, at most) run at the constant --swa-lr and their
    # weights are averaged; the one-cycle schedule covers the epochs before them.
    swa_epochs = min(swa_epochs, args.epochs)
    cycle_epochs = args.epochs - swa_epochs
    sched = None
    if cycle_epochs:
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, epochs=cycle_epochs,
                                                    steps_per_epoch=steps_per_epoch, pct_start=0.2)
    # Stochastic weight averaging (Izmailov et al., 2018): the running mean of the weights at the
    # end of each averaged epoch (parameters only; BatchNorm is recomputed for it).
    swa = torch.optim.swa_utils.AveragedModel(model) if swa_epochs else None
    start, best = 0, 0.0
    if resuming:
        ck = load_checkpoint(ckpt_path, device)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        if sched is not None and ck.get("sched"):
            sched.load_state_dict(ck["sched"])
        if swa is not None and ck.get("swa"):
            swa.load_state_dict(ck["swa"])
        gen.set_state(ck["gen"].cpu())
        start, best = ck["epoch"] + 1, ck["best"]
        print(f"resumed at epoch {start}, best PublicTest {best:.4f}", flush=True)
    elif os.path.exists(log_path):
        os.remove(log_path)
    config = {k: v for k, v in vars(args).items() if k != "func"}
    config.update(mean=mean, std=std, macs=macs(build(args.arch)), n_train=int(len(xtr)), n_test=int(len(xte)),
                  device=str(device), torch=torch.__version__)
    if not resuming:
        with open(os.path.join(args.out, "config.json"), "w") as f:
            json.dump(config, f, indent=2)

    if resuming and ck.get("rng") is not None:
        # Dropout draws from the global generator. It is restored here, after everything above
        # that draws from it too (building networks initialises their weights), so that epoch
        # `start` sees the draws it would have seen in a run that was never interrupted.
        torch.set_rng_state(ck["rng"].cpu())
        if device.type == "cuda" and ck.get("cuda_rng") is not None:
            torch.cuda.set_rng_state(ck["cuda_rng"].cpu(), device)
    t_start = time.time()
    epoch = start - 1
    while epoch + 1 < args.epochs:  # not a range: _retime may change args.epochs after the second epoch
        epoch += 1
        if budget and epoch > start and time.time() - t_start > 1.3 * budget:
            # The timing probe was too optimistic (the machine got busier): keep the time promise.
            print(f"time budget overrun: stopped after {epoch} of {args.epochs} epochs", flush=True)
            _log(log_path, {"stopped": epoch, "planned": args.epochs})
            break
        in_swa = epoch >= cycle_epochs
        if in_swa:
            for group in opt.param_groups:
                group["lr"] = args.swa_lr
        model.train()
        t0 = time.time()
        perm = torch.randperm(len(xtr), generator=gen, device=device)
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), dtype=torch.long, device=device)
        seen = 0
        for step in range(steps_per_epoch):
            idx = perm[step * args.batch:(step + 1) * args.batch]
            x = augment(xtr_t[idx], gen, **aug_opts) if args.augment else xtr_t[idx]
            logits = model((x - mean) / std)
            if sample_weight is None:
                loss = F.cross_entropy(logits, targets[idx], label_smoothing=args.label_smoothing)
            else:
                # Rare classes weigh more; the weights average 1 over Training, not over the batch.
                loss = (F.cross_entropy(logits, targets[idx], label_smoothing=args.label_smoothing,
                                        reduction="none") * sample_weight[ytr_t[idx]]).mean()
            if alpha:
                # Hinton et al. (2015): KL to the tempered teacher distribution, scaled by T^2 so
                # its gradients keep their size whatever the temperature.
                kd = F.kl_div(F.log_softmax(logits / temperature, dim=1), soft[idx],
                              reduction="batchmean", log_target=True) * temperature ** 2
                loss = (1 - alpha) * loss + alpha * kd
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            if not in_swa:
                sched.step()
            loss_sum += loss.detach() * len(idx)
            correct += (logits.argmax(1) == ytr_t[idx]).sum()
            seen += len(idx)
            if args.progress and step % 20 == 0:
                print(f"\repoch {epoch + 1}/{args.epochs} step {step}/{steps_per_epoch} "
                      f"loss {loss_sum.item() / seen:.3f}", end="", flush=True)
        probs = predict(model, xte, mean, std, device=device)
        acc = float((probs.argmax(1) == yte).mean())
        train_loss = loss_sum.item() / seen
        if not math.isfinite(train_loss):
            raise ValueError(f"training diverged at epoch {epoch + 1} (loss {train_loss}); lower --lr")
        record = dict(epoch=epoch + 1, train_loss=train_loss, train_acc=correct.item() / seen,
                      public_test_acc=acc, lr=opt.param_groups[0]["lr"], seconds=time.time() - t0)
        cpu_state = lambda m=model: {k: v.detach().cpu() for k, v in m.state_dict().items()}
        if in_swa:
            swa.update_parameters(model)
            n_averaged = int(swa.n_averaged)
            averaged = recompute_batchnorm(swa.module, xtr_t, mean, std, aug_opts, args.augment)
            swa_acc = float((predict(averaged, xte, mean, std, device=device).argmax(1) == yte).mean())
            record.update(swa_n=n_averaged, swa_public_test_acc=swa_acc)
            # swa.pt: the average so far, BatchNorm recomputed; a best.pt-style file that export reads.
            torch.save({"arch": args.arch, "model": cpu_state(averaged), "mean": mean, "std": std,
                        "epoch": epoch + 1, "public_test_acc": swa_acc, "swa_n": n_averaged},
                       os.path.join(args.out, "swa.pt.tmp"))
            os.replace(os.path.join(args.out, "swa.pt.tmp"), os.path.join(args.out, "swa.pt"))
        record["seconds"] = time.time() - t0
        _log(log_path, record)
        if budget and not resuming and epoch == 1 and not swa_epochs:
            sched = _retime(args, opt, sched, epoch + 1, time.time() - t_start, record["seconds"], budget,
                            epoch_cap, steps_per_epoch, log_path)
            cycle_epochs = args.epochs
        swa_note = f" average of {record['swa_n']}: {record['swa_public_test_acc']:.4f}" if in_swa else ""
        print(f"\repoch {epoch + 1}/{args.epochs} loss {record['train_loss']:.3f} train {record['train_acc']:.4f} "
              f"PublicTest {acc:.4f}{swa_note} ({record['seconds']:.1f} s)", flush=True)
        if acc > best:
            best = acc
            torch.save({"arch": args.arch, "model": cpu_state(), "mean": mean, "std": std,
                        "epoch": epoch + 1, "public_test_acc": acc}, os.path.join(args.out, "best.pt"))
        # last.pt resumes the run (epoch counts from 0 here) and can be exported (load_weights).
        torch.save({"model": cpu_state(), "opt": opt.state_dict(),
                    "sched": sched.state_dict() if sched is not None else None,
                    "swa": cpu_state(swa) if in_swa else None,
                    "gen": gen.get_state(), "rng": torch.get_rng_state(),
                    "cuda_rng": torch.cuda.get_rng_state(device) if device.type == "cuda" else None,
                    "epoch": epoch, "best": best, "arch": args.arch, "mean": mean, "std": std,
                    "public_test_acc": acc}, ckpt_path + ".tmp")
        os.replace(ckpt_path + ".tmp", ckpt_path)
    print(f"best PublicTest accuracy {best:.4f}", flush=True)
    return best

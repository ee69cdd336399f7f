"""Training loop: fixed seeds, checkpoints every epoch (resume with --resume), a JSON-lines log,
one-cycle SGD, label smoothing, optional FER+ soft labels. Model selection uses PublicTest, as
FER2013's protocol intends; PrivateTest is never read here."""
import json
import os
import time

import numpy as np
import torch
import torch.nn.functional as F

from . import LABELS
from .arch import build, macs
from .augment import augment
from .data import load_cached, load_ferplus


def _log(path, record):
    with open(path, "a") as f:
        f.write(json.dumps(record) + "\n")


def predict(model, x, mean, std, batch=512, tta=False):
    """x uint8 [N,48,48] -> probabilities float [N,7]."""
    model.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(x), batch):
            t = (torch.from_numpy(x[i:i + batch]).float().unsqueeze(1) / 255.0 - mean) / std
            p = F.softmax(model(t), dim=1)
            if tta:
                p = (p + F.softmax(model(torch.flip(t, dims=[3])), dim=1)) / 2
            out.append(p.numpy())
    return np.concatenate(out)


def train(args):
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    torch.set_num_threads(args.threads)
    os.makedirs(args.out, exist_ok=True)
    images, labels, usages = load_cached(args.data, args.cache)
    tr = usages == "Training"
    te = usages == "PublicTest"
    if args.limit:
        idx = np.flatnonzero(tr)[:args.limit]
        tr = np.zeros_like(tr)
        tr[idx] = True
    xtr, ytr = images[tr], labels[tr]
    xte, yte = images[te], labels[te]
    targets = F.one_hot(torch.from_numpy(ytr), len(LABELS)).float()
    if args.ferplus:
        votes = torch.from_numpy(load_ferplus(args.ferplus, len(labels))[tr])
        has = votes.sum(1, keepdim=True) > 0
        targets = torch.where(has, (1 - args.ferplus_weight) * targets + args.ferplus_weight * votes, targets)
    mean = float(xtr.mean() / 255.0)
    std = float(xtr.std() / 255.0)
    xtr_t = torch.from_numpy(xtr).float().unsqueeze(1) / 255.0

    model = build(args.arch)
    if getattr(args, "init", None):
        ck = torch.load(args.init)
        if ck["arch"] != args.arch:
            raise ValueError(f"--init {args.init} holds {ck['arch']}, not {args.arch}")
        model.load_state_dict(ck["model"])
        print(f"initialised from {args.init} (epoch {ck['epoch']}, PublicTest {ck['public_test_acc']:.4f})",
              flush=True)
    opt = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=0.9, nesterov=True,
                          weight_decay=args.weight_decay)
    steps_per_epoch = (len(xtr) + args.batch - 1) // args.batch
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, epochs=args.epochs,
                                                steps_per_epoch=steps_per_epoch, pct_start=0.2)
    gen = torch.Generator().manual_seed(args.seed)
    start, best = 0, 0.0
    ckpt_path = os.path.join(args.out, "last.pt")
    log_path = os.path.join(args.out, "log.jsonl")
    if args.resume and os.path.exists(ckpt_path):
        ck = torch.load(ckpt_path)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        sched.load_state_dict(ck["sched"])
        gen.set_state(ck["gen"])
        start, best = ck["epoch"] + 1, ck["best"]
        print(f"resumed at epoch {start}, best PublicTest {best:.4f}", flush=True)
    elif os.path.exists(log_path):
        os.remove(log_path)
    config = {k: v for k, v in vars(args).items() if k != "func"}
    config.update(mean=mean, std=std, macs=macs(build(args.arch)), n_train=int(len(xtr)), n_test=int(len(xte)))
    with open(os.path.join(args.out, "config.json"), "w") as f:
        json.dump(config, f, indent=2)

    for epoch in range(start, args.epochs):
        model.train()
        t0 = time.time()
        perm = torch.randperm(len(xtr), generator=gen)
        loss_sum, correct, seen = 0.0, 0, 0
        for step in range(steps_per_epoch):
            idx = perm[step * args.batch:(step + 1) * args.batch]
            x = augment(xtr_t[idx], gen) if args.augment else xtr_t[idx]
            x = (x - mean) / std
            logits = model(x)
            loss = F.cross_entropy(logits, targets[idx], label_smoothing=args.label_smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            loss_sum += loss.item() * len(idx)
            correct += (logits.argmax(1) == torch.from_numpy(ytr)[idx]).sum().item()
            seen += len(idx)
            if args.progress and step % 20 == 0:
                print(f"\repoch {epoch + 1}/{args.epochs} step {step}/{steps_per_epoch} "
                      f"loss {loss_sum / seen:.3f}", end="", flush=True)
        probs = predict(model, xte, mean, std)
        acc = float((probs.argmax(1) == yte).mean())
        record = dict(epoch=epoch + 1, train_loss=loss_sum / seen, train_acc=correct / seen,
                      public_test_acc=acc, lr=sched.get_last_lr()[0], seconds=time.time() - t0)
        _log(log_path, record)
        print(f"\repoch {epoch + 1}/{args.epochs} loss {record['train_loss']:.3f} train {record['train_acc']:.4f} "
              f"PublicTest {acc:.4f} ({record['seconds']:.0f} s)", flush=True)
        if acc > best:
            best = acc
            torch.save({"arch": args.arch, "model": model.state_dict(), "mean": mean, "std": std,
                        "epoch": epoch + 1, "public_test_acc": acc}, os.path.join(args.out, "best.pt"))
        torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(),
                    "gen": gen.get_state(), "epoch": epoch, "best": best}, ckpt_path + ".tmp")
        os.replace(ckpt_path + ".tmp", ckpt_path)
    print(f"best PublicTest accuracy {best:.4f}", flush=True)
    return best

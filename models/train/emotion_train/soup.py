"""A weight average of several trained runs of one architecture (a "model soup", Wortsman et al.,
2022): networks fine-tuned from the same weights tend to stay in one basin of the loss, where the
mean of their weights is itself a good network, sometimes better than each of them, at the cost
of one. Unlike train --swa-epochs, which averages the epochs of one run, this averages the end
points of separate runs.

The mean of the weights does not come with the matching BatchNorm statistics (the mean of each
run's statistics is not the statistics of the mean network), so they are recomputed in one pass
over the Training faces, augmented as in training, with a fixed generator.

Writes a run folder: soup.pt (read by export like best.pt), config.json and log.jsonl."""
import json
import os

import torch

from .arch import build
from .data import load_dataset
from .export import training_cycles
from .train import augment_options, load_weights, predict, recompute_batchnorm


def average_weights(states):
    """state_dicts of one architecture -> their element-wise mean. Integer buffers (BatchNorm's
    batch counters) are not weights and are taken from the first."""
    keys = list(states[0])
    for i, s in enumerate(states[1:], 2):
        if list(s) != keys or any(s[k].shape != states[0][k].shape for k in keys):
            raise ValueError(f"ingredient {i} has other layers than ingredient 1")
    return {k: (sum(s[k] for s in states) / len(states)) if states[0][k].is_floating_point()
            else states[0][k].clone() for k in keys}


def provenance(path, ck, config):
    """Where one ingredient came from, as export records it: {checkpoint ("run/last.pt"), epochs,
    cycles (its --init chain, training_cycles)}. Kept in soup.pt, so that the export of a soup needs
    none of the ingredients' files."""
    cycles = training_cycles(path, config, ck)
    return {"checkpoint": os.path.join(os.path.basename(os.path.dirname(os.path.abspath(path))),
                                       os.path.basename(path)),
            "epochs": sum(c["epochs"] for c in cycles), "cycles": cycles}


def run_soup(args):
    paths = args.checkpoint
    if len(paths) < 2:
        raise ValueError("a soup needs at least two --checkpoint")
    torch.set_num_threads(args.threads)
    cks = []
    for p in paths:
        ck = load_weights(p)
        if ck.get("soup"):
            raise ValueError(f"{p}: already a soup; list its ingredients instead")
        cks.append(ck)
    first = cks[0]
    for p, ck in zip(paths[1:], cks[1:]):
        if ck["arch"] != first["arch"]:
            raise ValueError(f"{p} holds {ck['arch']}, {paths[0]} {first['arch']}: one architecture per soup")
        if (ck["mean"], ck["std"]) != (first["mean"], first["std"]):
            raise ValueError(f"{p} normalises faces with mean {ck['mean']}, std {ck['std']}; {paths[0]} with "
                             f"{first['mean']}, {first['std']}: the runs were trained on other data")
    configs = []
    for p in paths:
        try:
            with open(os.path.join(os.path.dirname(os.path.abspath(p)), "config.json")) as f:
                configs.append(json.load(f))
        except (OSError, ValueError) as e:
            raise ValueError(f"{p}: the run's config.json is needed: {e}") from None
    ingredients = [provenance(p, ck, c) for p, ck, c in zip(paths, cks, configs)]

    images, labels, usages = load_dataset(args.data, args.cache)
    tr, te = usages == "Training", usages == "PublicTest"
    if not tr.any() or not te.any():
        raise ValueError(f"{args.data}: a soup needs Training and PublicTest rows")
    mean, std = float(first["mean"]), float(first["std"])
    xte, yte = images[te], labels[te]

    def score(model):
        return float((predict(model, xte, mean, std).argmax(1) == yte).mean())

    model = build(first["arch"])
    for p, ck in zip(paths, cks):
        model.load_state_dict(ck["model"])
        print(f"ingredient {p}: PublicTest {score(model.eval()):.4f}", flush=True)
    model.load_state_dict(average_weights([ck["model"] for ck in cks]))
    kept = score(model.eval())
    xtr = torch.from_numpy(images[tr]).float().unsqueeze(1) / 255.0
    recompute_batchnorm(model, xtr, mean, std, augment_options(None), augmented=True, seed=args.seed)
    acc = score(model)
    print(f"soup of {len(paths)}: PublicTest {acc:.4f} (BatchNorm recomputed on {len(xtr)} augmented Training "
          f"faces; {kept:.4f} with the ingredients' statistics averaged)")

    os.makedirs(args.out, exist_ok=True)
    torch.save({"arch": first["arch"], "model": model.state_dict(), "mean": mean, "std": std,
                "epoch": max(int(ck["epoch"]) for ck in cks), "public_test_acc": acc, "soup": ingredients},
               os.path.join(args.out, "soup.pt"))
    config = {"command": "soup", "data": os.path.abspath(args.data), "arch": first["arch"], "out": args.out,
              "checkpoint": [os.path.abspath(p) for p in paths], "seed": args.seed, "threads": args.threads, "mean": mean, "std": std,
              "n_train": int(tr.sum()), "n_test": int(te.sum()),
              "ferplus": next((c["ferplus"] for c in configs if c.get("ferplus")), None),
              "torch": torch.__version__}
    with open(os.path.join(args.out, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    with open(os.path.join(args.out, "log.jsonl"), "w") as f:
        f.write(json.dumps({"soup": len(paths), "public_test_acc": acc, "public_test_acc_kept_bn": kept}) + "\n")
    print(f"wrote {os.path.join(args.out, 'soup.pt')}")
    return acc

"""emotion-model: train, evaluate and export the emotiond emotion CNN. See models/README.md.

Run as `python3 -m emotion_train COMMAND ...` (from models/train/, or with it on PYTHONPATH), as
`models/train/emotion-model COMMAND ...`, or as `emotion-model` once the package is installed."""
import argparse
import os
import sys


# The rows evaluate and compare read: a FER2013 split, or every row of the file ("all": a
# cross-dataset file such as CK+48, whatever its Usage column says).
USAGES = ("Training", "PublicTest", "PrivateTest", "all")
USAGE_HELP = "the rows of this Usage (default PublicTest), or all rows"


def _add_train(sub):
    """The train command (models/README.md, **train**)."""
    t = sub.add_parser("train", help="train one architecture on the Training rows")
    t.add_argument("--data", required=True, help="fer2013.csv or fer2013.csv.gz (Kaggle format)")
    t.add_argument("--arch", default="emonet-m")
    t.add_argument("--out", required=True, help="run folder: checkpoints, log.jsonl, config.json")
    t.add_argument("--epochs", type=int, default=30)
    t.add_argument("--batch", type=int, default=128)
    t.add_argument("--lr", type=float, default=0.1)
    t.add_argument("--weight-decay", type=float, default=5e-4)
    t.add_argument("--label-smoothing", type=float, default=0.1)
    t.add_argument("--no-augment", dest="augment", action="store_false")
    t.add_argument("--augment-without", action="append", choices=("affine", "flip", "jitter", "erase"),
                   help="switch one part of the augmentation off: affine (rotation, scale, shift), flip, "
                   "jitter (brightness, contrast) or erase; repeatable")
    t.add_argument("--camera-augment", type=float, default=0.0, metavar="P",
                   help="send this share of the faces through a camera's faults as well: uneven light, "
                        "blur, sensor noise, JPEG (default 0: none)")
    t.add_argument("--class-weights", choices=("none", "sqrt", "inverse"), default="none",
                   help="weigh each class's loss by (faces / class faces)^p: p 0.5 (sqrt) or 1 (inverse)")
    t.add_argument("--ferplus", help="fer2013new.csv: mix FER+ vote distributions into the targets")
    t.add_argument("--ferplus-weight", type=float, default=0.5)
    t.add_argument("--limit", type=int, default=0, help="use only the first N Training rows (smoke tests)")
    t.add_argument("--seed", type=int, default=1)
    t.add_argument("--threads", type=int, default=os.cpu_count())
    t.add_argument("--cache", default=os.path.expanduser("~/.cache/emotiond"), help="parsed-CSV cache folder ('' for none)")
    t.add_argument("--resume", action="store_true")
    t.add_argument("--init", help="start from the weights of this best.pt or last.pt, or of an exported "
                                  "model's .json (e.g. ../emonet-xs.json), same --arch, with a fresh schedule")
    t.add_argument("--progress", action="store_true", default=sys.stdout.isatty())
    t.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                   help="where to train (auto: a CUDA GPU if PyTorch sees one)")
    t.add_argument("--time-budget", type=float, default=0,
                   help="seconds: time a few steps, then train as many epochs as fit (at most --epochs); "
                   "the count is recorded in config.json")
    t.add_argument("--teacher", action="append", help="a trained model's best.pt, or an exported model's "
                   ".json (e.g. models/emonet-s.json): distil the average of these teachers into this one "
                   "(repeatable)")
    t.add_argument("--teacher-targets", help="distil from saved targets instead of --teacher: a teacher-*.npy "
                   "from train's cache or a campaign bundle (log-probabilities at --kd-temperature, one row per "
                   "Training face)")
    t.add_argument("--kd-alpha", type=float, default=0.7, help="weight of the distillation loss (with --teacher)")
    t.add_argument("--kd-temperature", type=float, default=4.0, help="softmax temperature of distillation")
    t.add_argument("--swa-epochs", type=int, default=0,
                   help="stochastic weight averaging: train the last N epochs at the constant --swa-lr and "
                   "average their weights into swa.pt (BatchNorm recomputed), which export reads like best.pt")
    t.add_argument("--swa-lr", type=float, help="learning rate of the averaged epochs (default: --lr / 10)")


def _data_args(s):
    s.add_argument("--data", required=True, help="fer2013.csv or fer2013.csv.gz (Kaggle format)")
    s.add_argument("--cache", default=os.path.expanduser("~/.cache/emotiond"),
                   help="parsed-CSV cache folder ('' for none)")
    s.add_argument("--threads", type=int, default=os.cpu_count())


def _add_data_commands(sub):
    """pack, export, soup, calibrate-framing, evaluate and compare: the commands that read FER2013."""
    k = sub.add_parser("pack", help="parse, check and compress the data set into one .npz.xz file, "
                       "e.g. to carry it to a training machine")
    k.add_argument("--data", required=True, help="fer2013.csv or fer2013.csv.gz (Kaggle format)")
    k.add_argument("--ferplus", help="fer2013new.csv: store the FER+ votes too")
    k.add_argument("--out", required=True, help="NAME.npz.xz")
    k.add_argument("--cache", default=os.path.expanduser("~/.cache/emotiond"), help="parsed-CSV cache folder ('' for none)")

    e = sub.add_parser("export", help="checkpoint -> NAME.onnx + NAME.json, checked in OpenCV DNN")
    e.add_argument("--checkpoint", required=True,
                   help="best.pt (best epoch), last.pt (last epoch) or swa.pt (weight average, train "
                        "--swa-epochs) of a training run, with its config.json and log.jsonl beside it, or "
                        "the soup.pt of emotion-model soup")
    e.add_argument("--out-dir", required=True)
    e.add_argument("--name", required=True, help="file stem and model name, e.g. emonet-s-1")
    e.add_argument("--framing-json", help="output of calibrate-framing (default: the measured YuNet framing)")
    e.add_argument("--tta", choices=("none", "hflip"), default="none",
                   help="test-time augmentation the daemon should apply (hflip: average with the mirror image)")
    _data_args(e)

    u = sub.add_parser("soup", help="average the weights of several runs of one architecture (BatchNorm "
                       "recomputed) into soup.pt, which export reads like best.pt")
    u.add_argument("--checkpoint", action="append", default=[], required=True,
                   help="best.pt, last.pt or swa.pt of a run, with its config.json beside it (repeat; at least two)")
    u.add_argument("--out", required=True, help="folder for soup.pt, config.json and log.jsonl")
    u.add_argument("--seed", type=int, default=0, help="seed of the augmentation in the BatchNorm pass")
    _data_args(u)

    c = sub.add_parser("calibrate-framing", help="measure how a YuNet box maps to the FER2013 48x48 frame")
    c.add_argument("--detector", required=True, help="YuNet ONNX (face_detection_yunet_2022mar.onnx for OpenCV 4.6)")
    c.add_argument("--n", type=int, default=2000, help="faces to try (random Training and PublicTest rows)")
    c.add_argument("--side", type=int, default=192, help="pixels the 48x48 face is enlarged to")
    c.add_argument("--pad", type=float, default=1.0, help="replicated border on each side, in face sides")
    c.add_argument("--score-threshold", type=float, default=0.9)
    c.add_argument("--seed", type=int, default=1)
    c.add_argument("--out", required=True, help="framing JSON for export --framing-json")
    _data_args(c)

    v = sub.add_parser("evaluate", help="accuracy, per-class scores and confusion of an exported model")
    v.add_argument("--model", required=True, help="NAME.json written by export")
    v.add_argument("--usage", default="PublicTest", choices=USAGES, help=USAGE_HELP)
    v.add_argument("--name", help="what to call the faces in the output and figures (default: the --usage "
                   "value), e.g. CK+48 for a cross-dataset file")
    v.add_argument("--tta", choices=("none", "hflip"), help="override the metadata's tta")
    v.add_argument("--json", help="write the metrics here")
    v.add_argument("--figures", help="write PNG figures into this folder")
    v.add_argument("--log", action="append", help="log.jsonl of the training run, for the training-curve "
                   "figure; repeat it, oldest first, for runs that continue each other with train --init")
    _data_args(v)

    q = sub.add_parser("prior", help="set an exported model's prior correction: its probabilities divided by "
                       "the Training rows' class shares to a power, so that FER2013's rare classes "
                       "(disgust: 1.5 %%) are not ruled out by their rarity")
    q.add_argument("--model", required=True, help="NAME.json written by export")
    q.add_argument("--power", type=float, required=True, help="0 (none) to 2; 0.5 divides by the square root")
    q.add_argument("--out", help="write a copy here, next to the ONNX file, named after the file (default: "
                   "the --model file itself)")
    _data_args(q)

    m = sub.add_parser("compare", help="two or more exported models on the same faces: accuracy "
                       "difference, its 95 %% interval and an exact McNemar test against the first")
    m.add_argument("--model", action="append", default=[], required=True,
                   help="NAME.json written by export; the first is the baseline (repeat)")
    m.add_argument("--usage", default="PublicTest", choices=USAGES, help=USAGE_HELP)
    m.add_argument("--name", help="what to call the faces in the output (default: the --usage value)")
    m.add_argument("--tta", choices=("none", "hflip"), help="override every model's metadata tta")
    m.add_argument("--json", help="write the comparison here")
    _data_args(m)


def _add_bench_commands(sub):
    """bench and frontier: latency, and the accuracy/latency plot."""
    b = sub.add_parser("bench", help="OpenCV DNN milliseconds per face, batch 1")
    b.add_argument("--onnx", action="append", default=[], help="model file (repeatable)")
    b.add_argument("--arch", action="append", default=[], help="architecture of emotion_train/arch.py, untrained (repeatable)")
    b.add_argument("--threads", type=int, default=1)
    b.add_argument("--runs", type=int, default=300)
    b.add_argument("--warmup", type=int, default=50)
    b.add_argument("--json", help="write the measurements here")

    f = sub.add_parser("frontier", help="plot PublicTest accuracy against ms/face")
    f.add_argument("--points", required=True, help="JSON list of {name, accuracy, ms_per_face, macs, note}")
    f.add_argument("--out", required=True, help="PNG file")
    f.add_argument("--budget-ms", type=float, help="draw the latency budget as a vertical line")


def _run(args):
    """Runs the chosen command; bad input is reported in one line and exit status 1."""
    try:
        if args.command == "train":
            from .train import train
            train(args)
        elif args.command == "pack":
            from .data import write_pack
            n = write_pack(args.data, args.out, args.ferplus, args.cache)
            print(f"{args.out}: {n} rows, {os.path.getsize(args.out) / 1e6:.1f} MB")
        elif args.command == "export":
            from .export import run_export
            run_export(args)
        elif args.command == "soup":
            from .soup import run_soup
            run_soup(args)
        elif args.command == "calibrate-framing":
            from .framing import run_calibrate
            run_calibrate(args)
        elif args.command == "evaluate":
            from .evaluate import run_evaluate
            run_evaluate(args)
        elif args.command == "prior":
            from .evaluate import run_prior
            run_prior(args)
        elif args.command == "compare":
            from .evaluate import run_compare
            run_compare(args)
        elif args.command == "bench":
            from .bench import run_bench
            run_bench(args)
        elif args.command == "frontier":
            from .bench import run_frontier
            run_frontier(args)
    except Exception as e:  # noqa: BLE001 - a CLI reports, it does not dump a traceback for bad input
        import cv2
        # The package's DataError and ModelError are ValueErrors; cv2.error is OpenCV rejecting a file.
        if isinstance(e, (ValueError, OSError, cv2.error)):
            print(f"emotion-model: {e}", file=sys.stderr)
            return 1
        raise
    return 0


def main():
    p = argparse.ArgumentParser(prog="emotion-model", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    _add_train(sub)
    _add_data_commands(sub)
    _add_bench_commands(sub)
    return _run(p.parse_args())


if __name__ == "__main__":
    sys.exit(main())

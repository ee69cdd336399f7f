"""Tests of the emotion-model tooling (the emotion_train package in models/train). Run from the
repository root with the interpreter that has torch and OpenCV, the package on the module path:

    PYTHONPATH=models/train /usr/bin/python3 -m unittest discover -s tests/model -t .

(ctest does the same: tests/CMakeLists.txt sets PYTHONPATH.)

Real data and the face detector are found through EMO_FER2013 and EMO_YUNET, else in the
shared folder next to the checkout; tests that need them skip, saying so, when they are absent."""
import gzip
import os
import subprocess
import sys

try:
    import emotion_train
except ImportError as e:
    raise ImportError(f"{e}: put models/train on PYTHONPATH (see tests/model/__init__.py)") from None

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TRAIN_DIR = os.path.join(REPO, "models", "train")
# The command line as the README runs it; the child finds the package through the same PYTHONPATH.
CLI = emotion_train.cli_command()


def _resource(env, relative):
    path = os.environ.get(env) or os.path.join(REPO, "..", "shared", relative)
    return path if os.path.exists(path) else None


def fer2013_path():
    return _resource("EMO_FER2013", os.path.join("data", "fer2013", "fer2013.csv.gz"))


def yunet_path():
    return _resource("EMO_YUNET", os.path.join("models", "face", "face_detection_yunet_2022mar.onnx"))


def write_subset(src, dst, n_train=300, n_test=250):
    """Copy the header and the first n_train Training and n_test PublicTest rows of a FER2013 CSV
    into a gzip file: real faces, but small enough for a training, export and evaluation in seconds."""
    want = {"Training": n_train, "PublicTest": n_test}
    with gzip.open(src, "rt", newline="") as fin, gzip.open(dst, "wt", newline="") as fout:
        fout.write(fin.readline())
        for line in fin:
            usage = line.rstrip("\r\n").rsplit(",", 1)[-1]
            if want.get(usage, 0) > 0:
                fout.write(line)
                want[usage] -= 1
                if not any(want.values()):
                    break
    if any(want.values()):
        raise RuntimeError(f"{src}: not enough rows for the subset ({want} missing)")


def run_cli(args, timeout=300):
    """emotion-model ARGS as a subprocess, its output captured as text."""
    return subprocess.run(CLI + args, capture_output=True, text=True, timeout=timeout)

"""Training, evaluation and export of the emotiond emotion CNN (FER2013, 7 classes).

The command line is `python3 -m emotion_train` (cli.py); campaign.py and ablation.py are run as
`python3 -m emotion_train.campaign` and `python3 -m emotion_train.ablation`. See models/README.md."""
import sys

LABELS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
IMAGE_SIZE = 48


def cli_command():
    """The command line that runs this package's CLI in a child process with this interpreter.
    The child finds the package as this process did (the working folder, PYTHONPATH or an install)."""
    return [sys.executable, "-m", __name__]

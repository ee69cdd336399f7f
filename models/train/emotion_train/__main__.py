"""`python3 -m emotion_train COMMAND ...`: the emotion-model command line (cli.py)."""
import sys

from .cli import main

sys.exit(main())

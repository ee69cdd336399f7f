"""Training, evaluation and export of the emotiond emotion CNN (FER2013, 7 classes)."""

LABELS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
IMAGE_SIZE = 48

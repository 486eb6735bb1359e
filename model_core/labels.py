"""Label names and schemes (lower-case English everywhere; ARCHITECTURE.md contract 4)."""

from __future__ import annotations

# FER-2013 label order (the CSV's integer labels index this list).
FER2013_CLASSES = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
# FER+ label order: the first eight vote columns of fer2013new.csv, renamed to the FER-2013 names.
FERPLUS_CLASSES = ["neutral", "happy", "surprise", "sad", "angry", "disgust", "fear", "contempt"]
SCHEMES = {"fer2013": FER2013_CLASSES, "ferplus": FERPLUS_CLASSES}
# What a calm face must not be called: the calm-face rate counts these (training/heads.py, benchmarks/calm.py).
NEGATIVE_LABELS = ("angry", "sad", "fear", "disgust", "contempt")
# Every label any scheme uses, in the canonical order the page shows them in (FER-2013's, then contempt).
LABELS = (*FER2013_CLASSES, "contempt")

# The test splits a card may report metrics on, in the order the page prefers them.
SPLITS = ("fer2013_private", "fer2013_public", "ferplus_test", "ferplus_val")
SPLIT_KEYS = {  # (label scheme, Kaggle split name) -> the card's metrics key
    ("fer2013", "PublicTest"): "fer2013_public",
    ("fer2013", "PrivateTest"): "fer2013_private",
    ("ferplus", "PublicTest"): "ferplus_val",
    ("ferplus", "PrivateTest"): "ferplus_test",
}
DATASETS = {
    "fer2013": "FER-2013 (7 classes, original labels)",
    "ferplus": "FER+ (8 classes, majority vote of 10 annotators; FER-2013 images)",
}


def metrics_key(scheme: str, split: str) -> str:
    """The card's metrics key for a label scheme's Kaggle split ("PrivateTest" -> "fer2013_private")."""
    return SPLIT_KEYS[(scheme, split)]

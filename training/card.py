"""Writing model cards (DESIGN.md contract 2). The app reads them with app/model_card.py."""
from __future__ import annotations

import json
import os
from pathlib import Path

SPLIT_KEYS = {  # (label scheme, split) -> the card's metrics key
    ("fer2013", "PublicTest"): "fer2013_public",
    ("fer2013", "PrivateTest"): "fer2013_private",
    ("ferplus", "PublicTest"): "ferplus_val",
    ("ferplus", "PrivateTest"): "ferplus_test",
}
DATASETS = {"fer2013": "FER-2013 (7 classes, original labels)",
            "ferplus": "FER+ (8 classes, majority vote of 10 annotators; FER-2013 images)"}


def metrics_key(scheme: str, split: str) -> str:
    return SPLIT_KEYS[(scheme, split)]


def write_card(path: str | Path, card: dict) -> Path:
    """Write atomically, so a server reading `models/` never sees half a card."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(card, indent=2, sort_keys=False) + "\n")
    os.replace(tmp, path)
    return path


def read_card(path: str | Path) -> dict:
    return json.loads(Path(path).read_text())

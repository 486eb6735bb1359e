"""What the cheap ingredients are worth on the validation split (FER-2013 PublicTest / FER+ val).

Measured here without retraining: test-time flip averaging, and ensembling (equal vs tuned weights,
across label schemes). Ingredients that need a training run each (augmentation, balancing, cleaning,
soft labels) are listed with what was measured, if anything, in docs/benchmarks/NOTES.md.
"""
from __future__ import annotations

import numpy as np

from .common import REPO


def run(args) -> dict:
    import keras
    from training.card import read_card
    from training.data import SCHEMES
    from training.ensemble import tune_weights
    from training.metrics import classification_metrics
    from training.preprocess import combine_members
    from training.train import TrainConfig, load_splits, predict_probs

    models_dir = REPO / "models"
    cards = [read_card(p) for p in sorted(models_dir.glob("*.json"))]
    singles = [c for c in cards if c.get("kind", "single") == "single"]
    rows, val_probs = [], {}
    splits = {}
    for scheme in sorted({c["label_scheme"] for c in cards}):
        splits[scheme], _, _ = load_splits(TrainConfig(name="ablation", scheme=scheme))
    for card in singles:
        val = splits[card["label_scheme"]]["PublicTest"]
        model = keras.models.load_model(models_dir / card["file"], compile=False)
        for tta in ([], ["flip"]):
            p = predict_probs(model, val.images, card["input"], tta)
            acc = classification_metrics(val.labels, p.argmax(1), card["classes"])
            rows.append({"what": f"{card['name']}: TTA {'flip' if tta else 'none'}",
                         "split": f"{card['label_scheme']} PublicTest", "accuracy": acc["accuracy"],
                         "macro_f1": acc["macro_f1"]})
            val_probs[(card["name"], tuple(tta))] = p
    # ensembles on the FER-2013 scheme: every single model votes (FER+ members mapped by label name)
    if "fer2013" in splits and len(singles) > 1:
        classes = SCHEMES["fer2013"]
        val = splits["fer2013"]["PublicTest"]
        # a FER+ model's validation probabilities on the FER-2013 rows
        probs, names = [], []
        for card in singles:
            if card["label_scheme"] == "fer2013":
                probs.append(val_probs[(card["name"], tuple(card.get("tta", [])))])
            else:
                model = keras.models.load_model(models_dir / card["file"], compile=False)
                probs.append(predict_probs(model, val.images, card["input"], card.get("tta", [])))
            names.append(card["name"])
        member_classes = [c["classes"] for c in singles]
        for label, w in (("equal weights", np.ones(len(probs)) / len(probs)),
                         ("weights tuned on PublicTest", tune_weights(probs, member_classes, classes, val.labels)[0])):
            p = combine_members(probs, member_classes, w, classes)
            m = classification_metrics(val.labels, p.argmax(1), classes)
            rows.append({"what": f"ensemble {' + '.join(names)}, {label} {np.round(w, 2).tolist()}",
                         "split": "fer2013 PublicTest", "accuracy": m["accuracy"], "macro_f1": m["macro_f1"]})
    return {"rows": rows}


def markdown(res: dict) -> str:
    lines = ["| configuration | split | accuracy | macro-F1 |", "|---|---|---|---|"]
    for r in res["rows"]:
        lines.append(f"| {r['what']} | {r['split']} | {r['accuracy'] * 100:.2f}% | {r['macro_f1']:.3f} |")
    lines.append("")
    lines.append("Tuned weights are fitted on PublicTest itself, so their row is optimistic for PublicTest; "
                 "the honest number is the ensemble's PrivateTest accuracy in the accuracy table.")
    return "\n".join(lines)

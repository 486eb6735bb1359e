"""The model people meet: every shipped card on the FER+ test faces (the 10-annotator majority), with
the calm-face rate, per-class recall, calibration and how often the assistant hedges.

- **calm-face rate**: of the FER+ test faces that at least 7 of 10 annotators called neutral, the share
  a model calls angry, sad, fear, disgust or contempt (`training.heads.calm_face_rate`).
- **FER+ accuracy / recall** for a FER-2013 model: its 7 labels against the FER+ majority on the faces
  whose majority is one of them (contempt faces are left out for it).
- **ECE** (expected calibration error, 15 bins) on the card's own test split, as served.
- **hedged**: the share of its own test faces whose scores fail the card's confidence rule, and the
  accuracy on the faces it answers without hedging.
- **LFW**: real photos of other people, outside FER: the 100 face crops of Labeled Faces in the Wild
  that scikit-image ships (`skimage.data.lfw_subset()`, 25x25 grey, mostly public figures at public
  events: calm or smiling). No labels: the share a model calls negative (angry, sad, fear, disgust,
  contempt) says how often it would tell such a person they look upset.
"""

from __future__ import annotations

import numpy as np

from .common import REPO


def run(args) -> dict:
    from model_core.card import load_card, read_card
    from training.data import load_splits
    from training.evaluate import card_probs
    from training.heads import NEGATIVE, calm_face_rate, expected_calibration_error, load_ferplus
    from training.metrics import classification_metrics

    models_dir = REPO / "models"
    ferplus = load_ferplus()
    test = ferplus["PrivateTest"]
    fer_test = load_splits(scheme="fer2013")[0]["PrivateTest"]
    fp_classes = ["neutral", "happy", "surprise", "sad", "angry", "disgust", "fear", "contempt"]
    lfw = lfw_faces()
    rows, cache_fp, cache_fer = [], {}, {}
    for path in sorted(models_dir.glob("*.json")):
        raw = read_card(path)
        card = load_card(path)
        probs = card_probs(raw, test.images, models_dir, cache_fp)
        pred = np.array([fp_classes.index(card.classes[i]) for i in probs.argmax(1)])
        known = np.isin(test.labels, [fp_classes.index(c) for c in card.classes])
        m = classification_metrics(test.labels[known], pred[known], fp_classes)
        own_images, own_labels = (
            (test.images, test.labels) if card.label_scheme == "ferplus" else (fer_test.images, fer_test.labels)
        )
        own = probs if card.label_scheme == "ferplus" else card_probs(raw, own_images, models_dir, cache_fer)
        sure = np.array([card.confident(p) for p in own])
        lfw_pred = [card.classes[i] for i in card_probs(raw, lfw, models_dir).argmax(1)]
        right = own.argmax(1) == own_labels
        rows.append(
            {
                "model": card.name,
                "scheme": card.label_scheme,
                "default": card.default,
                "ferplus_test_accuracy": round(m["accuracy"], 4),
                "faces": int(known.sum()),
                "macro_f1": round(float(np.mean([m["per_class"][c]["f1"] for c in card.classes])), 4),
                "calm_face_rate": round(calm_face_rate(pred, test.strong_neutral, fp_classes), 4),
                "strong_neutral_faces": int(test.strong_neutral.sum()),
                "recall": {c: round(m["per_class"][c]["recall"], 3) for c in fp_classes if c in card.classes},
                "ece_own_test": round(expected_calibration_error(own, own_labels), 4),
                "hedged_share": round(float(1 - sure.mean()), 4),
                "accuracy_when_sure": round(float(right[sure].mean()) if sure.any() else 0.0, 4),
                "has_rule": bool(card.confidence),
                "lfw_negative_rate": round(float(np.mean([c in NEGATIVE for c in lfw_pred])), 3),
                "lfw_happy_or_neutral": round(float(np.mean([c in ("happy", "neutral") for c in lfw_pred])), 3),
            }
        )
    _record_in_cards(rows, models_dir)
    return {"rows": rows, "split": "ferplus_test (FER-2013 PrivateTest rows, FER+ majority vote)"}


def _record_in_cards(rows, models_dir) -> None:
    """Every card carries its calm-face rate on FER+ test (issue 15): FER+ cards beside their FER+ test
    metrics; FER-2013 cards as a `ferplus_test` entry scored on the faces whose FER+ majority is one of
    their labels."""
    from model_core.card import read_card, write_card

    for r in rows:
        path = models_dir / f"{r['model']}.json"
        card = read_card(path)
        entry = card.setdefault("metrics", {}).setdefault("ferplus_test", {})
        if r["scheme"] != "ferplus":
            entry.update(
                accuracy=r["ferplus_test_accuracy"],
                macro_f1=r["macro_f1"],
                samples=r["faces"],
                per_class={c: {"recall": v} for c, v in r["recall"].items()},
                note="the model's 7 labels against the FER+ majority; contempt faces left out",
            )
        entry.update(calm_face_rate=r["calm_face_rate"], strong_neutral_faces=r["strong_neutral_faces"])
        write_card(path, card)


def lfw_faces() -> np.ndarray:
    """The 100 LFW face crops scikit-image ships, as uint8 (the other 100 of its subset are not faces)."""
    from skimage import data

    return np.clip(np.rint(data.lfw_subset()[:100] * 255), 0, 255).astype(np.uint8)


def markdown(res: dict) -> str:
    lines = [
        "All on FER+ test (FER-2013 PrivateTest rows, majority of 10 annotators); FER-2013 models are "
        "scored on the faces whose FER+ majority is one of their 7 labels. ECE and hedging are on each "
        "card's own test split (FER-2013 PrivateTest for FER-2013 models).",
        "",
        "| model | FER+ test acc | macro-F1 | **calm-face rate** | fear | disgust | contempt | sad | angry | "
        "ECE | hedged | acc. when sure | LFW: negative / happy+neutral |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in res["rows"]:
        rec = r["recall"]
        cell = lambda c, rec=rec: f"{rec[c]:.2f}" if c in rec else "-"  # noqa: E731
        name = f"**{r['model']}** (default)" if r["default"] else r["model"]
        hedge = f"{r['hedged_share']:.0%} | {r['accuracy_when_sure']:.1%}" if r["has_rule"] else "no rule | -"
        lines.append(
            f"| {name} | {r['ferplus_test_accuracy']:.2%} | {r['macro_f1']:.3f} | "
            f"**{r['calm_face_rate']:.1%}** of {r['strong_neutral_faces']} | {cell('fear')} | "
            f"{cell('disgust')} | {cell('contempt')} | {cell('sad')} | {cell('angry')} | "
            f"{r['ece_own_test']:.1%} | {hedge} | {r['lfw_negative_rate']:.0%} / "
            f"{r['lfw_happy_or_neutral']:.0%} |"
        )
    return "\n".join(lines)

"""Who could join the FER+ model in an ensemble (issue 15, item 3): measured on FER+ val only, the split
that selects; no test number is computed here.

The reference is the best FER+ single on val as it serves (`ferplus_mobilenet`, with its mirror). The
candidates are the members that cost no GPU:

- every other shipped FER+ card, as it serves;
- each FaceRes backbone fine-tuned on FER-2013's single labels, with a FER+ head (8 classes, the vote
  distribution) fitted on its fixed features of the FER+ training faces (`training.heads.fit_head`):
  a network that has seen both label sets, made in a minute;
- cards named with `--member-cards` (e.g. a CPU run shipped into a scratch folder).

For each: its val accuracy alone, how often its label differs from the reference's, and the best
probability average with the reference over the weights 0, 0.05, ..., 1 (val accuracy, then
log-likelihood: `training.ensemble.tune_weights`, the search `training ensemble` runs).
A candidate earns a place only if that average beats the reference alone."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .common import REPO

REFERENCE = "ferplus_mobilenet"
STEPS = 20  # weights 0, 0.05, ..., 1


def fer2013_backbone_probs(card, splits, cache_dir: Path, log=print) -> np.ndarray:
    """FER+ val probabilities of a FER-2013 MobileNet's backbone with a FER+ head fitted on its features
    of the FER+ training faces (every view a row), averaged over the card's views."""
    from training import heads

    feats = {
        k: heads.cached_features(card, k, splits[k].images, cache_dir, log=log) for k in ("Training", "PublicTest")
    }
    train = splits["Training"]
    x, y, _ = heads._rows(feats["Training"], train.soft, train.labels)
    n_classes = train.soft.shape[1]
    w, b = heads.fit_head(x, y, np.zeros((x.shape[1], n_classes)), np.zeros(n_classes), steps=1000, l2=1e-3)
    return heads.head_probs(feats["PublicTest"], w, b)


def best_pair(ref: np.ndarray, other: np.ndarray, labels: np.ndarray, classes=None) -> dict:
    """The weight on `other` (0 = the reference alone) with the best val accuracy, ties by log-likelihood
    (`training.ensemble.tune_weights`, the search `training ensemble` runs, with leaving out allowed), and
    the pair's predictions at that weight."""
    from model_core.preprocess import combine_members
    from training.ensemble import tune_weights

    classes = list(classes) if classes is not None else list(range(ref.shape[1]))
    w, acc = tune_weights([ref, other], [classes, classes], classes, labels, steps=STEPS, allow_zero=True)
    pred = combine_members([ref, other], [classes, classes], w, classes).argmax(1)
    return {"weight": round(float(w[1]), 2), "accuracy": acc, "pred": pred}


def run(args) -> dict:
    from model_core.card import load_card, read_card
    from training.evaluate import card_probs
    from training.heads import load_ferplus
    from training.metrics import classification_metrics

    models_dir = REPO / "models"
    splits = load_ferplus()
    val = splits["PublicTest"]
    ref_card = read_card(models_dir / f"{REFERENCE}.json")
    classes = ref_card["classes"]
    cache = {}
    ref = card_probs(ref_card, val.images, models_dir, cache)
    extra = [Path(p) for p in (getattr(args, "member_cards", None) or [])]
    paths = sorted(models_dir.glob("*.json")) + extra
    rows = []
    for path in paths:
        raw, card = read_card(path), load_card(path)
        if raw["name"] == REFERENCE or card.kind != "single":
            continue
        if card.label_scheme == "ferplus":
            same = raw.get("recipe", {}).get("head", {}).get("from") == REFERENCE
            how = "as served" + ("; the reference's own backbone with another last layer" if same else "")
            if path in extra:
                how += " (a candidate from `--member-cards`, not in models/; its run is in finetune_runs.json)"
            probs = card_probs(raw, val.images, path.parent, cache)
        elif raw.get("recipe", {}).get("arch", "").startswith("mobilenet"):
            how = "FER-2013 backbone, FER+ head on its features"
            probs = fer2013_backbone_probs(card, splits, REPO / "cache" / "features")
        else:
            continue
        pair = best_pair(ref, probs, val.labels, classes)
        pair["macro_f1"] = classification_metrics(val.labels, pair.pop("pred"), classes)["macro_f1"]
        rows.append(
            {
                "member": raw["name"],
                "how": how,
                "input": card.input["size"],
                "tta": list(card.tta),
                "val_accuracy": float((probs.argmax(1) == val.labels).mean()),
                "disagreement": float((probs.argmax(1) != ref.argmax(1)).mean()),
                "pair": pair,
            }
        )
        print(
            f"[members] {raw['name']}: val {rows[-1]['val_accuracy']:.4f}, best weight {pair['weight']} "
            f"-> {pair['accuracy']:.4f}",
            flush=True,
        )
    ref_m = classification_metrics(val.labels, ref.argmax(1), classes)
    return {
        "reference": REFERENCE,
        "reference_val_accuracy": ref_m["accuracy"],
        "reference_val_macro_f1": ref_m["macro_f1"],
        "split": "ferplus_val",
        "rows": rows,
    }


def markdown(res: dict) -> str:
    lines = [
        f"Reference: `{res['reference']}` as served, FER+ val accuracy {res['reference_val_accuracy']:.2%}, "
        f"macro-F1 {res['reference_val_macro_f1']:.3f}. Every number is FER+ val (the selecting split); a "
        "weight of 0 means the member only lowers val accuracy when averaged in.",
        "",
        "| candidate | how | px | val acc alone | labels unlike the reference | best weight | val acc of the pair | "
        "gain | val macro-F1 of the pair |",
        "|" + "---|" * 9,
    ]
    for r in res["rows"]:
        p = r["pair"]
        lines.append(
            f"| `{r['member']}` | {r['how']} | {r['input']} | {r['val_accuracy']:.2%} | "
            f"{r['disagreement']:.1%} | {p['weight']:.2f} | {p['accuracy']:.2%} | "
            f"{p['accuracy'] - res['reference_val_accuracy']:+.2%} | {p['macro_f1']:.3f} |"
        )
    return "\n".join(lines)

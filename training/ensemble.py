"""Ensembles: a card that lists member models and weights (docs/ARCHITECTURE.md, contract 2).

Weights are equal (as in the reference report) or tuned on the validation split (PublicTest) by a
coarse search over the weight simplex that maximises validation accuracy, ties broken by
log-likelihood. The test split is evaluated once, with the chosen weights.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np

from model_core.card import read_card, write_card
from model_core.preprocess import combine_members

from .cards import ensemble_card
from .data import load_splits
from .evaluate import card_probs, measure


def weight_grid(n: int, steps: int = 10, allow_zero: bool = False):
    """All weight vectors on the simplex with resolution 1/steps (each member weight > 0, or >= 0 with
    `allow_zero`: then leaving a member out is one of the choices)."""
    for combo in itertools.product(range(0 if allow_zero else 1, steps + 1), repeat=n):
        if sum(combo) == steps:
            yield np.array(combo, np.float64) / steps


def tune_weights(member_probs, member_classes, classes, labels, steps: int = 10, allow_zero: bool = False):
    """The weights with the best accuracy on `labels`, ties broken by log-likelihood: (weights, accuracy)."""
    best, best_key = None, None
    for w in weight_grid(len(member_probs), steps, allow_zero):
        p = combine_members(member_probs, member_classes, w, classes)
        acc = float((p.argmax(axis=1) == labels).mean())
        nll = float(-np.log(np.maximum(p[np.arange(len(labels)), labels], 1e-12)).mean())
        key = (acc, -nll)
        if best_key is None or key > best_key:
            best, best_key = w, key
    return best, best_key[0]


def build_ensemble(
    name: str,
    member_names: list[str],
    models_dir: str | Path = "models",
    weights: str = "tuned",
    scheme: str | None = None,
    data: str = "",
    title: str = "",
    verbose: bool = True,
) -> dict:
    models_dir = Path(models_dir)
    members = [read_card(models_dir / f"{m}.json") for m in member_names]
    scheme = scheme or members[0]["label_scheme"]
    classes = members[0]["classes"] if members[0]["label_scheme"] == scheme else None
    if classes is None:
        from model_core.labels import SCHEMES

        classes = SCHEMES[scheme]
    splits, _, _ = load_splits(data or None, scheme)
    val = splits["PublicTest"]
    member_classes = [m["classes"] for m in members]
    caches = {"PublicTest": {}}  # each member runs once on validation: for the weights, then the metrics
    val_probs = [card_probs(m, val.images, models_dir, caches["PublicTest"]) for m in members]
    if weights == "equal":
        w = np.full(len(members), 1.0 / len(members))
    elif weights == "tuned":
        w, val_acc = tune_weights(val_probs, member_classes, classes, val.labels)
        if verbose:
            print(
                f"weights tuned on PublicTest: {dict(zip(member_names, w.round(2).tolist(), strict=True))} "
                f"(val accuracy {val_acc:.4f})"
            )
    else:
        raise ValueError(f"weights must be 'equal' or 'tuned', got {weights!r}")
    card = ensemble_card(
        name,
        title or f"Ensemble of {', '.join(member_names)}",
        zip(member_names, w, strict=True),
        classes,
        scheme,
        members[0]["input"],
        recipe={"weights": weights, "selected_on": "PublicTest" if weights == "tuned" else None},
    )
    card["metrics"] = measure(
        card, ("PublicTest", "PrivateTest"), models_dir, loaded=splits, caches=caches, verbose=verbose
    )
    write_card(models_dir / f"{name}.json", card)
    return card

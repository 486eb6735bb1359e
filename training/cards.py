"""The one card builder: the fields every model card has (docs/ARCHITECTURE.md, contract 2), assembled in
one place and validated by `model_core.card.parse_card` as the app will read them. `ship` (a trained
network) and `ensemble` build their cards here; `write_card` validates again, with the files, on write."""

from __future__ import annotations

from model_core.card import DATASETS, parse_card


def _checked(card: dict) -> dict:
    parse_card(dict(card), where=f"card {card['name']!r}", path=None)
    return card


def single_card(
    name: str,
    title: str,
    file: str,
    classes,
    scheme: str,
    input_spec: dict,
    tta,
    recipe: dict,
    metrics: dict | None = None,
    **extra,
) -> dict:
    """A single model's card: its ONNX `file` beside the card, classes in output order, input spec, TTA."""
    card = {
        "name": name,
        "title": title,
        "kind": "single",
        "file": file,
        "onnx_file": file,
        "classes": list(classes),
        "label_scheme": scheme,
        "dataset": DATASETS[scheme],
        "input": dict(input_spec),
        "tta": list(tta),
        "recipe": recipe,
        "metrics": dict(metrics or {}),
    }
    card.update(extra)
    return _checked(card)


def ensemble_card(
    name: str,
    title: str,
    members,
    classes,
    scheme: str,
    input_spec: dict,
    recipe: dict,
    metrics: dict | None = None,
    **extra,
) -> dict:
    """An ensemble's card: members `[(name, weight), ...]` voting by label name; `input` is a fixed key of
    every card (each member preprocesses with its own card's input)."""
    card = {
        "name": name,
        "title": title,
        "kind": "ensemble",
        "classes": list(classes),
        "label_scheme": scheme,
        "input": dict(input_spec),
        "dataset": DATASETS[scheme],
        "members": [{"name": n, "weight": round(float(w), 4)} for n, w in members],
        "recipe": recipe,
        "metrics": dict(metrics or {}),
    }
    card.update(extra)
    return _checked(card)

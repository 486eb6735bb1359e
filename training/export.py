"""Optional ONNX export of a card's Keras model (for ONNX Runtime serving)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from model_core.card import read_card, write_card


def save_onnx(model, path: str | Path) -> Path:
    """Export a Keras model to ONNX. Keras exports only models that have been called, and one
    loaded from a file has not, so it sees one dummy batch first."""
    shape = [d or 1 for d in model.inputs[0].shape]
    model(np.zeros(shape, np.float32), training=False)
    model.export(str(path), format="onnx", verbose=False)
    return Path(path)


def export_onnx(card_path: str | Path) -> Path:
    import keras

    card_path = Path(card_path)
    card = read_card(card_path)
    if card.get("kind") == "ensemble":
        raise ValueError("export the ensemble's members one by one; an ensemble card has no model file")
    model = keras.models.load_model(card_path.parent / card["file"], compile=False)
    out = save_onnx(model, card_path.with_suffix(".onnx"))
    card["onnx_file"] = out.name
    write_card(card_path, card)
    return out

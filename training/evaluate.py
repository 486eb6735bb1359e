"""Evaluate a model card (single or ensemble) on a named split and write the metrics into its card."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .card import metrics_key, read_card, write_card
from .metrics import classification_metrics, format_report, plot_confusion
from .preprocess import combine_members
from .train import TrainConfig, load_splits, predict_probs


def card_probs(card: dict, images: np.ndarray, models_dir: Path, _cache: dict | None = None):
    """Probabilities of a card's model (or ensemble) on uint8 faces, with its test-time procedure."""
    cache = {} if _cache is None else _cache
    if card.get("kind") == "ensemble":
        members = [read_card(models_dir / f"{m['name']}.json") for m in card["members"]]
        probs = [card_probs(m, images, models_dir, cache) for m in members]
        return combine_members(probs, [m["classes"] for m in members],
                               [m["weight"] for m in card["members"]], card["classes"])
    key = card["name"]
    if key not in cache:
        if card.get("onnx_file"):
            cache[key] = onnx_probs(models_dir / card["onnx_file"], images, card["input"], card.get("tta", []))
        else:
            import keras
            model = keras.models.load_model(models_dir / card["file"], compile=False)
            cache[key] = predict_probs(model, images, card["input"], card.get("tta", []))
    return cache[key]


def onnx_probs(path: Path, images: np.ndarray, spec: dict, tta, batch_size: int = 256) -> np.ndarray:
    """Probabilities through ONNX Runtime, preprocessed as the app does (`training.preprocess`)."""
    import onnxruntime as ort

    from .preprocess import predict_with_tta, preprocess_faces

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    out = []
    for i in range(0, len(images), batch_size):
        x = preprocess_faces(images[i:i + batch_size], spec)
        out.append(predict_with_tta(lambda b: session.run(None, {name: b})[0], x, tta))
    return np.concatenate(out)


def evaluate_card(card_path: str | Path, split: str = "PrivateTest", data: str = "", update: bool = True,
                  figure_dir: str | Path | None = None, verbose: bool = True) -> dict:
    card_path = Path(card_path)
    card = read_card(card_path)
    scheme = card["label_scheme"]
    splits, _, _ = load_splits(TrainConfig(name=card["name"], scheme=scheme, data=data))
    s = splits[split]
    probs = card_probs(card, s.images, card_path.parent)
    m = classification_metrics(s.labels, probs.argmax(axis=1), card["classes"])
    if verbose:
        print(format_report(m, f"{card['name']} on {split} ({scheme})"))
    if update:
        card.setdefault("metrics", {})[metrics_key(scheme, split)] = m
        write_card(card_path, card)
    if figure_dir:
        Path(figure_dir).mkdir(parents=True, exist_ok=True)
        plot_confusion(m, Path(figure_dir) / f"confusion_{card['name']}_{split}.png",
                       f"{card['name']} on {split}: acc {m['accuracy']:.3f}, macro-F1 {m['macro_f1']:.3f}")
    return m

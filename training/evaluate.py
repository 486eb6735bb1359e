"""Score a model card (single or ensemble) on named splits: `measure`, the one function that `ship`,
`ensemble`, `evaluate` and `benchmarks/accuracy` call; `evaluate_card` writes the result into the card."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from model_core.card import load_card, metrics_key, read_card, write_card
from model_core.predictor import BATCH_SIZE, Predictor, as_card, onnx_forward, predict_batches

from .data import load_splits
from .metrics import classification_metrics, format_report, plot_confusion


class _CachedRun:
    """A single card's probabilities on one set of images, computed once per cache (by card name), so
    callers scoring several cards (an ensemble and its members) on the same images run each model once."""

    def __init__(self, card, cache: dict):
        self.card, self.name, self.classes, self.cache = card, card.name, list(card.classes), cache

    def predict_probs(self, faces, batch_size: int = BATCH_SIZE) -> np.ndarray:
        if self.name not in self.cache:
            predictor = Predictor.from_card(self.card, threads=0)  # every core: this is a batch job
            self.cache[self.name] = predictor.predict_probs(faces, batch_size)
        return self.cache[self.name]


def card_probs(card, images: np.ndarray, models_dir: Path, _cache: dict | None = None):
    """Probabilities of a card's model (or ensemble) on uint8 faces, through the serving path
    (`model_core.predictor`): the card's preprocessing and test-time procedure, ONNX when exported.
    `card` is a card's dict (or a ModelCard); its files and its members' cards lie in `models_dir`."""
    cache = {} if _cache is None else _cache
    models_dir = Path(models_dir)
    card = as_card(card, models_dir)
    if card.kind == "ensemble":
        ensemble = Predictor.from_card(
            card, member=lambda name: _CachedRun(load_card(models_dir / f"{name}.json"), cache)
        )
        return ensemble.predict_probs(images)
    return _CachedRun(card, cache).predict_probs(images)


def onnx_probs(path: Path, images: np.ndarray, spec: dict, tta, batch_size: int = BATCH_SIZE) -> np.ndarray:
    """Probabilities of an ONNX file through ONNX Runtime, preprocessed as the app does."""
    return predict_batches(onnx_forward(path, threads=0), images, spec, tta, 0, batch_size)


def measure(
    card,
    splits=("PublicTest", "PrivateTest"),
    models_dir: str | Path = ".",
    data: str | None = None,
    loaded: dict | None = None,
    caches: dict | None = None,
    verbose: bool = False,
) -> dict:
    """`{metrics_key: classification_metrics}` of a card (dict, ModelCard or path) on the named splits of
    its label scheme, through the serving path (`card_probs`: the card's preprocessing, TTA and
    temperature, ONNX Runtime). `loaded`: the scheme's splits if the caller has them; `caches`: per-split
    probability caches (`{split: {}}`) shared by cards scored on the same images (an ensemble's members)."""
    if isinstance(card, (str, Path)):
        models_dir, card = Path(card).parent, read_card(card)
    card_dict = card if isinstance(card, dict) else None
    scheme = card_dict["label_scheme"] if card_dict else card.label_scheme
    classes = list(card_dict["classes"] if card_dict else card.classes)
    name = card_dict["name"] if card_dict else card.name
    loaded = loaded if loaded is not None else load_splits(data or None, scheme)[0]
    out = {}
    for split in splits:
        s = loaded[split]
        cache = None if caches is None else caches.setdefault(split, {})
        probs = card_probs(card, s.images, Path(models_dir), cache)
        m = classification_metrics(s.labels, probs.argmax(axis=1), classes)
        out[metrics_key(scheme, split)] = m
        if verbose:
            print(format_report(m, f"{name} on {split} ({scheme})"))
    return out


def evaluate_card(
    card_path: str | Path,
    split: str = "PrivateTest",
    data: str = "",
    update: bool = True,
    figure_dir: str | Path | None = None,
    verbose: bool = True,
) -> dict:
    card_path = Path(card_path)
    card = read_card(card_path)
    scheme = card["label_scheme"]
    m = measure(card, (split,), card_path.parent, data, verbose=verbose)[metrics_key(scheme, split)]
    if update:
        card.setdefault("metrics", {})[metrics_key(scheme, split)] = m
        write_card(card_path, card)
    if figure_dir:
        Path(figure_dir).mkdir(parents=True, exist_ok=True)
        plot_confusion(
            m,
            Path(figure_dir) / f"confusion_{card['name']}_{split}.png",
            f"{card['name']} on {split}: acc {m['accuracy']:.3f}, macro-F1 {m['macro_f1']:.3f}",
        )
    return m

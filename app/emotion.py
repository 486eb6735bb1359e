"""Face crops -> emotion scores, for every model the cards in `MODELS_DIR` describe.

The models themselves run through `model_core.predictor.Predictor` (ONNX Runtime, Keras or an
ensemble), the same code training measured them with: `crop_face` -> `Predictor.predict_probs`, with
every face of an image in one batch. This module loads them once per process and names the scores.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from flask import current_app

from model_core.card import load_cards
from model_core.predictor import Predictor
from model_core.preprocess import crop_face

log = logging.getLogger(__name__)

# Issue 24: what classifying one image may cost. A network's activations grow with its batch (a
# MobileNet at 160 px holds ~3 MB per view per layer; ONNX Runtime's arena is off, so they are freed
# after each run): faces go through in batches of CLASSIFY_BATCH. And the work is the faces times the
# views each costs (its members' TTA views): FACE_VIEWS_BUDGET is what MAX_FACES (20) faces cost on a
# single model with flip TTA (40 forward passes), so an ensemble of two such members classifies the
# 10 largest faces, not 20 (a 1 600-head grid cost 1.3-2.6 CPU-s and +230-340 MB with it).
CLASSIFY_BATCH = 8
FACE_VIEWS_BUDGET = 40


def scores_for(probs: np.ndarray, classes: Sequence[str]) -> list[dict]:
    """Rows of probabilities -> [{"emotion": top label, "scores": {label: p}}]."""
    out = []
    for row in np.asarray(probs, np.float64):
        row = np.clip(np.nan_to_num(row), 0.0, None)
        total = row.sum()
        row = row / total if total > 0 else np.full_like(row, 1.0 / len(row))
        out.append(
            {
                "emotion": classes[int(np.argmax(row))],
                "scores": {label: round(float(p), 5) for label, p in zip(classes, row, strict=True)},
            }
        )
    return out


class ModelUnavailable(RuntimeError):
    """A model has a valid card but its file would not load (the API answers 503)."""


class ModelRegistry:
    """The models of one models folder, loaded once per process (at start-up or on first use)."""

    def __init__(self, models_dir: str | Path, default: str | None = None, strict: bool = False):
        self.models_dir = Path(models_dir)
        self.cards = load_cards(self.models_dir, strict=strict)
        self._models: dict[str, Predictor] = {}
        self._lock = threading.RLock()
        self.default = self._pick_default(default)

    def _pick_default(self, wanted: str | None) -> str | None:
        if wanted:
            if wanted in self.cards:
                return wanted
            log.error("EMOTION_DEFAULT_MODEL=%r has no card in %s; choosing another", wanted, self.models_dir)
        flagged = [n for n, c in self.cards.items() if c.default]
        if len(flagged) > 1:
            log.warning("cards %s all say default=true; serving %s", flagged, flagged[0])
        if flagged:
            return flagged[0]
        singles = [n for n, c in self.cards.items() if c.kind == "single"]
        if singles:
            return singles[0]
        return next(iter(self.cards), None)

    @property
    def names(self) -> list[str]:
        return list(self.cards)

    def loaded(self) -> list[str]:
        return list(self._models)

    def get(self, name: str | None = None):
        name = name or self.default
        if name is None:
            raise KeyError("no model is available")
        if name not in self.cards:
            raise KeyError(name)
        model = self._models.get(name)
        if model is not None:
            return model
        with self._lock:
            if name not in self._models:
                card = self.cards[name]
                try:
                    if card.kind == "single":
                        log.info("loading model %s", name)
                    # an ensemble's members are this registry's models, loaded once and shared; no
                    # ONNX Runtime arena: it would keep the largest batch's memory for good (issue 16)
                    model = Predictor.from_card(card, member=self.get, arena=False)
                    if card.kind == "single":
                        log.info("loaded model %s from %s (%s)", name, card.onnx_path, model.runtime)
                    self._models[name] = model
                except ModelUnavailable:
                    raise
                except Exception as exc:
                    log.exception("could not load model %s", name)
                    raise ModelUnavailable(f"model {name!r} could not be loaded ({type(exc).__name__})") from exc
            return self._models[name]

    def load_all(self) -> None:
        for name in self.cards:
            try:
                self.get(name)
            except ModelUnavailable:  # one broken model must not stop the others from serving
                pass

    def views_per_face(self, name: str | None = None) -> int:
        """Forward passes one face costs on a model: its TTA views, summed over an ensemble's members."""
        card = self.cards[name or self.default or ""]
        if card.kind == "ensemble":
            return sum(self.views_per_face(m["name"]) for m in card.members)
        return 1 + len(card.tta)

    def max_faces(self, name: str | None = None) -> int:
        """How many faces (the largest) an image may have classified by this model: FACE_VIEWS_BUDGET
        forward passes' worth, at least one."""
        return max(1, FACE_VIEWS_BUDGET // max(1, self.views_per_face(name)))

    def classify(self, rgb: np.ndarray, faces: Sequence[dict], name: str | None = None) -> list[dict]:
        """Emotion and scores for each detected face of one image, CLASSIFY_BATCH faces at a time (the
        caller keeps to `max_faces`)."""
        model = self.get(name)
        crops = [crop_face(rgb, f["box"], keypoints=f.get("keypoints")) for f in faces]
        return scores_for(model.predict_probs(crops, batch_size=CLASSIFY_BATCH), model.classes)


def get_models() -> ModelRegistry:
    """The app's model registry (built by `init_app`), flaskr-style like `get_db()`."""
    return current_app.extensions["models"]


def init_app(app) -> ModelRegistry:
    registry = ModelRegistry(
        app.config["MODELS_DIR"],
        default=app.config.get("DEFAULT_MODEL") or None,
        strict=bool(app.config.get("STRICT_CARDS", False)),
    )
    app.extensions["models"] = registry
    if not registry.cards:
        log.warning("no model cards in %s: /api/predict will answer 503 until models are added", registry.models_dir)
    return registry

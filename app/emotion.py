"""Face crops -> emotion scores, for any model the cards describe (single models and ensembles).

The path is the one training measured: `crop_face` -> `preprocess_faces(card input)` ->
`predict_with_tta(card tta)`, with every face of an image in one batch. Models are called through a
compiled function (not `model.predict`, whose per-call set-up costs more than a small CNN's forward
pass).
"""
from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Sequence

import numpy as np

from training.preprocess import combine_members, crop_face, predict_with_tta, preprocess_faces

from .model_card import ModelCard, load_cards

log = logging.getLogger(__name__)


def _compiled_forward(model, spec: dict):
    """A fast inference function for a Keras model; a traced tf.function under TensorFlow."""
    import keras

    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        signature = [tf.TensorSpec([None, spec["size"], spec["size"], spec["channels"]], tf.float32)]
        fn = tf.function(lambda x: model(x, training=False), input_signature=signature,
                         reduce_retracing=True)
        return lambda batch: fn(tf.convert_to_tensor(batch)).numpy()
    return lambda batch: keras.ops.convert_to_numpy(model(batch, training=False))


def _onnx_forward(path: Path, threads: int = 1):
    """ONNX Runtime session for an exported model: a small CNN's forward pass in ~2 ms of CPU, several
    times less than TensorFlow's per-call overhead (docs/BENCHMARKS.md, classifier cost per face)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads  # gunicorn runs one worker per core
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return lambda batch: session.run(None, {name: np.ascontiguousarray(batch, np.float32)})[0]


class EmotionModel:
    """One trained network and its card.

    Runs on ONNX Runtime when the card names an exported `onnx_file` (same probabilities within float
    rounding, checked by tests/app/test_emotion.py), else on Keras through a compiled function.
    """

    def __init__(self, card: ModelCard, model=None, runtime: str = "auto"):
        self.card = card
        self.name = card.name
        self.classes = list(card.classes)
        onnx_path = card.onnx_path
        if model is None and runtime in ("auto", "onnx") and onnx_path is not None and onnx_path.exists():
            try:
                self.model, self.runtime = None, "onnxruntime"
                self._forward = _onnx_forward(onnx_path)
                self.predict_probs(np.zeros((1, 8, 8), np.uint8))
                return
            except Exception:
                log.exception("model %s: ONNX file %s failed to load; using Keras", card.name, onnx_path)
        self.runtime = "keras"
        if model is None:
            import keras

            model = keras.models.load_model(card.model_path, compile=False)
        out = model.outputs[0].shape[-1] if getattr(model, "outputs", None) else None
        if out is not None and out != len(self.classes):
            raise ValueError(f"model {card.name}: {out} outputs but the card lists {len(self.classes)} classes")
        self.model = model
        self._forward = _compiled_forward(model, card.input)
        self.predict_probs(np.zeros((1, 8, 8), np.uint8))  # trace now, not in the first request

    def predict_probs(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        """(N, classes) probabilities for N face crops (uint8, any size, grey or RGB)."""
        if len(crops) == 0:
            return np.zeros((0, len(self.classes)))
        batch = preprocess_faces(crops, self.card.input)
        return predict_with_tta(self._forward, batch, self.card.tta)


class EnsembleModel:
    """A weighted vote of single models, matched by label name (training.preprocess.combine_members)."""

    def __init__(self, card: ModelCard, members: Sequence[EmotionModel]):
        self.card = card
        self.name = card.name
        self.classes = list(card.classes)
        self.members = list(members)
        self.weights = [m["weight"] for m in card.members]

    def predict_probs(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        if len(crops) == 0:
            return np.zeros((0, len(self.classes)))
        probs = [m.predict_probs(crops) for m in self.members]
        return combine_members(probs, [m.classes for m in self.members], self.weights, self.classes)


def scores_for(probs: np.ndarray, classes: Sequence[str]) -> list[dict]:
    """Rows of probabilities -> [{"emotion": top label, "scores": {label: p}}]."""
    out = []
    for row in np.asarray(probs, np.float64):
        row = np.clip(np.nan_to_num(row), 0.0, None)
        total = row.sum()
        row = row / total if total > 0 else np.full_like(row, 1.0 / len(row))
        out.append({"emotion": classes[int(np.argmax(row))],
                    "scores": {label: round(float(p), 5) for label, p in zip(classes, row)}})
    return out


class ModelUnavailable(RuntimeError):
    """A model has a valid card but its file would not load (the API answers 503)."""


class ModelRegistry:
    """The models of one models folder, loaded once per process (at start-up or on first use)."""

    def __init__(self, models_dir: str | Path, default: str | None = None, strict: bool = False):
        self.models_dir = Path(models_dir)
        self.cards = load_cards(self.models_dir, strict=strict)
        self._models: dict[str, EmotionModel | EnsembleModel] = {}
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
                    if card.kind == "ensemble":
                        members = [self.get(m["name"]) for m in card.members]
                        self._models[name] = EnsembleModel(card, members)
                    else:
                        log.info("loading model %s from %s", name, card.model_path)
                        self._models[name] = EmotionModel(card)
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

    def classify(self, rgb: np.ndarray, faces: Sequence[dict], name: str | None = None) -> list[dict]:
        """Emotion and scores for each detected face of one image, in one batch."""
        model = self.get(name)
        crops = [crop_face(rgb, f["box"]) for f in faces]
        return scores_for(model.predict_probs(crops), model.classes)


def init_app(app) -> ModelRegistry:
    registry = ModelRegistry(app.config["MODELS_DIR"], default=app.config.get("DEFAULT_MODEL") or None,
                             strict=bool(app.config.get("STRICT_CARDS", False)))
    app.extensions["models"] = registry
    if not registry.cards:
        log.warning("no model cards in %s: /api/predict will answer 503 until models are added",
                    registry.models_dir)
    return registry

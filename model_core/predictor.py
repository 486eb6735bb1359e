"""Run any model card: `Predictor.from_card(card)` -> `.predict_probs(faces)`.

The one place where face crops become class probabilities, for the app, training's evaluation and the
benchmarks alike: `preprocess_faces(card input)` -> `predict_with_tta(card tta)`, in batches.

- A single model is an ONNX file (its card's `file`) run by ONNX Runtime. Every card is ONNX since
  TensorFlow and Keras left the project (issue 17); training writes the graphs itself
  (training/nets.py).
- An ensemble runs its members (each with its own card's input and TTA) and votes by label name
  (`combine_members`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np

from .card import ModelCard, load_card, parse_card
from .preprocess import combine_members, predict_with_tta, preprocess_faces

log = logging.getLogger(__name__)

BATCH_SIZE = 256
RUNTIMES = ("auto", "onnx")  # "auto" is kept for callers: it means ONNX Runtime


def predict_batches(
    forward: Callable[[np.ndarray], np.ndarray],
    faces,
    spec: Mapping,
    tta: Sequence[str],
    n_classes: int,
    batch_size: int = BATCH_SIZE,
) -> np.ndarray:
    """(N, n_classes) probabilities for N uint8 faces through `forward`, with the card's preprocessing
    and test-time procedure, `batch_size` faces at a time."""
    out = []
    for i in range(0, len(faces), batch_size):
        batch = preprocess_faces(faces[i : i + batch_size], spec)
        out.append(predict_with_tta(forward, batch, tta))
    return np.concatenate(out) if out else np.zeros((0, n_classes))


def onnx_forward(path: str | Path, threads: int = 1, arena: bool = True):
    """ONNX Runtime session for an exported model: a small CNN's forward pass in ~2 ms of CPU, several
    times less than TensorFlow's per-call overhead (docs/BENCHMARKS.md, classifier cost per face).
    threads=1 for serving (gunicorn runs one worker per core); 0 lets ONNX Runtime use every core.
    arena=False: no ONNX Runtime memory arena, which keeps what the largest batch needed for good (the
    app serves batches of 1-40 faces: issue 16, ~130 MB kept per worker after a 20-face photo)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.enable_cpu_mem_arena = bool(arena)
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return lambda batch: session.run(None, {name: np.ascontiguousarray(batch, np.float32)})[0]


def as_card(card: ModelCard | Mapping | str | Path, models_dir: str | Path | None = None) -> ModelCard:
    """A validated ModelCard from a ModelCard, a card file, or a card's dict (whose files lie in
    `models_dir`)."""
    if isinstance(card, ModelCard):
        return card
    if isinstance(card, (str, Path)):
        return load_card(card)
    path = None if models_dir is None else Path(models_dir) / f"{card.get('name')}.json"
    return parse_card(dict(card), where=str(path or card.get("name")), path=path)


class Predictor:
    """Class probabilities for face crops from one card; build one with `Predictor.from_card`."""

    card: ModelCard
    runtime: str

    def __init__(self, card: ModelCard):
        self.card = card
        self.name = card.name
        self.classes = list(card.classes)

    @classmethod
    def from_card(
        cls,
        card: ModelCard | Mapping | str | Path,
        *,
        models_dir: str | Path | None = None,
        runtime: str = "auto",
        threads: int = 1,
        member: Callable[[str], Predictor] | None = None,
        arena: bool = True,
    ) -> Predictor:
        """The predictor a card describes.

        card: a ModelCard, a card's JSON path, or a card's dict (files in `models_dir`).
        runtime: "auto" or "onnx" (the same: ONNX Runtime); threads and arena (its memory arena,
        `onnx_forward`): ONNX Runtime's.
        member: name -> Predictor for an ensemble's members (the app shares loaded ones); by default
        each member is built from `<name>.json` beside the ensemble's card.
        """
        card = as_card(card, models_dir)
        if card.kind == "ensemble":
            if member is None:
                folder = Path(models_dir) if models_dir is not None else (card.path.parent if card.path else Path("."))

                def member(name):
                    return cls.from_card(folder / f"{name}.json", runtime=runtime, threads=threads, arena=arena)

            return EnsemblePredictor(card, [member(m["name"]) for m in card.members])
        return SinglePredictor(card, runtime=runtime, threads=threads, arena=arena)

    def predict_probs(self, faces: Sequence[np.ndarray], batch_size: int = BATCH_SIZE) -> np.ndarray:
        """(N, classes) probabilities for N face crops (uint8, any size, grey or RGB)."""
        raise NotImplementedError


def tempered(forward: Callable[[np.ndarray], np.ndarray], temperature: float):
    """`forward`'s probabilities at a temperature: softmax(log p / T), which equals softmax(z / T) of the
    network's logits z (log p differs from z by a constant per row). Applied per view, before the TTA
    average, as training/heads.py fits it."""

    def run(batch):
        logp = np.log(np.clip(np.asarray(forward(batch), np.float64), 1e-12, None)) / temperature
        logp -= logp.max(axis=1, keepdims=True)
        p = np.exp(logp)
        return p / p.sum(axis=1, keepdims=True)

    return run


def serving_temperature(card: ModelCard) -> float | None:
    """The temperature the predictor applies: a card's calibration `"applied": "at_serving"` (one whose
    temperature is not already folded into its graph)."""
    cal = card.calibration or {}
    return float(cal["temperature"]) if cal.get("applied") == "at_serving" else None


class SinglePredictor(Predictor):
    """One trained network (an ONNX file) and its card, on ONNX Runtime."""

    runtime = "onnxruntime"

    def __init__(self, card: ModelCard, runtime: str = "auto", threads: int = 1, arena: bool = True):
        super().__init__(card)
        if runtime not in RUNTIMES:
            raise ValueError(f"runtime must be one of {RUNTIMES}, got {runtime!r}")
        onnx_path = card.onnx_path
        if onnx_path is None or not onnx_path.exists():
            raise FileNotFoundError(f"model {card.name}: no ONNX file {onnx_path}")
        self._forward = onnx_forward(onnx_path, threads, arena)
        out = self.predict_probs([np.zeros((8, 8), np.uint8)]).shape[-1]  # allocate now, not in a request
        if out != len(self.classes):
            raise ValueError(f"model {card.name}: {out} outputs but the card lists {len(self.classes)} classes")

    def predict_probs(self, faces: Sequence[np.ndarray], batch_size: int = BATCH_SIZE) -> np.ndarray:
        temperature = serving_temperature(self.card)
        forward = self._forward if temperature is None else tempered(self._forward, temperature)
        return predict_batches(forward, faces, self.card.input, self.card.tta, len(self.classes), batch_size)


class EnsemblePredictor(Predictor):
    """A weighted vote of single models, matched by label name (`combine_members`)."""

    runtime = "ensemble"

    def __init__(self, card: ModelCard, members: Sequence[Predictor]):
        super().__init__(card)
        self.members = list(members)
        self.weights = [m["weight"] for m in card.members]

    def predict_probs(self, faces: Sequence[np.ndarray], batch_size: int = BATCH_SIZE) -> np.ndarray:
        if len(faces) == 0:
            return np.zeros((0, len(self.classes)))
        probs = [m.predict_probs(faces, batch_size) for m in self.members]
        return combine_members(probs, [m.classes for m in self.members], self.weights, self.classes)

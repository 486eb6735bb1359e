"""Model cards, one schema: `models/<name>.json` is written by training (`write_card`) and read and
validated by the app (`load_card` / `parse_card`); everything the app knows about a model comes from it
(ARCHITECTURE.md, contract 2)."""

from __future__ import annotations

import json
import logging
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

from .labels import DATASETS, SPLIT_KEYS, SPLITS, metrics_key  # noqa: F401  (re-exported)
from .preprocess import input_spec

log = logging.getLogger(__name__)

FIXED_KEYS = ("name", "classes", "input", "metrics")
KINDS = ("single", "ensemble")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class CardError(ValueError):
    """A model card the app cannot serve; the message names the file and the problem."""


@dataclass
class ModelCard:
    name: str
    classes: list[str]
    input: dict
    metrics: dict
    kind: str = "single"
    title: str = ""
    file: str | None = None
    label_scheme: str | None = None
    dataset: str | None = None
    tta: list[str] = field(default_factory=list)
    members: list[dict] = field(default_factory=list)  # ensemble: [{"name", "weight"}]
    recipe: dict = field(default_factory=dict)
    path: Path | None = None  # the card's JSON file
    onnx_file: str | None = None  # the ONNX file beside the card; the same as `file` (kept for older readers)
    latency_ms: dict = field(default_factory=dict)  # measured classifier cost, shown in /api/models
    default: bool = False  # the model the app serves when a request names none
    titles: dict = field(default_factory=dict)  # title per page language other than English: {"vi": ...}
    short: dict = field(default_factory=dict)  # the model menu's name per language: {"en": ..., "vi": ...}
    purpose: dict = field(default_factory=dict)  # what the model is for, per language (shown on the page)
    menu: bool = True  # false: served (an ensemble's member, by name over the API) but not in the menu
    confidence: dict = field(default_factory=dict)  # {"min_top", "min_margin"}: below either, hedge
    calibration: dict = field(default_factory=dict)  # temperature and ECE before/after, per split

    def confident(self, probs) -> bool:
        """Whether a face's probabilities (card class order, or {label: p}) clear the card's
        confidence rule (chosen on validation by training/heads.py); a card without one is always
        confident."""
        if not self.confidence:
            return True
        values = sorted(probs.values() if isinstance(probs, dict) else probs, reverse=True)
        top, second = float(values[0]), float(values[1]) if len(values) > 1 else 0.0
        return top >= self.confidence["min_top"] and top - second >= self.confidence["min_margin"]

    @property
    def onnx_path(self) -> Path | None:
        name = self.onnx_file or self.file
        if self.kind != "single" or self.path is None or name is None:
            return None
        return self.path.parent / name

    @property
    def model_path(self) -> Path | None:
        if self.kind != "single" or self.path is None or self.file is None:
            return None
        return self.path.parent / self.file

    def summary(self) -> dict[str, Any]:
        """What /api/models shows: identity, inputs and the measured metrics per split."""
        metrics = {}
        for split, m in self.metrics.items():
            metrics[split] = {
                k: m[k]
                for k in (
                    "accuracy",
                    "macro_f1",
                    "per_class",
                    "confusion",
                    "samples",
                    "calm_face_rate",
                    "strong_neutral_faces",
                    "ece",
                )
                if k in m
            }
        return {
            "name": self.name,
            "title": self.title or self.name,
            "titles": dict(self.titles),
            "kind": self.kind,
            "classes": list(self.classes),
            "label_scheme": self.label_scheme,
            "dataset": self.dataset,
            "input": dict(self.input),
            "tta": list(self.tta),
            "members": [dict(m) for m in self.members],
            "metrics": metrics,
            "arch": self.recipe.get("arch"),
            "latency_ms": dict(self.latency_ms),
            "default": self.default,
            "short": dict(self.short),
            "purpose": dict(self.purpose),
            "menu": self.menu,
            "confidence": {k: self.confidence[k] for k in ("min_top", "min_margin") if k in self.confidence},
            "calibration": dict(self.calibration),
        }


def _fail(where: str, problem: str) -> NoReturn:
    raise CardError(f"model card {where}: {problem}")


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def parse_card(data: Any, where: str = "<card>", path: Path | None = None) -> ModelCard:
    """Validate one card's JSON object; raises CardError naming the first problem."""
    if not isinstance(data, dict):
        _fail(where, "must be a JSON object")
    missing = [k for k in FIXED_KEYS if k not in data]
    if missing:
        _fail(where, f"missing fixed key(s) {missing}; every card needs {list(FIXED_KEYS)}")
    name = data["name"]
    if not isinstance(name, str) or not _NAME.match(name):
        _fail(where, f"'name' must be a short identifier (letters, digits, _ . -), got {name!r}")
    classes = data["classes"]
    if (
        not isinstance(classes, list)
        or len(classes) < 2
        or not all(isinstance(c, str) and c and c == c.lower() for c in classes)
    ):
        _fail(where, "'classes' must be a list of at least two lower-case label names")
    if len(set(classes)) != len(classes):
        _fail(where, f"'classes' has duplicates: {classes}")
    if not isinstance(data["input"], dict):
        _fail(where, '\'input\' must be an object like {"size": 48, "channels": 1, "scale": "unit"}')
    try:
        spec = input_spec(data["input"])
    except (ValueError, TypeError, KeyError) as exc:
        _fail(where, f"bad 'input' spec: {exc}")
    if spec["size"] < 8:
        _fail(where, f"'input.size' {spec['size']} is too small")
    metrics = data["metrics"]
    if not isinstance(metrics, dict):
        _fail(where, f"'metrics' must be an object keyed by split ({', '.join(SPLITS)})")
    for split, m in metrics.items():
        if not isinstance(m, dict) or not _number(m.get("accuracy")) or not _number(m.get("macro_f1")):
            _fail(where, f"metrics[{split!r}] needs numeric 'accuracy' and 'macro_f1'")
        if "per_class" in m and not isinstance(m["per_class"], dict):
            _fail(where, f"metrics[{split!r}].per_class must be an object keyed by label")
    kind = data.get("kind", "single")
    if kind not in KINDS:
        _fail(where, f"'kind' must be one of {KINDS}, got {kind!r}")
    tta = data.get("tta") or []
    if not isinstance(tta, list) or any(t not in ("flip",) for t in tta):
        _fail(where, f"'tta' must be a list of known test-time augmentations (['flip']), got {tta!r}")
    card = ModelCard(
        name=name,
        classes=list(classes),
        input=spec,
        metrics=metrics,
        kind=kind,
        title=str(data.get("title") or name),
        label_scheme=data.get("label_scheme"),
        dataset=data.get("dataset"),
        tta=list(tta),
        recipe=data.get("recipe") or {},
        path=path,
    )
    if kind == "single":
        file = data.get("file")
        if not isinstance(file, str) or not file or "/" in file or "\\" in file or file.startswith("."):
            _fail(where, "a single model needs 'file', the .onnx file name beside the card")
        if not file.endswith(".onnx"):
            _fail(where, f"'file' must be an .onnx file (every model is served by ONNX Runtime), got {file!r}")
        card.file = file
        if path is not None and not (path.parent / file).is_file():
            _fail(where, f"model file {file!r} not found beside the card")
        onnx = data.get("onnx_file")
        if onnx is not None and (not isinstance(onnx, str) or "/" in onnx or "\\" in onnx or onnx.startswith(".")):
            _fail(where, "'onnx_file' must be a file name beside the card")
        if onnx is not None and onnx != file:
            _fail(where, f"'onnx_file' ({onnx!r}) must be the same file as 'file' ({file!r})")
        card.onnx_file = onnx or file
    else:
        members = data.get("members")
        if not isinstance(members, list) or not members:
            _fail(where, 'an ensemble needs \'members\': [{"name": ..., "weight": ...}, ...]')
        clean = []
        for m in members:
            if not isinstance(m, dict) or not isinstance(m.get("name"), str):
                _fail(where, f"bad ensemble member {m!r}")
            weight = m.get("weight", 1.0)
            if not _number(weight) or weight < 0:
                _fail(where, f"member {m['name']!r} has a bad weight {weight!r}")
            clean.append({"name": m["name"], "weight": float(weight)})
        if sum(m["weight"] for m in clean) <= 0:
            _fail(where, "ensemble weights sum to zero")
        card.members = clean
    if isinstance(data.get("latency_ms"), dict):
        card.latency_ms = dict(data["latency_ms"])
    if not isinstance(data.get("default", False), bool):
        _fail(where, "'default' must be true or false")
    card.default = bool(data.get("default", False))
    titles = data.get("titles") or {}
    if not isinstance(titles, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and v for k, v in titles.items()
    ):
        _fail(where, '\'titles\' must map a language code to a non-empty title, e.g. {"vi": "..."}')
    card.titles = dict(titles)
    for key in ("short", "purpose"):
        value = data.get(key) or {}
        if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, str) and v for k, v in value.items()
        ):
            _fail(where, f'\'{key}\' must map a language code to a non-empty text, e.g. {{"en": "..."}}')
        setattr(card, key, dict(value))
    if not isinstance(data.get("menu", True), bool):
        _fail(where, "'menu' must be true or false")
    card.menu = bool(data.get("menu", True))
    confidence = data.get("confidence") or {}
    if confidence:
        if not isinstance(confidence, dict) or not all(
            _number(confidence.get(k)) and 0.0 <= confidence[k] <= 1.0 for k in ("min_top", "min_margin")
        ):
            _fail(where, "'confidence' needs 'min_top' and 'min_margin' between 0 and 1")
        card.confidence = dict(confidence)
    calibration = data.get("calibration") or {}
    if not isinstance(calibration, dict) or (
        "temperature" in calibration and not (_number(calibration["temperature"]) and calibration["temperature"] > 0)
    ):
        _fail(where, "'calibration' must be an object with a positive 'temperature'")
    if calibration.get("applied", "in_graph") not in ("in_graph", "at_serving"):
        _fail(where, "'calibration.applied' must be 'in_graph' (folded into the model) or 'at_serving'")
    if calibration.get("applied") == "at_serving" and kind == "ensemble":
        _fail(where, "an ensemble's members carry their own calibration; 'at_serving' is for single models")
    card.calibration = dict(calibration)
    if card.default and not card.menu:
        _fail(where, "the default model must be in the menu ('menu': true)")
    return card


def load_card(path: str | Path) -> ModelCard:
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CardError(f"model card {path}: cannot read JSON ({exc})") from None
    return parse_card(data, where=str(path), path=path)


def check_ensembles(cards: dict[str, ModelCard]) -> None:
    """An ensemble's members must be single-model cards present here whose labels cover its own."""
    for card in cards.values():
        if card.kind != "ensemble":
            continue
        where = str(card.path or card.name)
        covered: set[str] = set()
        for m in card.members:
            member = cards.get(m["name"])
            if member is None:
                _fail(where, f"member {m['name']!r} has no card in the models folder")
            if member.kind != "single":
                _fail(where, f"member {m['name']!r} is itself an ensemble")
            shared = set(member.classes) & set(card.classes)
            if not shared:
                _fail(where, f"member {m['name']!r} shares no label with the ensemble")
            covered |= shared
        if covered != set(card.classes):
            _fail(where, f"no member predicts {sorted(set(card.classes) - covered)}")


def load_cards(models_dir: str | Path, strict: bool = True) -> dict[str, ModelCard]:
    """All cards in a folder, by name. strict=False logs and skips bad cards (and ensembles whose
    members were skipped) instead of raising, so one broken file cannot take the app down."""
    models_dir = Path(models_dir)
    cards: dict[str, ModelCard] = {}
    if not models_dir.is_dir():
        if strict:
            raise CardError(f"models folder {models_dir} does not exist")
        log.warning("models folder %s does not exist; no models to serve", models_dir)
        return cards
    for path in sorted(models_dir.glob("*.json")):
        try:
            card = load_card(path)
            if card.name in cards:
                _fail(str(path), f"name {card.name!r} is already used by {cards[card.name].path}")
        except CardError as exc:
            if strict:
                raise
            log.error("skipping %s", exc)
            continue
        cards[card.name] = card
    while True:
        try:
            check_ensembles(cards)
            return cards
        except CardError as exc:
            if strict:
                raise
            log.error("skipping %s", exc)
            bad = [c.name for c in cards.values() if c.kind == "ensemble" and str(c.path or c.name) in str(exc)]
            if not bad:
                raise
            for name in bad:
                cards.pop(name)


def write_card(path: str | Path, card: dict) -> Path:
    """Validate a card as the app will (`parse_card`), then write its JSON atomically, so a server
    reading `models/` never sees half a card, nor one it would refuse."""
    path = Path(path)
    parse_card(card, where=str(path), path=path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(card, indent=2, sort_keys=False) + "\n")
    os.replace(tmp, path)
    return path


def read_card(path: str | Path) -> dict:
    """A card's JSON as a dict, unvalidated (training edits and rewrites it; `load_card` validates)."""
    return json.loads(Path(path).read_text())

"""model_core: the package that serving and training share stands alone (issue 10)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from model_core.card import CardError, parse_card, read_card, write_card
from model_core.labels import FER2013_CLASSES, SCHEMES, SPLIT_KEYS, SPLITS
from model_core.predictor import Predictor

REPO = Path(__file__).resolve().parents[2]


def test_model_core_and_the_app_import_without_training_or_keras():
    """What the serving image has: app/ and model_core/, no training/, no TensorFlow or Keras."""
    code = """
import sys
for name in ("training", "keras", "tensorflow"):
    sys.modules[name] = None   # import -> ImportError, as if absent
import model_core.card, model_core.labels, model_core.predictor, model_core.preprocess
import app, app.api, app.cli, app.emotion, app.pipeline
from app import create_app
print("ok")
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stderr[-2000:]


def test_the_image_copies_model_core_and_not_training():
    copies = [line.split()[1] for line in (REPO / "Dockerfile").read_text().splitlines() if line.startswith("COPY ")]
    assert "model_core/" in copies and "app/" in copies
    assert "training/" not in copies


def test_split_keys_name_the_card_splits():
    assert set(SPLIT_KEYS.values()) == set(SPLITS)
    assert set(SCHEMES["ferplus"]) == set(FER2013_CLASSES) | {"contempt"}


def test_a_card_written_by_training_reads_back_and_validates(tmp_path):
    card = {
        "name": "m",
        "kind": "ensemble",
        "classes": list(FER2013_CLASSES),
        "input": {"size": 48},
        "metrics": {},
        "members": [{"name": "a", "weight": 1.0}],
    }
    path = write_card(tmp_path / "m.json", card)
    assert read_card(path) == card and not (tmp_path / "m.json.tmp").exists()
    assert parse_card(read_card(path)).members == [{"name": "a", "weight": 1.0}]
    with pytest.raises(CardError, match="classes"):
        parse_card(dict(card, classes=["Angry", "happy"]))


def test_predictor_runs_a_shipped_card_and_empty_batches(models_dir):
    paths = [p for p in sorted(Path(models_dir).glob("*.json")) if read_card(p).get("onnx_file")]
    if not paths:
        pytest.skip("no ONNX model card installed")
    predictor = Predictor.from_card(paths[0])
    assert predictor.runtime == "onnxruntime"
    faces = np.random.default_rng(0).integers(0, 256, (5, 60, 60, 3)).astype(np.uint8)
    probs = predictor.predict_probs(list(faces))
    assert probs.shape == (5, len(predictor.classes))
    np.testing.assert_allclose(predictor.predict_probs(list(faces), batch_size=2), probs, atol=1e-5)
    assert predictor.predict_probs([]).shape == (0, len(predictor.classes))


def test_training_cannot_write_a_card_the_app_would_refuse(tmp_path):
    with pytest.raises(CardError, match="'classes'"):
        write_card(
            tmp_path / "bad.json",
            {"name": "bad", "classes": ["happy"], "input": {}, "metrics": {}, "kind": "ensemble", "members": []},
        )
    assert not (tmp_path / "bad.json").exists()

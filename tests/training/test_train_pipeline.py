"""A 2-epoch train + evaluate + ensemble + export run on tiny data, through the CLI."""
import json

import numpy as np
import pytest

from training.cli import main as cli


@pytest.fixture(scope="module")
def trained(tiny_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("models")
    runs = tmp_path_factory.mktemp("runs")
    for name, extra in (("tiny7", []), ("tiny8", ["--scheme", "ferplus", "--targets", "soft",
                                                  "--balance", "oversample"])):
        rc = cli(["train", "--name", name, "--arch", "tiny_cnn", "--epochs", "2", "--batch-size", "16",
                  "--data", str(tiny_data), "--out-dir", str(out), "--run-dir", str(runs / name),
                  "--seed", "3"] + extra)
        assert rc == 0
    return out, runs


def test_train_exports_model_and_card(trained):
    out, runs = trained
    card = json.loads((out / "tiny7.json").read_text())
    assert (out / "tiny7.keras").stat().st_size > 10_000
    assert card["name"] == "tiny7" and card["file"] == "tiny7.keras" and card["kind"] == "single"
    assert card["classes"] == ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
    assert card["input"] == {"size": 48, "channels": 1, "scale": "unit"} and card["tta"] == ["flip"]
    assert card["recipe"]["balance"] == "none" and card["recipe"]["epochs_run"] == 2
    assert card["recipe"]["clean_report"]["removed"] == 3
    assert set(card["metrics"]) == {"fer2013_public", "fer2013_private"}
    test = card["metrics"]["fer2013_private"]
    assert test["samples"] == 21 and np.array(test["confusion"]).sum() == 21
    assert 0.0 <= test["accuracy"] <= 1.0 and set(test["per_class"]) == set(card["classes"])
    assert (runs / "tiny7" / "confusion_PrivateTest.png").exists()
    assert (runs / "tiny7" / "curves.png").exists()


def test_ferplus_card_has_eight_classes_and_ferplus_splits(trained):
    out, _ = trained
    card = json.loads((out / "tiny8.json").read_text())
    assert card["label_scheme"] == "ferplus" and len(card["classes"]) == 8 and "contempt" in card["classes"]
    assert set(card["metrics"]) == {"ferplus_val", "ferplus_test"}
    assert card["recipe"]["targets"] == "soft" and card["recipe"]["balance"] == "oversample"
    # 21 test rows minus none excluded in the test split of the tiny data
    assert card["metrics"]["ferplus_test"]["samples"] == 21


def test_app_card_loader_accepts_the_exported_cards(trained):
    from model_core.card import load_cards
    out, _ = trained
    cards = load_cards(out)
    names = {c.name for c in (cards.values() if isinstance(cards, dict) else cards)}
    assert {"tiny7", "tiny8"} <= names


def test_evaluate_reproduces_the_card_metrics(trained, tiny_data, tmp_path):
    out, _ = trained
    before = json.loads((out / "tiny7.json").read_text())["metrics"]["fer2013_private"]
    assert cli(["evaluate", "--model", str(out / "tiny7.json"), "--data", str(tiny_data),
                "--figure-dir", str(tmp_path)]) == 0
    after = json.loads((out / "tiny7.json").read_text())["metrics"]["fer2013_private"]
    assert after["confusion"] == before["confusion"]
    assert (tmp_path / "confusion_tiny7_PrivateTest.png").exists()


def test_ensemble_card_across_label_schemes(trained, tiny_data):
    out, _ = trained
    assert cli(["ensemble", "--name", "ens", "--members", "tiny7", "tiny8", "--weights", "tuned",
                "--models-dir", str(out), "--data", str(tiny_data)]) == 0
    card = json.loads((out / "ens.json").read_text())
    assert card["kind"] == "ensemble" and card["label_scheme"] == "fer2013"
    assert [m["name"] for m in card["members"]] == ["tiny7", "tiny8"]
    assert sum(m["weight"] for m in card["members"]) == pytest.approx(1.0)
    assert card["metrics"]["fer2013_private"]["samples"] == 21
    from model_core.card import load_cards
    cards = load_cards(out)                      # strict: the app accepts the ensemble and its members
    assert cards["ens"].kind == "ensemble" and [m["name"] for m in cards["ens"].members] == ["tiny7", "tiny8"]


def test_resume_continues_from_the_last_epoch(tiny_data, tmp_path):
    args = ["train", "--name", "r", "--arch", "tiny_cnn", "--batch-size", "32", "--data", str(tiny_data),
            "--out-dir", str(tmp_path / "m"), "--run-dir", str(tmp_path / "run"), "--limit", "40"]
    assert cli(args + ["--epochs", "1"]) == 0
    assert cli(args + ["--epochs", "2"]) == 0
    card = json.loads((tmp_path / "m" / "r.json").read_text())
    assert card["recipe"]["epochs_run"] == 2
    lines = (tmp_path / "run" / "history.csv").read_text().strip().splitlines()
    assert [l.split(",")[0] for l in lines[1:] if not l.startswith("epoch")] == ["0", "1"]


def test_cli_reports_missing_data_clearly(tmp_path, capsys):
    assert cli(["train", "--name", "x", "--data", str(tmp_path)]) == 2
    assert "neither fer2013.csv.gz nor fer2013.csv is there" in capsys.readouterr().err


def test_experiment_grid_has_one_command_per_row(capsys):
    assert cli(["experiments"]) == 0
    out = capsys.readouterr().out.splitlines()
    rows = [l for l in out[1:] if l.strip()]
    assert len(rows) == 9 * 5 * 2
    assert any("--arch vggface_vgg16 --balance smote --no-clean" in r for r in rows)


def test_onnx_export_is_named_in_the_card(trained):
    from model_core.card import load_card
    out, _ = trained
    assert cli(["export", "--model", str(out / "tiny7.json")]) == 0
    card = load_card(out / "tiny7.json")
    assert card.onnx_file == "tiny7.onnx" and (out / "tiny7.onnx").stat().st_size > 10_000

"""A 2-epoch train + ship + evaluate + ensemble run of the compact CNN on tiny data, through the CLI,
with balancing and cleaning as options of the one PyTorch trainer (`python -m training finetune`)."""

import json

import numpy as np
import pytest

pytest.importorskip("torch")

from training.cli import main as cli  # noqa: E402

COMPACT = [
    "--arch",
    "compact_cnn",
    "--init",
    "scratch",
    "--input-size",
    "48",
    "--batch-size",
    "16",
    "--warmup-epochs",
    "0",
    "--weight-decay",
    "1e-4",
    "--label-smoothing",
    "0",
    "--dropout",
    "0.5",
    "--seed",
    "3",
    "--threads",
    "1",
]


@pytest.fixture(scope="module")
def trained(tiny_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("models")
    runs = tmp_path_factory.mktemp("runs")
    for name, extra in (
        ("tiny7", []),
        ("tiny8", ["--scheme", "ferplus", "--targets", "soft", "--balance", "oversample"]),
    ):
        rc = cli(
            [
                "finetune",
                "--name",
                name,
                "--epochs",
                "2",
                "--data",
                str(tiny_data),
                "--out-dir",
                str(out),
                "--run-dir",
                str(runs / name),
            ]
            + COMPACT
            + extra
        )
        assert rc == 0
    return out, runs


def test_train_ships_model_and_card(trained):
    out, runs = trained
    card = json.loads((out / "tiny7.json").read_text())
    assert (out / "tiny7.onnx").stat().st_size > 1_000_000
    assert card["name"] == "tiny7" and card["file"] == card["onnx_file"] == "tiny7.onnx" and card["kind"] == "single"
    assert card["classes"] == ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
    assert card["input"] == {"size": 48, "channels": 1, "scale": "unit"} and card["tta"] == ["flip"]
    assert card["recipe"]["balance"] == "none" and card["recipe"]["epochs"] == 2
    assert card["recipe"]["clean_report"]["removed"] == 3
    assert set(card["metrics"]) == {"fer2013_public", "fer2013_private"}
    test = card["metrics"]["fer2013_private"]
    assert test["samples"] == 21 and np.array(test["confusion"]).sum() == 21
    assert 0.0 <= test["accuracy"] <= 1.0 and set(test["per_class"]) == set(card["classes"])
    assert card["recipe"]["command"].startswith("python -m training finetune --name tiny7 --arch compact_cnn")


def test_ferplus_card_has_eight_classes_and_was_balanced(trained):
    out, runs = trained
    card = json.loads((out / "tiny8.json").read_text())
    assert card["label_scheme"] == "ferplus" and len(card["classes"]) == 8 and "contempt" in card["classes"]
    assert set(card["metrics"]) == {"ferplus_val", "ferplus_test"}
    assert card["recipe"]["targets"] == "soft" and card["recipe"]["balance"] == "oversample"
    assert "--balance oversample" in card["recipe"]["command"]
    counts = json.loads((runs / "tiny8" / "summary.json").read_text())["train_class_counts"]
    present = [v for v in counts.values() if v]
    assert len(set(present)) == 1  # every class present was oversampled to the largest one
    assert card["metrics"]["ferplus_test"]["samples"] == 21


@pytest.mark.parametrize("method", ["smote", "class_weights"])
def test_every_balancing_method_is_one_option_of_the_trainer(tiny_data, tmp_path, method):
    from training.finetune import FinetuneConfig, finetune

    cfg = FinetuneConfig(
        name=method,
        arch="compact_cnn",
        init="scratch",
        input_size=48,
        epochs=1,
        batch_size=16,
        balance=method,
        data=str(tiny_data),
        run_dir=str(tmp_path),
        threads=1,
        limit=0,
    )
    messages = []
    summary = finetune(cfg, log=messages.append)
    counts = list(summary["train_class_counts"].values())
    assert any(f"balancing={method}" in m for m in messages)
    if method == "class_weights":
        assert "class weights" in " ".join(messages) and summary["train_faces"] == sum(counts)
    else:
        assert summary["train_faces"] == sum(counts) > 67  # synthetic faces were added
    assert np.isfinite(summary["history"][0]["loss"])


def test_adasyn_is_an_option_too_and_says_when_it_cannot_balance(tiny_data, tmp_path):
    """ADASYN needs classes that overlap; the tiny synthetic classes do not, and the trainer says so
    (tests/training/test_balance_clean.py checks ADASYN itself on overlapping data)."""
    from training.finetune import FinetuneConfig, finetune

    cfg = FinetuneConfig(
        name="ada",
        arch="compact_cnn",
        init="scratch",
        input_size=48,
        epochs=1,
        batch_size=16,
        balance="adasyn",
        data=str(tiny_data),
        run_dir=str(tmp_path),
        threads=1,
    )
    with pytest.raises(ValueError, match="adasyn cannot balance"):
        finetune(cfg, log=lambda m: None)
    with pytest.raises(ValueError, match="unknown balancing method"):
        finetune(FinetuneConfig(**{**cfg.__dict__, "balance": "undersample"}), log=lambda m: None)


def test_app_card_loader_accepts_the_shipped_cards(trained):
    from model_core.card import load_cards

    out, _ = trained
    assert {"tiny7", "tiny8"} <= set(load_cards(out))


def test_evaluate_reproduces_the_card_metrics(trained, tiny_data, tmp_path):
    out, _ = trained
    before = json.loads((out / "tiny7.json").read_text())["metrics"]["fer2013_private"]
    assert (
        cli(["evaluate", "--model", str(out / "tiny7.json"), "--data", str(tiny_data), "--figure-dir", str(tmp_path)])
        == 0
    )
    after = json.loads((out / "tiny7.json").read_text())["metrics"]["fer2013_private"]
    assert after["confusion"] == before["confusion"]
    assert (tmp_path / "confusion_tiny7_PrivateTest.png").exists()


def test_ensemble_card_across_label_schemes(trained, tiny_data):
    out, _ = trained
    assert (
        cli(
            [
                "ensemble",
                "--name",
                "ens",
                "--members",
                "tiny7",
                "tiny8",
                "--weights",
                "tuned",
                "--models-dir",
                str(out),
                "--data",
                str(tiny_data),
            ]
        )
        == 0
    )
    card = json.loads((out / "ens.json").read_text())
    assert card["kind"] == "ensemble" and card["label_scheme"] == "fer2013"
    assert [m["name"] for m in card["members"]] == ["tiny7", "tiny8"]
    assert sum(m["weight"] for m in card["members"]) == pytest.approx(1.0)
    assert card["metrics"]["fer2013_private"]["samples"] == 21
    from model_core.card import load_cards

    cards = load_cards(out)  # strict: the app accepts the ensemble and its members
    assert cards["ens"].kind == "ensemble" and [m["name"] for m in cards["ens"].members] == ["tiny7", "tiny8"]


def test_cli_reports_missing_data_clearly(tmp_path, capsys):
    assert (
        cli(
            [
                "finetune",
                "--name",
                "x",
                "--arch",
                "compact_cnn",
                "--init",
                "scratch",
                "--data",
                str(tmp_path),
                "--run-dir",
                str(tmp_path / "r"),
            ]
        )
        == 2
    )
    assert "neither fer2013.csv.gz nor fer2013.csv is there" in capsys.readouterr().err


def test_the_keras_commands_are_gone(capsys):
    """Issue 17: `train`, `export` and `experiments` were the Keras path; the one trainer is `finetune`."""
    for command in ("train", "export", "experiments"):
        with pytest.raises(SystemExit):
            cli([command, "--help"] if command != "experiments" else [command])
        assert "invalid choice" in capsys.readouterr().err


def test_measure_is_the_one_scorer(trained, tiny_data):
    """ship, ensemble, evaluate and benchmarks/accuracy score a card with `evaluate.measure` (issue 17):
    it gives the numbers the cards carry, and none of them computes metrics on its own."""
    import ast
    from pathlib import Path

    from training.evaluate import measure

    out, _ = trained
    card = json.loads((out / "tiny8.json").read_text())
    assert measure(out / "tiny8.json", data=str(tiny_data)) == card["metrics"]
    root = Path(__file__).resolve().parents[2]
    for path in ("training/finetune.py", "training/ensemble.py", "training/evaluate.py", "benchmarks/accuracy.py"):
        tree = ast.parse((root / path).read_text())
        callers = {
            f.name
            for f in ast.walk(tree)
            if isinstance(f, ast.FunctionDef)
            for c in ast.walk(f)
            if isinstance(c, ast.Call) and getattr(c.func, "id", "") == "classification_metrics"
        }
        assert callers <= {"measure"}, (path, callers)
        if path != "training/evaluate.py":
            assert "measure" in {getattr(c.func, "id", "") for c in ast.walk(tree) if isinstance(c, ast.Call)}, path


def test_one_card_builder_validated_by_model_core():
    from model_core.card import CardError
    from training.cards import ensemble_card, single_card

    spec = {"size": 48, "channels": 1, "scale": "unit"}
    classes = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
    card = single_card("m", "M", "m.onnx", classes, "fer2013", spec, ["flip"], {"arch": "compact_cnn"})
    assert card["file"] == card["onnx_file"] == "m.onnx" and card["kind"] == "single" and card["metrics"] == {}
    ens = ensemble_card("e", "E", [("m", 0.25), ("n", 0.75)], classes, "fer2013", spec, {})
    assert ens["members"] == [{"name": "m", "weight": 0.25}, {"name": "n", "weight": 0.75}]
    with pytest.raises(CardError, match="onnx"):
        single_card("m", "M", "m.keras", classes, "fer2013", spec, ["flip"], {})
    with pytest.raises(CardError, match="classes"):
        single_card("m", "M", "m.onnx", ["Happy"], "fer2013", spec, [], {})

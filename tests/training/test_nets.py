"""The network registry (training/nets.py) and the compact CNN (training/compact.py): every net builds,
its ONNX graph serves what the PyTorch network computes, its trainer-side input equals serving's, and a
two-stage run (FER-2013, then FER+ from its weights) ships a card that records both commands."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from model_core.preprocess import preprocess_faces  # noqa: E402
from training import nets  # noqa: E402
from training.compact import CompactCNN, build_onnx  # noqa: E402
from training.evaluate import onnx_probs  # noqa: E402
from training.finetune import FinetuneConfig, build_model, finetune, ship, upsample  # noqa: E402

COMPACT = dict(
    arch="compact_cnn",
    init="scratch",
    input_size=48,
    batch_size=16,
    lr=1e-3,
    warmup_epochs=0,
    weight_decay=1e-4,
    label_smoothing=0.0,
    dropout=0.5,
    rotate=12,
    zoom=0.12,
    erase_prob=0.25,
    seed=42,
    threads=1,
)


def _randomise_batch_norms(net, seed=0):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
                m.running_mean.copy_(torch.rand(m.num_features, generator=g) * 0.4 - 0.2)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) * 1.5 + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.copy_(torch.rand(m.num_features, generator=g) * 0.2 - 0.1)


def test_the_compact_cnn_is_the_keras_one():
    """Same layers as the Keras `compact_cnn` the cards were first trained with: 1,242,919 Keras
    weights for 7 classes, of which 2,432 are batch-norm moving statistics (buffers here)."""
    net = CompactCNN(7)
    params = sum(p.numel() for p in net.parameters())
    stats = sum(b.numel() for n, b in net.named_buffers() if "running" in n)
    assert params == 1_240_487 and params + stats == 1_242_919
    assert net(torch.zeros(2, 1, 48, 48)).shape == (2, 7)


@pytest.mark.parametrize("classes", [7, 8])
def test_compact_onnx_graph_serves_the_torch_network(tmp_path, classes):
    torch.manual_seed(classes)
    net = CompactCNN(classes)
    _randomise_batch_norms(net)  # so folding the batch norms matters
    net.eval()
    build_onnx(net.folded_arrays(), 48, tmp_path / "c.onnx")
    faces = np.random.default_rng(1).integers(0, 256, (5, 48, 48)).astype(np.uint8)
    spec = nets.get("compact_cnn").input_spec(48)
    served = onnx_probs(tmp_path / "c.onnx", faces, spec, [])
    with torch.no_grad():
        x = torch.from_numpy(preprocess_faces(faces, spec)).permute(0, 3, 1, 2)
        expected = torch.softmax(net(x), 1).numpy()
    assert served.shape == (5, classes)
    np.testing.assert_allclose(served, expected, atol=1e-5)


@pytest.mark.parametrize("name", sorted(nets.NETS))
def test_every_net_builds_and_its_trainer_input_equals_servings(name):
    """The trainer scales a batch on the device (`nets.to_input`); serving scales it with
    model_core.preprocess from the card's spec: the same numbers (issue 17 item 4, per net)."""
    net = nets.get(name)
    size = 64 if name == "mobilenet_v1" else net.default_size
    spec = net.input_spec(size)
    model = net.build(7, "batch", 0.0)
    assert hasattr(model, "groups") and hasattr(model, "folded_arrays")
    faces = np.random.default_rng(2).integers(0, 256, (3, 48, 48)).astype(np.uint8)
    x01 = torch.from_numpy(faces).float().div(255.0).unsqueeze(1)
    ours = nets.to_input(upsample(x01, size), spec).permute(0, 2, 3, 1).numpy()
    theirs = preprocess_faces(faces, spec)
    assert ours.shape == theirs.shape
    np.testing.assert_allclose(ours, theirs, atol=0.02 * max(1.0, float(np.abs(theirs).max())))


def test_unknown_net_and_a_pretrained_init_for_a_scratch_net_are_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown network"):
        nets.get("resnet50")
    with pytest.raises(ValueError, match="--init scratch"):
        build_model(FinetuneConfig(name="x", arch="compact_cnn", init="faceres"), 7)


def test_transfer_copies_every_layer_but_a_new_head():
    src = CompactCNN(7)
    dst = CompactCNN(8)
    before = dst.head.weight.detach().clone()
    copied = nets.transfer_state(dst, src.state_dict())
    assert copied == 18  # 8 convs, their 8 batch norms, the dense layer and its batch norm
    assert torch.equal(dst.convs["block3_b"][0].weight, src.convs["block3_b"][0].weight)
    assert torch.equal(dst.head.weight, before)


@pytest.fixture(scope="module")
def two_stage(tiny_data, tmp_path_factory):
    """The compact cards' recipe in miniature: FER-2013 from scratch, then FER+ (soft) from its weights."""
    root = tmp_path_factory.mktemp("runs")
    s1 = FinetuneConfig(name="c_s1", epochs=2, data=str(tiny_data), run_dir=str(root / "c_s1"), **COMPACT)
    first = finetune(s1, log=lambda m: None)
    s2 = FinetuneConfig(
        name="c_plus",
        scheme="ferplus",
        targets="soft",
        epochs=1,
        data=str(tiny_data),
        init_from=str(root / "c_s1" / "model.pt"),
        run_dir=str(root / "c_plus"),
        **{**COMPACT, "lr": 4e-4},
    )
    second = finetune(s2, log=lambda m: None)
    return root, first, second


def test_a_two_stage_run_ships_a_card_with_both_commands(two_stage, tiny_data, tmp_path):
    root, first, second = two_stage
    assert first["params"] == 1_240_487 and second["params"] == 1_240_744
    card = ship(root / "c_plus", tmp_path, data=str(tiny_data), verbose=False)
    assert card["input"] == {"size": 48, "channels": 1, "scale": "unit"}
    assert card["recipe"]["arch"] == "compact_cnn" and card["title"] == "Compact CNN, FER+ 8 classes"
    assert set(card["metrics"]) == {"ferplus_val", "ferplus_test"}
    stages = card["recipe"]["stages"]
    assert [s["name"] for s in stages] == ["c_s1", "c_plus"]
    assert "--init-from" in stages[1]["command"] and "--arch compact_cnn" in stages[0]["command"]
    assert stages[0]["command"].endswith(" --no-ship") and not stages[1]["command"].endswith(" --no-ship")
    assert card["recipe"]["command"] == " && ".join(s["command"] for s in stages)
    # validated by model_core and served by the app's registry, with the card's numbers
    from app.emotion import ModelRegistry
    from training.data import load_splits

    model = ModelRegistry(tmp_path, strict=True).get("c_plus")
    assert model.runtime == "onnxruntime" and (tmp_path / "c_plus.onnx").stat().st_size < 15e6
    s = load_splits(tiny_data, "ferplus")[0]["PrivateTest"]
    p = model.predict_probs(list(s.images))
    assert card["metrics"]["ferplus_test"]["accuracy"] == pytest.approx(float((p.argmax(1) == s.labels).mean()))
    saved = json.loads((tmp_path / "c_plus.json").read_text())
    assert saved["file"] == saved["onnx_file"] == "c_plus.onnx"


def test_the_commands_in_the_card_parse_back_to_the_runs(two_stage):
    """Each stage's command, fed to the CLI parser, gives the run's config back (resume would accept it)."""
    import argparse

    from training.cli import _add_finetune_args

    root, _, _ = two_stage
    from training.finetune import lineage

    for stage in lineage(root / "c_plus"):
        p = argparse.ArgumentParser()
        _add_finetune_args(p)
        p.add_argument("--no-ship", dest="ship", action="store_false")
        args = vars(p.parse_args(stage["command"].split()[4:]))
        cfg = json.loads((root / stage["name"] / "summary.json").read_text())["config"]
        for k in (
            "arch",
            "scheme",
            "targets",
            "init",
            "init_from",
            "epochs",
            "lr",
            "batch_size",
            "dropout",
            "weight_decay",
            "erase_prob",
            "rotate",
            "seed",
            "limit",
        ):
            assert args[k] == cfg[k], k

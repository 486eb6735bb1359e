"""training.quantize: the float16-behind-Cast graphs become float32 without changing a number, the
quantized graph is QDQ int8 (per channel, the head left float) and answers like the float one on the
faces it was calibrated on, the ship rule says no when any of its limits is crossed, and the card it
writes validates and records both models. Tiny models and synthetic faces: no dataset is read."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from onnx import TensorProto, numpy_helper

from model_core.card import load_card
from model_core.labels import FERPLUS_CLASSES
from model_core.predictor import Predictor
from training import quantize
from training.cli import build_parser
from training.heads import LabelledSplit
from training.onnx_graph import GraphBuilder

from .conftest import synthetic_faces


def small_cnn(path, storage="float16", seed=0, size=24, classes=8):
    """Conv-Clip (stride 2) -> depthwise Conv-Clip -> pointwise Conv-Clip -> pool -> Gemm -> Softmax,
    written by the nets' GraphBuilder (weights float16 behind a Cast)."""
    rng = np.random.default_rng(seed)
    g = GraphBuilder(storage)
    g.node("Transpose", ["input"], ["x0"], perm=[0, 3, 1, 2])
    x, cin = "x0", 3
    for name, cout, k, group, stride in (("c1", 16, 3, 1, 2), ("dw", 16, 3, 16, 1), ("pw", 32, 1, 1, 1)):
        w = rng.normal(0, np.sqrt(2.0 / (k * k * cin // group)), (cout, cin // group, k, k))
        g.node(
            "Conv",
            [x, g.const(f"{name}.w", w), g.const(f"{name}.b", rng.normal(0, 0.1, cout))],
            [f"{name}.c"],
            strides=[stride, stride],
            pads=[k // 2] * 4,
            group=group,
            kernel_shape=[k, k],
        )
        g.node(
            "Clip",
            [f"{name}.c", g.const(f"{name}.lo", np.float32(0)), g.const(f"{name}.hi", np.float32(6))],
            [f"{name}.y"],
        )
        x, cin = f"{name}.y", cout
    g.node("GlobalAveragePool", [x], ["pool"])
    g.node("Flatten", ["pool"], ["feat"], axis=1)
    g.node(
        "Gemm",
        ["feat", g.const("head.w", rng.normal(0, 0.3, (cin, classes))), g.const("head.b", np.zeros(classes))],
        ["logits"],
    )
    g.node("Softmax", ["logits"], ["probs"], axis=-1)
    return g.model("small", size, 3, classes, "test", path)


SPEC = {"size": 24, "channels": 3, "scale": "caffe_bgr", "source_size": 24}


def run(path_or_model, x):
    import onnxruntime as ort

    blob = path_or_model.SerializeToString() if isinstance(path_or_model, onnx.ModelProto) else str(path_or_model)
    s = ort.InferenceSession(blob, providers=["CPUExecutionProvider"])
    return s.run(None, {"input": x})[0]


def faces(n, seed=0):
    return synthetic_faces(n, np.arange(n) % 7, seed=seed)


def test_float32_model_folds_the_float16_casts_without_changing_an_output(tmp_path):
    from model_core.preprocess import preprocess_faces

    small_cnn(tmp_path / "m.onnx")
    f16 = onnx.load(str(tmp_path / "m.onnx"))
    assert sum(n.op_type == "Cast" for n in f16.graph.node) == 8  # 3 convs x (w, b) + head (w, b)
    f32 = quantize.float32_model(tmp_path / "m.onnx")
    assert not [n for n in f32.graph.node if n.op_type == "Cast"]
    assert {t.data_type for t in f32.graph.initializer} == {TensorProto.FLOAT}
    assert all(n.name for n in f32.graph.node)
    x = preprocess_faces(faces(6), SPEC)
    np.testing.assert_array_equal(run(f16, x), run(f32, x))


def test_quantized_graph_is_qdq_int8_per_channel_and_close_to_float(tmp_path):
    from model_core.preprocess import preprocess_faces

    small_cnn(tmp_path / "m.onnx")
    done = quantize.quantize_model(
        tmp_path / "m.onnx", tmp_path / "q.onnx", faces(64), SPEC, settings={"float_first": 0}
    )
    q = onnx.load(str(tmp_path / "q.onnx"))
    ops = [n.op_type for n in q.graph.node]
    assert done["quantize_nodes"] == ops.count("QuantizeLinear") > 0
    assert done["dequantize_nodes"] == ops.count("DequantizeLinear") > 0
    assert "Conv" in done["quantized_op_types"] and "Gemm" not in done["quantized_op_types"]
    inits = {t.name: t for t in q.graph.initializer}
    kernels = [t for t in q.graph.initializer if t.data_type == TensorProto.INT8 and len(t.dims) == 4]
    assert len(kernels) == 3  # the three conv kernels; the head's weights stay float
    # per output channel: every weight's DequantizeLinear has one scale per output channel
    for node in q.graph.node:
        if (
            node.op_type == "DequantizeLinear"
            and node.input[0] in inits
            and inits[node.input[0]].data_type == TensorProto.INT8
        ):
            w = numpy_helper.to_array(inits[node.input[0]])
            assert numpy_helper.to_array(inits[node.input[1]]).shape == (w.shape[0],)
    assert numpy_helper.to_array(inits["head.w"]).dtype == np.float32
    x = preprocess_faces(faces(64, seed=1), SPEC)  # calibration-like, not the calibration faces
    pf, pq = run(tmp_path / "m.onnx", x), run(tmp_path / "q.onnx", x)
    assert np.abs(pf - pq).max() < 0.05
    assert (pf.argmax(1) == pq.argmax(1)).mean() >= 0.9
    # and the settings matter: per tensor changes the weights' scales
    quantize.quantize_model(
        tmp_path / "m.onnx", tmp_path / "t.onnx", faces(64), SPEC, settings={"per_channel": False, "float_first": 0}
    )
    t = onnx.load(str(tmp_path / "t.onnx"))
    t_inits = {i.name: i for i in t.graph.initializer}
    scales = [
        numpy_helper.to_array(t_inits[n.input[1]])
        for n in t.graph.node
        if n.op_type == "DequantizeLinear"
        and n.input[0] in t_inits
        and t_inits[n.input[0]].data_type == TensorProto.INT8
    ]
    assert scales and all(s.size == 1 for s in scales)


def test_float_first_keeps_the_first_convolutions_float(tmp_path):
    small_cnn(tmp_path / "m.onnx")
    done = quantize.quantize_model(
        tmp_path / "m.onnx", tmp_path / "q.onnx", faces(32), SPEC, settings={"float_first": 1}
    )
    assert done["float_nodes"] == ["c1.c", "c1.y"]
    q = onnx.load(str(tmp_path / "q.onnx"))
    kernels = {t.name for t in q.graph.initializer if t.data_type == TensorProto.INT8 and len(t.dims) == 4}
    assert len(kernels) == 2 and not any(k.startswith("c1.") for k in kernels)
    assert numpy_helper.to_array(next(t for t in q.graph.initializer if t.name == "c1.w")).dtype == np.float32
    assert quantize.DEFAULT_SETTINGS["float_first"] == 3  # conv1, dw1, pw1 of the MobileNet


def test_calibration_reads_faces_as_served_with_every_tta_view():
    reader = quantize.face_batches(faces(10), SPEC, ["flip"], batch=4)
    sizes = []
    while (b := reader.get_next()) is not None:
        sizes.append(b["input"].shape[0])
        assert b["input"].dtype == np.float32 and b["input"].shape[1:] == (24, 24, 3)
    assert sizes == [8, 8, 4]  # 4 + 4 + 2 faces, each with its mirror


def metrics(acc, recalls, calm=0.01, ece=0.01):
    return {
        "accuracy": acc,
        "calm_face_rate": calm,
        "ece": ece,
        "per_class": {c: {"recall": r} for c, r in recalls.items()},
    }


def test_ship_rule_fails_on_each_limit_and_passes_within_all():
    base = metrics(0.85, {"happy": 0.90, "sad": 0.60})
    assert quantize.ship_verdict(base, metrics(0.848, {"happy": 0.895, "sad": 0.609}))["passes"]
    worse = quantize.ship_verdict(base, metrics(0.846, {"happy": 0.90, "sad": 0.60}))
    assert not worse["passes"] and not worse["accuracy_drop"]["ok"]
    recall = quantize.ship_verdict(base, metrics(0.85, {"happy": 0.90, "sad": 0.589}))
    assert not recall["passes"] and recall["recall_change"]["class"] == "sad"
    assert not quantize.ship_verdict(base, metrics(0.85, {"happy": 0.912, "sad": 0.60}))["passes"]  # up counts too
    assert not quantize.ship_verdict(base, metrics(0.85, {"happy": 0.9, "sad": 0.6}, calm=0.031))["passes"]
    assert not quantize.ship_verdict(base, metrics(0.85, {"happy": 0.9, "sad": 0.6}, ece=0.031))["passes"]


@pytest.fixture
def float_card(tmp_path):
    from model_core.card import write_card

    small_cnn(tmp_path / "tiny.onnx")
    write_card(
        tmp_path / "tiny.json",
        {
            "name": "tiny",
            "kind": "single",
            "file": "tiny.onnx",
            "onnx_file": "tiny.onnx",
            "classes": FERPLUS_CLASSES,
            "label_scheme": "ferplus",
            "input": SPEC,
            "tta": ["flip"],
            "metrics": {},
            "recipe": {"arch": "test", "command": "python -m training finetune --name tiny"},
            "short": {"en": "Tiny (recommended)"},
            "titles": {"vi": "Nhỏ"},
            "calibration": {"temperature": 0.8, "applied": "at_serving"},
        },
    )
    return tmp_path / "tiny.json"


def fake_splits():
    rng = np.random.default_rng(3)
    out = {}
    for k, n in (("PublicTest", 80), ("PrivateTest", 60)):
        labels = np.arange(n) % 8
        out[k] = LabelledSplit(synthetic_faces(n, labels % 7, seed=n), labels, np.eye(8)[labels], rng.random(n) < 0.3)
    return out


def test_quantize_card_writes_a_valid_card_recording_both_models(float_card, tmp_path):
    out = tmp_path / "out"
    card = quantize.quantize_card(
        float_card, "tiny_int8", out, settings={"float_first": 1}, splits=fake_splits(), log=lambda *a: None
    )
    loaded = load_card(out / "tiny_int8.json")  # validates as the app reads it
    assert loaded.file == "tiny_int8.onnx" and loaded.tta == ["flip"] and not loaded.default
    assert loaded.short == {"en": "Tiny int8"} and loaded.titles == {"vi": "Nhỏ (int8)"}  # not the float's menu name
    q = card["recipe"]["quantization"]
    assert q["from"] == "tiny" and q["settings"]["per_channel"] and q["settings"]["format"] == "QDQ"
    assert q["quantize_nodes"] > 0 and q["command"].startswith("python -m training quantize --card")
    assert set(card["metrics"]) == set(card["quantization"]["float_metrics"]) == {"ferplus_val", "ferplus_test"}
    for split in ("ferplus_val", "ferplus_test"):
        for m in (card["metrics"][split], card["quantization"]["float_metrics"][split]):
            assert {"accuracy", "per_class", "calm_face_rate", "ece"} <= set(m)
        verdict = card["quantization"]["verdict"][split]
        assert set(verdict) == {"passes", "accuracy_drop", "recall_change", "calm_face_rate", "ece"}
    assert card["quantization"]["float_served"]["temperature"] == 0.8  # the source as its card serves it
    assert card["calibration"]["applied"] == "at_serving" and card["calibration"]["temperature"] > 0
    assert card["quantization"]["size_bytes"]["int8"] == (out / "tiny_int8.onnx").stat().st_size
    probs = Predictor.from_card(loaded).predict_probs(list(faces(3)))
    assert probs.shape == (3, 8) and np.allclose(probs.sum(1), 1)
    json.dumps(card)  # plain JSON


def test_quantize_card_refuses_a_non_ferplus_card(float_card):
    from model_core.card import read_card, write_card

    raw = read_card(float_card)
    raw.update(label_scheme="fer2013", classes=["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral", "x"])
    write_card(float_card, raw)
    with pytest.raises(ValueError, match="FER\\+"):
        quantize.quantize_card(float_card, "nope", splits=fake_splits(), log=lambda *a: None)


def test_cli_parses_quantize():
    args = build_parser().parse_args(
        [
            "quantize",
            "--card",
            "models/ferplus_mobilenet_cal.json",
            "--name",
            "x_int8",
            "--tta",
            "none",
            "--calibration",
            "Percentile",
            "--per-tensor",
        ]
    )
    assert args.command == "quantize" and args.per_channel is False and args.calibration == "Percentile"
    assert args.op_types == "Conv,Clip" and args.float_first == 3

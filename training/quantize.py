"""A served classifier in int8 (issue 23, item 2): ONNX Runtime static quantization, QDQ format,
calibrated on FER+ val faces preprocessed exactly as serving preprocesses them
(`model_core.preprocess.preprocess_faces` with the card's input spec, every TTA view the card serves).

`python -m training quantize --card models/ferplus_mobilenet_cal.json --name ferplus_mobilenet_int8`

1. `float32_model`: the nets' writers store weights as float16 behind a Cast (training/onnx_graph.py);
   ONNX Runtime's quantizer wants float32 initialisers feeding the Conv and Gemm nodes, so each
   `Cast(float16 constant)` becomes the float32 constant it computes (exactly what ONNX Runtime folds
   at load). Nodes get names (their first output) so settings can name them.
2. `quantize_model`: `onnxruntime.quantization.quantize_static`, QDQ, activations uint8 (asymmetric),
   weights int8 (symmetric), per output channel by default (MobileNet's depthwise kernels differ by
   orders of magnitude between channels: one scale for a whole tensor crushes the small ones), on
   the op types in `settings["op_types"]` (by default the convolutions and their ReLU6: the 1024x8 head is ~0.1%
   of the work and stays float, so the class scores are read from float logits). The first
   `float_first` convolutions stay float too: ReLU6 outputs fill [0, 6] in every layer (0.2-3% of values
   saturate), so uint8 steps are 6/255 everywhere, and that noise costs the most at the high-resolution
   start (end-to-end SQNR falls from 41 dB after conv1 to 20 dB after pw1, then holds at 20-29 dB).
   On FER+ val (ferplus_mobilenet_cal): every conv in int8 lost 0.51 points of accuracy (98.6% of
   labels unchanged); conv1, dw1 and pw1 in float lose 0.03 (99.4% unchanged) for ~7% more time.
3. `quantize_card`: both models (the float source as served, the int8 one) scored on FER+ val and
   test with `training.heads.score` (accuracy, per-class recall, calm-face rate, ECE); the int8 model's
   temperature refitted on val (applied at serving) and its confidence rule chosen on val, as
   `training.heads.calibrate_card` does for any card; the ship rule (`SHIP_RULE`) checked on val (the
   one that selects) and reported on test. The card (built by `training.cards.single_card`, validated
   by `model_core.card`) records the float source, the settings, both models' metrics and the rule's
   verdict. Serving cost is measured by `python -m benchmarks quantize` (float and int8 side by side).
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import numpy as np

from .cards import single_card

# The bar for an int8 default: FER+ test accuracy within 0.3 points of float, every class's
# recall within 1 point, calm-face rate and ECE at most 3%.
SHIP_RULE = {"max_accuracy_drop": 0.003, "max_recall_change": 0.01, "max_calm_face_rate": 0.03, "max_ece": 0.03}

DEFAULT_SETTINGS = {
    "format": "QDQ",
    "activations": "QUInt8",  # asymmetric uint8: ReLU6 outputs are >= 0
    "weights": "QInt8",  # symmetric int8
    "per_channel": True,
    "calibration": "MinMax",  # MinMax | Entropy | Percentile
    "op_types": ["Conv", "Clip"],  # quantized; the head (Gemm, Softmax) stays float
    "float_first": 3,  # the first N convolutions (and their ReLU6) stay float
    "exclude": [],  # node names left float besides
    "calibration_faces": 0,  # FER+ val faces to calibrate on (0: all of them)
    "seed": 0,
}


# ---------------------------------------------------------------- the graph


def float32_model(src):
    """The ONNX model at `src` (path or ModelProto) with every Cast of a float16 initialiser replaced by
    the float32 initialiser it computes, and every node named (its first output's name if unnamed)."""
    import onnx
    from onnx import TensorProto, numpy_helper

    model = onnx.load(str(src)) if isinstance(src, (str, Path)) else onnx.ModelProto.FromString(src.SerializeToString())
    graph = model.graph
    inits = {t.name: t for t in graph.initializer}
    kept, folded = [], []
    for node in graph.node:
        to = next((a.i for a in node.attribute if a.name == "to"), None)
        if (
            node.op_type == "Cast"
            and node.input[0] in inits
            and to == TensorProto.FLOAT
            and inits[node.input[0]].data_type == TensorProto.FLOAT16
        ):
            value = numpy_helper.to_array(inits[node.input[0]]).astype(np.float32)
            folded.append(numpy_helper.from_array(value, node.output[0]))
        else:
            kept.append(node)
    used = {i for n in kept for i in n.input} | {o.name for o in graph.output}
    rest = [t for t in graph.initializer if t.name in used]
    del graph.node[:]
    graph.node.extend(kept)
    del graph.initializer[:]
    graph.initializer.extend(rest + folded)
    for node in graph.node:
        if not node.name:
            node.name = node.output[0]
    onnx.checker.check_model(model)
    return model


def face_batches(faces, spec: dict, tta=(), batch: int = 64, input_name: str = "input"):
    """Calibration data for ONNX Runtime's quantizer (a `CalibrationDataReader`): uint8 faces -> the
    model's input, batch by batch, preprocessed as served (`preprocess_faces`, the card's spec) with
    every TTA view the card serves."""
    from onnxruntime.quantization import CalibrationDataReader

    from model_core.preprocess import preprocess_faces, tta_views

    class FaceBatches(CalibrationDataReader):
        def __init__(self):
            self.i = 0

        def get_next(self):
            if self.i >= len(faces):
                return None
            x = preprocess_faces(faces[self.i : self.i + batch], spec)
            self.i += batch
            return {input_name: np.ascontiguousarray(np.concatenate(tta_views(x, tta)))}

        def rewind(self):
            self.i = 0

    return FaceBatches()


def first_convs(model, n: int) -> list[str]:
    """Names of the first `n` Conv nodes in graph order and of the activation (Clip / Relu) each feeds."""
    convs = [node for node in model.graph.node if node.op_type == "Conv"][: max(0, n)]
    outs = {node.output[0] for node in convs}
    acts = [node.name for node in model.graph.node if node.op_type in ("Clip", "Relu") and node.input[0] in outs]
    return [node.name for node in convs] + acts


def quantize_model(
    src, dst: str | Path, faces, spec: dict, tta=(), settings: dict | None = None, threads: int = 1
) -> dict:
    """`src` (an ONNX path or model, float16 storage allowed) quantized statically, calibrated on
    `faces` (uint8 crops, preprocessed as `spec` says) -> `dst`. Returns what was done: the settings,
    the number of QuantizeLinear / DequantizeLinear nodes, which op types were quantized, seconds."""
    import tempfile

    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    s = {**DEFAULT_SETTINGS, **(settings or {})}
    if s["format"] != "QDQ":
        raise ValueError("only the QDQ format is supported (what ONNX Runtime recommends on CPU)")
    t0 = time.time()
    with tempfile.TemporaryDirectory() as tmp:
        f32, pre = Path(tmp) / "float32.onnx", Path(tmp) / "pre.onnx"
        onnx.save(float32_model(src), str(f32))
        quant_pre_process(str(f32), str(pre), skip_symbolic_shape=True)
        model = onnx.load(str(pre))
        input_name = model.graph.input[0].name
        keep_float = first_convs(model, int(s["float_first"]))
        quantize_static(
            str(pre),
            str(dst),
            face_batches(faces, spec, list(tta), input_name=input_name),
            quant_format=QuantFormat.QDQ,
            per_channel=bool(s["per_channel"]),
            activation_type=getattr(QuantType, s["activations"]),
            weight_type=getattr(QuantType, s["weights"]),
            calibrate_method=getattr(CalibrationMethod, s["calibration"]),
            op_types_to_quantize=list(s["op_types"]),
            nodes_to_exclude=keep_float + list(s["exclude"]),
            extra_options={
                "CalibMaxIntermediateOutputs": 16,
                "WeightSymmetric": True,
                "ActivationSymmetric": False,
                "CalibTensorRangeSymmetric": False,
            },
        )
    out = onnx.load(str(dst))
    ops = [n.op_type for n in out.graph.node]
    quantized = sorted(
        {
            n.op_type
            for n in out.graph.node
            if n.op_type not in ("QuantizeLinear", "DequantizeLinear")
            and any(i.endswith("_DequantizeLinear_Output") for i in n.input)
        }
    )
    return {
        "settings": s,
        "quantize_nodes": ops.count("QuantizeLinear"),
        "dequantize_nodes": ops.count("DequantizeLinear"),
        "quantized_op_types": quantized,
        "float_nodes": keep_float + list(s["exclude"]),
        "calibration_faces": int(len(faces)),
        "seconds": round(time.time() - t0, 1),
    }


# ---------------------------------------------------------------- measuring both


def ship_verdict(float_m: dict, int8_m: dict, rule: dict = SHIP_RULE) -> dict:
    """The issue's rule on one split: accuracy drop, the largest per-class recall change, the int8
    model's calm-face rate and ECE, each with its limit; `passes` when all hold."""
    drop = float_m["accuracy"] - int8_m["accuracy"]
    changes = {c: int8_m["per_class"][c]["recall"] - float_m["per_class"][c]["recall"] for c in float_m["per_class"]}
    worst = max(changes, key=lambda c: abs(changes[c]))
    checks = {
        "accuracy_drop": {
            "value": round(drop, 4),
            "limit": rule["max_accuracy_drop"],
            "ok": drop <= rule["max_accuracy_drop"],
        },
        "recall_change": {
            "value": round(changes[worst], 4),
            "class": worst,
            "limit": rule["max_recall_change"],
            "ok": all(abs(v) <= rule["max_recall_change"] for v in changes.values()),
            "per_class": {c: round(v, 4) for c, v in changes.items()},
        },
        "calm_face_rate": {
            "value": round(int8_m["calm_face_rate"], 4),
            "limit": rule["max_calm_face_rate"],
            "ok": int8_m["calm_face_rate"] <= rule["max_calm_face_rate"],
        },
        "ece": {"value": round(int8_m["ece"], 4), "limit": rule["max_ece"], "ok": int8_m["ece"] <= rule["max_ece"]},
    }
    return {"passes": all(c["ok"] for c in checks.values()), **checks}


def load_val_test(data_dir=None) -> dict:
    """FER+ val and test (`training.heads.LabelledSplit`: labels, vote distributions, strong-neutral
    mask), without the training split."""
    from . import data as fer
    from .heads import LabelledSplit, strong_neutral_mask

    splits, votes, _ = fer.load_splits(data_dir, "ferplus", progress=False)
    return {
        k: LabelledSplit(splits[k].images, splits[k].labels, splits[k].soft, strong_neutral_mask(votes, splits[k].rows))
        for k in ("PublicTest", "PrivateTest")
    }


def _sha(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]


def quantize_card(
    card_path: str | Path,
    name: str,
    out_dir: str | Path | None = None,
    tta=None,
    settings: dict | None = None,
    data_dir=None,
    title: str = "",
    splits: dict | None = None,
    command: str = "",
    log=print,
) -> dict:
    """The card's network in int8 -> `<out_dir>/<name>.onnx` + card. `tta` (default: the card's) is what
    the int8 model is served with; the float reference is the source served with the same TTA (its own
    temperature when the TTA is the card's, else one refitted on val). Returns the card."""
    from model_core.card import load_card, metrics_key, read_card, write_card

    from .heads import (
        _softmax_mean,
        confidence_thresholds,
        confident_share,
        expected_calibration_error,
        fit_temperature,
        score,
        view_logits,
    )

    card_path = Path(card_path)
    src = read_card(card_path)
    source = load_card(card_path)
    if source.kind != "single" or source.label_scheme != "ferplus":
        raise ValueError(f"{source.name}: quantize takes a single FER+ model (FER+ val calibrates and selects)")
    out_dir = Path(out_dir) if out_dir else card_path.parent
    out_dir.mkdir(parents=True, exist_ok=True)
    tta = list(source.tta) if tta is None else [t for t in tta if t and t != "none"]
    s = {**DEFAULT_SETTINGS, **(settings or {})}
    splits = splits if splits is not None else load_val_test(data_dir)
    val, test = splits["PublicTest"], splits["PrivateTest"]
    faces = val.images
    if s["calibration_faces"] and s["calibration_faces"] < len(faces):
        idx = np.sort(np.random.default_rng(s["seed"]).choice(len(faces), s["calibration_faces"], replace=False))
        faces = faces[idx]
    onnx_path = out_dir / f"{name}.onnx"
    log(
        f"[quantize] {source.name} -> {onnx_path} on {len(faces)} FER+ val faces ({s['calibration']}, "
        f"{'per channel' if s['per_channel'] else 'per tensor'}, tta {'+'.join(tta) or 'none'})"
    )
    done = quantize_model(source.onnx_path, onnx_path, faces, source.input, tta, s)
    log(
        f"[quantize] {done['quantize_nodes']} QuantizeLinear, {done['dequantize_nodes']} DequantizeLinear, "
        f"{done['seconds']} s"
    )

    t0 = time.time()
    keys = {"val": metrics_key("ferplus", "PublicTest"), "test": metrics_key("ferplus", "PrivateTest")}
    data = {"val": val, "test": test}
    float_dict = {**src, "tta": tta}
    float_logits = {k: view_logits(float_dict, d.images, card_path.parent) for k, d in data.items()}
    int8_dict = {
        **{k: v for k, v in src.items() if k not in ("calibration", "confidence")},
        "name": name,
        "file": onnx_path.name,
        "onnx_file": onnx_path.name,
        "tta": tta,
        "metrics": {},
    }
    int8_logits = {k: view_logits(int8_dict, d.images, out_dir) for k, d in data.items()}
    log(f"[quantize] both models on FER+ val and test in {time.time() - t0:.0f} s")

    if tta == list(source.tta):  # the source as served: its own temperature (at serving or in its graph)
        float_t = (
            float(source.calibration["temperature"]) if source.calibration.get("applied") == "at_serving" else None
        )
    else:  # served otherwise than its card says: a temperature for that, fitted on val as for the int8 one
        float_t = fit_temperature(float_logits["val"], val.labels)
    float_probs = {k: _softmax_mean(z / (float_t or 1.0)) for k, z in float_logits.items()}
    int8_t = fit_temperature(int8_logits["val"], val.labels)
    raw_probs = {k: _softmax_mean(z) for k, z in int8_logits.items()}
    int8_probs = {k: _softmax_mean(z / int8_t) for k, z in int8_logits.items()}

    float_metrics = {keys[k]: score(float_probs[k], data[k], source.classes) for k in data}
    int8_metrics = {keys[k]: score(int8_probs[k], data[k], source.classes) for k in data}
    verdict = {keys[k]: ship_verdict(float_metrics[keys[k]], int8_metrics[keys[k]]) for k in data}
    rule = confidence_thresholds(int8_probs["val"], val.labels)
    agree = {keys[k]: float((float_probs[k].argmax(1) == int8_probs[k].argmax(1)).mean()) for k in data}

    recipe = dict(src.get("recipe", {}))
    recipe["quantization"] = {
        "from": source.name,
        "source_file": source.onnx_file,
        "source_sha256": _sha(source.onnx_path),
        "tool": "onnxruntime.quantization.quantize_static",
        **{k: v for k, v in done.items()},
        "calibrated_on": f"ferplus_val: {len(faces)} faces, preprocessed as served ({'+'.join(tta) or 'no'} TTA views)",
        "command": command
        or f"python -m training quantize --card {card_path.as_posix()} --name {name} --tta {'+'.join(tta) or 'none'}",
    }
    recipe["weights"] = (
        "int8 per output channel (symmetric); activations uint8; float head"
        if s["per_channel"]
        else "int8 per tensor; activations uint8"
    )
    extra = {k: src[k] for k in ("purpose", "attribution") if k in src}
    # its own names in the menu and titles (the float model's would read twice in the same menu)
    extra["short"] = {lang: v.split(" (")[0] + " int8" for lang, v in (src.get("short") or {}).items()}
    extra["titles"] = {lang: f"{v} (int8)" for lang, v in (src.get("titles") or {}).items()}
    extra = {k: v for k, v in extra.items() if v}
    card = single_card(
        name,
        title or f"{source.title} (int8)",
        onnx_path.name,
        source.classes,
        "ferplus",
        source.input,
        tta,
        recipe,
        int8_metrics,
        menu=True,
        **extra,
        calibration={
            "temperature": round(int8_t, 4),
            "applied": "at_serving",
            "ece_before": {keys[k]: expected_calibration_error(raw_probs[k], data[k].labels) for k in data},
            "ece_after": {keys[k]: int8_metrics[keys[k]]["ece"] for k in data},
            "fitted_on": "ferplus_val (log-loss, served TTA), on the int8 model's own outputs",
        },
        confidence={
            **{k: rule[k] for k in ("min_top", "min_margin", "coverage", "accuracy_confident")},
            "fitted_on": "ferplus_val",
            keys["test"]: confident_share(int8_probs["test"], test.labels, rule),
        },
        quantization={
            "float_source": source.name,
            "float_served": {
                "tta": tta,
                "temperature": None if float_t is None else round(float_t, 4),
                "temperature_in_graph": source.calibration.get("applied") == "in_graph",
            },
            "float_metrics": float_metrics,
            "agreement_with_float": agree,
            "ship_rule": {**SHIP_RULE, "selects_on": keys["val"], "reported_on": keys["test"]},
            "verdict": verdict,
            "size_bytes": {"float": source.onnx_path.stat().st_size, "int8": onnx_path.stat().st_size},
        },
    )
    write_card(out_dir / f"{name}.json", card)
    for k in ("val", "test"):
        f, q, v = float_metrics[keys[k]], int8_metrics[keys[k]], verdict[keys[k]]
        log(
            f"[quantize] {keys[k]}: float {f['accuracy']:.4f} int8 {q['accuracy']:.4f} (agree {agree[keys[k]]:.4f}); "
            f"worst recall change {v['recall_change']['value']:+.4f} ({v['recall_change']['class']}); calm "
            f"{q['calm_face_rate']:.4f}; ECE {q['ece']:.4f} -> {'passes' if v['passes'] else 'FAILS'}"
        )
    return card

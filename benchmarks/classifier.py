"""CPU cost of classifying one face (batch of one) per shipped model, through the app's predictor
(`model_core.predictor`): ONNX Runtime (what the app serves), and Keras beside it for models that have a
Keras file.

CPU milliseconds (process time) are what the live-webcam budget (<= 10 ms per face) is about; wall
time is shown beside them. The card's test-time augmentation is included (flip = two images).
"""
from __future__ import annotations

import numpy as np

from .common import REPO, percentiles, timed


def _params_onnx(path) -> int:
    import onnx
    from onnx import numpy_helper
    return int(sum(numpy_helper.to_array(t).size for t in onnx.load(str(path)).graph.initializer
                   if t.data_type in (1, 10)))  # float32 / float16 weights


KERAS, ONNX = "keras (compiled function)", "onnxruntime (1 thread)"


def run(args) -> dict:
    """Each single card's cost per face through `model_core.predictor` (the app's path), on every
    runtime it has: Keras when it has a .keras file, ONNX Runtime when exported."""
    from model_core.card import load_card
    from model_core.predictor import Predictor

    rows = []
    rng = np.random.default_rng(0)
    face = rng.integers(0, 256, (120, 120, 3), dtype=np.uint8)
    for path in sorted((REPO / "models").glob("*.json")):
        card = load_card(path)
        if card.kind == "ensemble":
            continue
        runtimes, params = {}, None
        if card.file.endswith(".keras"):
            runtimes[KERAS] = Predictor.from_card(card, runtime="keras")
            params = runtimes[KERAS].model.count_params()
        if card.onnx_path is not None and card.onnx_path.exists():
            runtimes[ONNX] = Predictor.from_card(card, runtime="onnx", threads=1)
            params = params or _params_onnx(card.onnx_path)
        ref = None
        for label, predictor in runtimes.items():
            probs = predictor.predict_probs([face])
            ref = probs if ref is None else ref
            wall, cpu = timed(lambda: predictor.predict_probs([face]), repeat=200)
            rows.append({"model": card.name, "runtime": label, "tta": list(card.tta), "params": params,
                         "cpu_ms": percentiles(cpu), "wall_ms": percentiles(wall),
                         "max_abs_diff_vs_keras": float(np.abs(probs - ref).max()),
                         "has_keras": KERAS in runtimes})
    _record_in_cards(rows)
    return {"rows": rows, "agreement": _onnx_agreement()}


def _onnx_agreement() -> list[dict]:
    """Does ONNX Runtime give the same labels as Keras on each model's whole test split?"""
    from model_core.card import load_card, metrics_key
    from model_core.predictor import Predictor
    from training.metrics import classification_metrics
    from training.data import load_splits

    out = []
    for path in sorted((REPO / "models").glob("*.json")):
        card = load_card(path)
        if card.kind == "ensemble" or not card.onnx_file or not card.file.endswith(".keras"):
            continue  # ONNX-only models have no Keras twin to agree with
        test = load_splits(scheme=card.label_scheme)[0]["PrivateTest"]
        a = Predictor.from_card(card, runtime="keras").predict_probs(test.images).argmax(1)
        b = Predictor.from_card(card, runtime="onnx", threads=0).predict_probs(test.images).argmax(1)
        acc = lambda p: classification_metrics(test.labels, p, card.classes)["accuracy"]
        out.append({"model": card.name, "split": metrics_key(card.label_scheme, "PrivateTest"),
                    "n": int(len(a)), "same_label": float((a == b).mean()),
                    "accuracy_keras": acc(a), "accuracy_onnx": acc(b)})
    return out


def _record_in_cards(rows) -> None:
    """Write each model's served cost into its card, so /api/models shows it (ensembles: the sum)."""
    from model_core.card import read_card, write_card

    from .common import machine

    served = {}
    for r in rows:  # the last runtime listed for a model is the one the app uses (ONNX when exported)
        served[r["model"]] = r
    cpu = machine()["cpu"]
    cost = {}
    for path in sorted((REPO / "models").glob("*.json")):
        card = read_card(path)
        if card["name"] in served:
            r = served[card["name"]]
            cost[card["name"]] = r["cpu_ms"]["median"]
            card["latency_ms"] = {"cpu_per_face": r["cpu_ms"]["median"], "wall_per_face": r["wall_ms"]["median"],
                                  "runtime": r["runtime"], "tta": r["tta"], "machine": cpu,
                                  "command": "python -m benchmarks classifier"}
            write_card(path, card)
    for path in sorted((REPO / "models").glob("*.json")):
        card = read_card(path)
        if card.get("kind") == "ensemble" and all(m["name"] in cost for m in card["members"]):
            card["latency_ms"] = {"cpu_per_face": round(sum(cost[m["name"]] for m in card["members"]), 2),
                                  "runtime": "sum of members", "machine": cpu,
                                  "command": "python -m benchmarks classifier"}
            write_card(path, card)


def markdown(res: dict) -> str:
    lines = []
    for a in res.get("agreement", []):
        lines.append(f"- `{a['model']}` on {a['split']} ({a['n']} faces): ONNX Runtime gives Keras' label on "
                     f"{a['same_label'] * 100:.2f}% of them; accuracy {a['accuracy_keras'] * 100:.2f}% (Keras) vs "
                     f"{a['accuracy_onnx'] * 100:.2f}% (ONNX).")
    if lines:
        lines.append("")
    lines += ["| model | runtime | TTA | params | CPU ms/face (median, p95) | wall ms (median) | max prob diff vs Keras |",
             "|---|---|---|---|---|---|---|"]
    for r in res["rows"]:
        diff = f"{r['max_abs_diff_vs_keras']:.1e}" if r.get("has_keras", True) else "no Keras file"
        lines.append(f"| {r['model']} | {r['runtime']} | {','.join(r['tta']) or '-'} | {r['params']:,} | "
                     f"{r['cpu_ms']['median']:.2f}, {r['cpu_ms']['p95']:.2f} | {r['wall_ms']['median']:.2f} | {diff} |")
    return "\n".join(lines)

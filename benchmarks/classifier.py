"""CPU cost of classifying one face (batch of one) per shipped model, through the app's predictor
(`model_core.predictor`) on ONNX Runtime, what the app serves. (Until issue 17 the compact CNNs were
also timed on Keras; Keras has left the project, and every model is an ONNX file.)

CPU milliseconds (process time) are what the live-webcam budget (<= 10 ms per face) is about; wall
time is shown beside them. The card's test-time augmentation is included (flip = two images).
"""

from __future__ import annotations

import numpy as np

from .common import REPO, percentiles, timed


def _params_onnx(path) -> int:
    import onnx
    from onnx import numpy_helper

    return int(
        sum(numpy_helper.to_array(t).size for t in onnx.load(str(path)).graph.initializer if t.data_type in (1, 10))
    )  # float32 / float16 weights


ONNX = "onnxruntime (1 thread)"


def run(args) -> dict:
    """Each single card's cost per face through `model_core.predictor` (the app's path)."""
    from model_core.card import load_card
    from model_core.predictor import Predictor

    rows = []
    rng = np.random.default_rng(0)
    face = rng.integers(0, 256, (120, 120, 3), dtype=np.uint8)
    for path in sorted((REPO / "models").glob("*.json")):
        card = load_card(path)
        if card.kind == "ensemble":
            continue
        predictor = Predictor.from_card(card, runtime="onnx", threads=1)
        predictor.predict_probs([face])
        wall, cpu = timed(lambda predictor=predictor: predictor.predict_probs([face]), repeat=200)
        rows.append(
            {
                "model": card.name,
                "runtime": ONNX,
                "tta": list(card.tta),
                "params": _params_onnx(card.onnx_path),
                "cpu_ms": percentiles(cpu),
                "wall_ms": percentiles(wall),
            }
        )
    _record_in_cards(rows)
    return {"rows": rows}


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
            card["latency_ms"] = {
                "cpu_per_face": r["cpu_ms"]["median"],
                "wall_per_face": r["wall_ms"]["median"],
                "runtime": r["runtime"],
                "tta": r["tta"],
                "machine": cpu,
                "command": "python -m benchmarks classifier",
            }
            write_card(path, card)
    for path in sorted((REPO / "models").glob("*.json")):
        card = read_card(path)
        if card.get("kind") == "ensemble" and all(m["name"] in cost for m in card["members"]):
            card["latency_ms"] = {
                "cpu_per_face": round(sum(cost[m["name"]] for m in card["members"]), 2),
                "runtime": "sum of members",
                "machine": cpu,
                "command": "python -m benchmarks classifier",
            }
            write_card(path, card)


def markdown(res: dict) -> str:
    lines = [
        "| model | runtime | TTA | params | CPU ms/face (median, p95) | wall ms (median) |",
        "|---|---|---|---|---|---|",
    ]
    for r in res["rows"]:
        lines.append(
            f"| {r['model']} | {r['runtime']} | {','.join(r['tta']) or '-'} | {r['params']:,} | "
            f"{r['cpu_ms']['median']:.2f}, {r['cpu_ms']['p95']:.2f} | {r['wall_ms']['median']:.2f} |"
        )
    return "\n".join(lines)

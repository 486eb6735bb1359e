"""Side by side with the `fer` package (PyPI), the library people reach for to do this job.

Both systems run in-process on the same pixels: the two benchmark photos of `benchmarks/images.py`,
JPEG-encoded at quality 85 and decoded with Pillow. fer runs in its own virtualenv, `.venv-peers`
(made by `benchmarks/setup_peers.sh`; nothing of it is imported into the project's venv), in a
subprocess started from here; our pipeline runs afterwards in this process, so they never share the
CPU. Timed per call (3 warm-up calls, then REPEAT timed ones): wall ms (time.perf_counter) and CPU ms
of the whole process (time.process_time, all threads).

- fer: `FER(mtcnn=False)` (OpenCV Haar cascade + mini-Xception, fer's defaults) and `FER(mtcnn=True)`
  (the TensorFlow `mtcnn` package with its defaults + the same mini-Xception), each timed as
  `detector.detect_emotions(bgr)` on the already decoded image (fer's API takes pixels, not bytes).
- ours: `decode_image(jpeg bytes)` + `FaceDetector.detect` + `ModelRegistry.classify` with the default
  model, i.e. what the server's `timings_ms` counts as decode + detect + classify (decode included,
  which fer is not charged for); with default settings, and with the live page's hint
  min_face = shorter side // 8 on (a). For that hint fer has no parameter on its MTCNN path, so the
  hinted fer row swaps in `mtcnn.MTCNN(min_face_size=...)` as its detector, else unchanged.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import numpy as np

from .common import REPO, machine, percentiles, timed
from .images import CASES, jpeg

PEER_VENV = REPO / ".venv-peers"
REPEAT = int(os.environ.get("BENCH_PEERS_REPEAT", "30"))
WARMUP = 3
MARK = "@@PEERS_JSON@@"

# Runs inside .venv-peers. argv: path of benchmarks/images.py, repeat, warmup, path of benchmarks/common.py.
PEER_SCRIPT = r"""
import importlib.util, io, json, os, sys, time
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import numpy as np
from PIL import Image

images_py, repeat, warmup, common_py = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]

def load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module

images = load("bench_images", images_py)
common = load("bench_common", common_py)   # the same timing loop as every other benchmark

import importlib.metadata as md
import cv2, fer, mtcnn, tensorflow as tf
from fer import FER
from mtcnn.mtcnn import MTCNN

def summary(res):
    return [{"box": [int(v) for v in r["box"]], "emotion": max(r["emotions"], key=r["emotions"].get),
             "score": round(float(max(r["emotions"].values())), 2)} for r in res]

detectors = {"fer_haar": FER(mtcnn=False), "fer_mtcnn": FER(mtcnn=True)}
out = {"versions": {"fer": md.version("fer"), "mtcnn": md.version("mtcnn"),
                    "tensorflow": tf.__version__, "keras": md.version("keras"),
                    "opencv": cv2.__version__, "numpy": np.__version__, "python": sys.version.split()[0]},
       "cases": {}}
for case, (make, n_faces) in images.CASES.items():
    body = images.jpeg(make())
    rgb = np.asarray(Image.open(io.BytesIO(body)).convert("RGB"))
    bgr = np.ascontiguousarray(rgb[:, :, ::-1])  # fer's API takes OpenCV's BGR
    runs = [(name, det, None) for name, det in detectors.items()]
    if case.startswith("a_"):
        hint = min(rgb.shape[:2]) // 8
        hinted = FER(mtcnn=True)
        hinted._mtcnn = MTCNN(min_face_size=hint)  # fer has no min-face knob on its MTCNN path
        runs.append(("fer_mtcnn", hinted, hint))
    for name, det, hint in runs:
        res = det.detect_emotions(bgr)
        wall, cpu = common.timed(lambda: det.detect_emotions(bgr), repeat, warmup)
        label = f"{case} {name}" + (f" min_face={hint}" if hint else "")
        out["cases"][label] = {"case": case, "system": name, "min_face": hint, "expected_faces": n_faces,
                               "faces": summary(res), "wall_ms": wall, "cpu_ms": cpu}
print("@@PEERS_JSON@@" + json.dumps(out), flush=True)
"""


def _peer_python() -> str:
    py = PEER_VENV / "bin" / "python"
    if not py.exists():
        raise SystemExit(f"{py} is missing: run `bash benchmarks/setup_peers.sh` first")
    return str(py)


def run_peer_script(script: str, *args: str, timeout: float = 3600) -> dict:
    """Runs `script` with .venv-peers' Python (its own process, nothing of the project's venv on its
    path) and returns the JSON it printed after MARK. Shared with benchmarks/videopeers.py."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    proc = subprocess.run(
        [_peer_python(), "-c", script, *args],
        cwd="/tmp",
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith(MARK)]
    if proc.returncode != 0 or not lines:
        sys.stderr.write(proc.stderr[-4000:])
        raise RuntimeError(f"peer measurement failed (exit {proc.returncode})")
    return json.loads(lines[-1][len(MARK) :])


def _run_peers() -> dict:
    return run_peer_script(
        PEER_SCRIPT,
        str(REPO / "benchmarks" / "images.py"),
        str(REPEAT),
        str(WARMUP),
        str(REPO / "benchmarks" / "common.py"),
    )


def _ours() -> dict:
    import onnxruntime

    from app import create_app
    from app.emotion import get_models
    from app.faces import get_detector
    from app.imaging import decode_image
    from app.pipeline import analyze

    app = create_app({"WARMUP": "sync"})
    with app.app_context():
        faces_det, registry = get_detector(), get_models()
    max_bytes, max_pixels = int(app.config["MAX_IMAGE_BYTES"]), int(app.config["MAX_PIXELS"])
    model = registry.default
    from importlib.metadata import version

    out = {
        "versions": {"mtcnn": version("mtcnn"), "onnxruntime": onnxruntime.__version__, "numpy": np.__version__},
        "detector": f"MTCNN ({faces_det.backend} backend)",
        "model": model,
        "cases": {},
    }
    for case, (make, n_faces) in CASES.items():
        body = jpeg(make())
        hints = [None]
        if case.startswith("a_"):
            hints.append(min(make().shape[:2]) // 8)
        for hint in hints:
            stages = {"decode": [], "detect": [], "classify": []}

            def once(body=body, hint=hint, stages=stages):
                t0 = time.perf_counter()
                decoded = decode_image(body, max_bytes, max_pixels)
                t = {"decode": time.perf_counter() - t0}
                results = analyze(
                    decoded.rgb, detector=faces_det, models=registry, model=model, min_face=hint, timings=t
                )  # the route's own face -> label path
                for k in stages:
                    stages[k].append(t[k] * 1e3)
                return results

            results = once()
            for _ in range(WARMUP - 1):
                once()
            for v in stages.values():
                v.clear()
            wall, cpu = timed(once, REPEAT, warmup=0)  # warmed up above, stage timings cleared
            label = f"{case} ours" + (f" min_face={hint}" if hint else "")
            out["cases"][label] = {
                "case": case,
                "system": "ours",
                "min_face": hint,
                "expected_faces": n_faces,
                "faces": [
                    {
                        "box": r.face.box,
                        "confidence": r.face.confidence,
                        "emotion": r.emotion,
                        "score": round(float(r.score), 2),
                    }
                    for r in results
                ],
                "wall_ms": wall,
                "cpu_ms": cpu,
                "stages_ms_median": {k: round(float(np.median(v)), 1) for k, v in stages.items()},
            }
    return out


def run(args) -> dict:
    peers = _run_peers()  # first, in its own process: the two never share the CPU
    ours = _ours()
    rows = {}
    for label, c in {**peers["cases"], **ours["cases"]}.items():
        c = dict(c)
        c["wall"], c["cpu"] = percentiles(c.pop("wall_ms")), percentiles(c.pop("cpu_ms"))
        rows[label] = c
    ratios, haar_ratios = {}, {}
    for case in CASES:
        fer_m, fer_h, mine = (rows.get(f"{case} {s}") for s in ("fer_mtcnn", "fer_haar", "ours"))
        if fer_m and mine:
            ratios[case] = round(fer_m["wall"]["median"] / mine["wall"]["median"], 2)
        if fer_h and mine:
            haar_ratios[case] = round(fer_h["wall"]["median"] / mine["wall"]["median"], 2)
    hinted_fer = [r for r in rows.values() if r["system"] == "fer_mtcnn" and r["min_face"]]
    for r in hinted_fer:
        mine = rows.get(f"{r['case']} ours min_face={r['min_face']}")
        if mine:
            ratios[f"{r['case']} min_face={r['min_face']}"] = round(r["wall"]["median"] / mine["wall"]["median"], 2)
    return {
        "machine": machine(),
        "repeat": REPEAT,
        "warmup": WARMUP,
        "peer_versions": peers["versions"],
        "our_versions": ours["versions"],
        "our_model": ours["model"],
        "rows": rows,
        "ratio_fer_mtcnn_over_ours": ratios,
        "ratio_fer_haar_over_ours": haar_ratios,
    }


NAMES = {
    "fer_haar": "fer, Haar cascade (`FER(mtcnn=False)`)",
    "fer_mtcnn": "fer, MTCNN (`FER(mtcnn=True)`)",
    "ours": "ours (decode + MTCNN on ONNX Runtime + ONNX classifier)",
}


def markdown(res: dict) -> str:
    pv = ", ".join(f"{k} {v}" for k, v in res["peer_versions"].items())
    ov = ", ".join(f"{k} {v}" for k, v in res["our_versions"].items())
    lines = [
        f"Both in-process on this machine, one after the other (never sharing the CPU), on the same "
        f"pixels: the two benchmark photos JPEG-encoded (q85) and decoded with Pillow. {res['warmup']} "
        f"warm-up calls, then {res['repeat']} timed calls per row; CPU ms is process time over all "
        f"threads. fer is timed on `detect_emotions(bgr)` (it takes decoded pixels); ours on "
        f"decode + detect + classify (what the server's `timings_ms` adds up), default model "
        f"`{res['our_model']}`.",
        "",
        f"Peer stack (`.venv-peers`, `benchmarks/setup_peers.sh`): {pv}. Ours: {ov}.",
        "",
        "| image | system | min_face | faces found | top emotions | median ms | p95 ms | CPU ms median (p95) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    order = {"fer_haar": 0, "fer_mtcnn": 1, "ours": 2}
    rows = sorted(res["rows"].values(), key=lambda c: (c["case"], order.get(c["system"], 9), c["min_face"] or 0))
    for c in rows:
        found = len(c["faces"])
        emos = ", ".join(f"{f['emotion']} {f['score']:.2f}" for f in c["faces"]) or "-"
        extra = ""
        if "stages_ms_median" in c:
            extra = " (" + ", ".join(f"{k} {v}" for k, v in c["stages_ms_median"].items()) + ")"
        lines.append(
            f"| {c['case']} | {NAMES.get(c['system'], c['system'])} | {c['min_face'] or 'default'} | "
            f"{found} of {c['expected_faces']} | {emos} | **{c['wall']['median']}**{extra} | "
            f"{c['wall']['p95']} | {c['cpu']['median']} ({c['cpu']['p95']}) |"
        )
    lines += [
        "",
        "Speed ratio, fer-MTCNN median wall / ours median wall (above 1: ours is faster): "
        + "; ".join(f"{k}: **{v}x**" for k, v in res["ratio_fer_mtcnn_over_ours"].items())
        + ". "
        "fer-Haar / ours: "
        + "; ".join(f"{k}: **{v}x**" for k, v in res.get("ratio_fer_haar_over_ours", {}).items())
        + ".",
        "",
        "Notes: ours is charged for JPEG decode and fer is not; our detector keeps faces with MTCNN "
        "confidence >= 0.9, fer keeps every MTCNN box; fer 22.4.0 hands its BGR image to MTCNN (which "
        "expects RGB) as it ships; fer's emotion scores are rounded to 2 decimals by fer. fer >= 22.5 "
        "moved its MTCNN path to facenet-pytorch (torch), so 22.4.0 is the newest fer whose MTCNN path "
        "runs on the TensorFlow `mtcnn` package; it needs TensorFlow 2.15 / Keras 2, so its stack is "
        "older than ours (see the versions above).",
    ]
    return "\n".join(lines)

"""What the page needs to run the whole pipeline in the browser (issue 18, private mode).

In private mode the page detects faces (the same MTCNN weights), crops, preprocesses and classifies
them on onnxruntime-web, and never sends a frame, a crop or a pixel. It fetches, once:

- `GET /api/ondevice`: the settings the browser must share with the server pipeline so that both
  engines behave the same (the detector's thresholds, pyramid step, size caps and candidate caps, the
  crop margin and tilt limits), where the runtime and the networks are, the reply catalogue's
  sizes (the reply is chosen in the browser; only its id and the language go to `/api/reply` for the
  voice), and a clip's limits and report rules (`POST /api/video`'s, for a clip analysed in the browser). Model cards (input size, scale, TTA, labels, calibration, confidence rule) come from
  `/api/models`, as for the server mode: the browser copies none of their numbers.
- `GET /api/detector/<pnet|rnet|onet>.onnx`: the detector's three networks, built from the mtcnn
  wheel's weights exactly as the server's detector builds them (app/mtcnn_ort.py).
- `GET /api/models/<name>.onnx`: a served model's ONNX file.
- `/static/vendor/onnxruntime-web/<version>/`: the pinned runtime, vendored (deploy/vendor-onnxruntime-web.sh,
  MANIFEST.json); nothing is fetched from anywhere else. The version is in the URL, so these files are
  served with a year's max-age and `immutable` (`runtime_cache_control`, and nginx likewise).
"""

from __future__ import annotations

import hashlib
import json
import threading
from functools import lru_cache

from flask import Blueprint, Response, current_app, jsonify, request, send_file, url_for

from model_core.preprocess import ALIGN_MAX_DEGREES, ALIGN_MIN_DEGREES, FACE_MARGIN

from . import assistant, mtcnn_ort, tracking, videoreport
from .emotion import get_models
from .errors import ApiError
from .faces import MIN_SIDE, MTCNN_MIN_FACE, get_detector
from .security import quote
from .videoapi import limits_from

bp = Blueprint("ondevice", __name__, url_prefix="/api")

RUNTIME_DIR = "vendor/onnxruntime-web"  # under static/; the files in <version>/, MANIFEST.json here
IMMUTABLE = "public, max-age=31536000, immutable"
THRESHOLDS = (0.6, 0.7, 0.8)  # MtcnnOrt.detect_faces' defaults, which the server uses
_graph_lock = threading.Lock()
_graphs: dict[str, bytes] = {}


@lru_cache(maxsize=1)
def runtime_manifest(static_folder: str) -> dict:
    with open(f"{static_folder}/{RUNTIME_DIR}/MANIFEST.json", encoding="utf-8") as fh:
        return json.load(fh)


def runtime_cache_control(filename: str) -> str | None:
    """The Cache-Control of a static file: a year and `immutable` for the runtime's versioned files
    (a new version is a new URL); None (Flask's `no-cache` + ETag) for the rest."""
    parts = filename.split("/")
    if "/".join(parts[:2]) == RUNTIME_DIR and len(parts) == 4 and parts[2][:1].isdigit():
        return IMMUTABLE
    return None


def detector_graph(name: str) -> bytes:
    """One of the detector's networks as ONNX bytes, built once per process."""
    with _graph_lock:
        if name not in _graphs:
            _graphs[name] = mtcnn_ort.build_graph(name).SerializeToString()
        return _graphs[name]


def _cacheable(response: Response, body: bytes) -> Response:
    response.headers["Cache-Control"] = "public, max-age=3600"
    response.set_etag(hashlib.sha256(body).hexdigest()[:32])
    # in place: 304 for a matching ETag, 206 for a Range (a resumed download), else the same response
    response.make_conditional(request, accept_ranges=True, complete_length=len(body))
    return response


@bp.get("/ondevice")
def settings():
    det = get_detector()
    registry = get_models()
    try:
        manifest = runtime_manifest(current_app.static_folder)
    except OSError:
        raise ApiError(503, "ondevice_unavailable", "the in-browser runtime is not installed on this server") from None
    base = url_for("static", filename=f"{RUNTIME_DIR}/{manifest['version']}/")
    models = {}
    for name, card in registry.cards.items():
        path = card.onnx_path if card.kind == "single" else None
        if path is not None and path.exists():
            models[name] = {"url": url_for("ondevice.model_file", name=name), "bytes": path.stat().st_size}
    lang = assistant.DEFAULT_LANG
    cfg = current_app.config
    limits = limits_from(cfg)
    return jsonify(
        {
            "runtime": {
                "package": manifest["package"],
                "version": manifest["version"],
                "entry": base + manifest["entry"],
                "wasm_paths": base,
                "bytes": sum(f["bytes"] for f in manifest["files"].values()),
            },
            "detector": {
                "networks": {n: url_for("ondevice.detector_file", name=n) for n in mtcnn_ort.NETWORKS},
                "bytes": {n: len(detector_graph(n)) for n in mtcnn_ort.NETWORKS},
                "min_confidence": det.min_confidence,
                "max_faces": det.max_faces,
                "max_side": det.max_side,
                "min_face_size": det.min_face_size,
                "scale_factor": det.scale_factor,
                "thresholds": list(THRESHOLDS),
                "mtcnn_min_face": MTCNN_MIN_FACE,
                "min_side": MIN_SIDE,
                "pnet_max_per_level": mtcnn_ort.PNET_MAX_PER_LEVEL,
                "rnet_max_candidates": mtcnn_ort.RNET_MAX_CANDIDATES,
                "onet_max_candidates": mtcnn_ort.ONET_MAX_CANDIDATES,
                "keypoints": list(mtcnn_ort.KEYPOINTS),
            },
            "tracking": tracking.settings(
                current_app.config["TRACK_FULL_EVERY"], current_app.config["TRACK_MAX_AGE_MS"]
            ),
            "crop": {
                "margin": FACE_MARGIN,
                "align_min_degrees": ALIGN_MIN_DEGREES,
                "align_max_degrees": ALIGN_MAX_DEGREES,
            },
            "models": models,
            # A clip analysed in the browser (static/js/videolocal.js) keeps POST /api/video's limits
            # and report rules (app/videoapi.py, app/videoreport.py).
            "video": {
                "fps": float(cfg["VIDEO_FPS"]),
                "max_fps": float(cfg["VIDEO_MAX_FPS"]),
                "max_bytes": limits.max_bytes,
                "max_pixels": limits.max_pixels,
                "max_side": limits.max_side,
                "max_seconds": limits.max_seconds,
                "max_frames": limits.max_frames,
                "analysis_side": limits.analysis_side,
                "smooth_s": videoreport.SMOOTH_S,
                "min_segment_s": videoreport.MIN_SEGMENT_S,
            },
            # Entry n of a label translates entry n in every language (tests/app/test_languages.py), so
            # the sizes of one language hold for all.
            "replies": {
                "counts": {k: len(v) for k, v in assistant.REPLIES[lang].items()},
                "hedged": {k: len(v) for k, v in assistant.HEDGED[lang].items()},
                "no_face": assistant.NO_FACE,
                "unsure_prefix": assistant.UNSURE,
            },
        }
    )


@bp.get("/detector/<name>.onnx")
def detector_file(name: str):
    if name not in mtcnn_ort.NETWORKS:
        raise ApiError(
            404, "unknown_network", f"no detector network {quote(name)}; known: {sorted(mtcnn_ort.NETWORKS)}"
        )
    body = detector_graph(name)
    return _cacheable(Response(body, mimetype="application/octet-stream"), body)


@bp.get("/models/<name>.onnx")
def model_file(name: str):
    card = get_models().cards.get(name)
    path = card.onnx_path if card is not None and card.kind == "single" else None
    if path is None or not path.exists():
        raise ApiError(404, "unknown_model", "no single model with an ONNX file by this name")
    response = send_file(path, mimetype="application/octet-stream", max_age=3600, conditional=True, etag=True)
    return response

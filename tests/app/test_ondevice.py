"""The server side of private mode (issue 18): the settings the browser shares with the server pipeline,
the detector's networks and the model files it downloads, and the vendored runtime.
The browser side runs in tests/e2e/test_ondevice.py."""

from __future__ import annotations

import hashlib
import json

import onnx

from app import mtcnn_ort
from app.security import SECURITY_HEADERS
from app.videoapi import limits_from
from app.videoreport import MIN_SEGMENT_S, SMOOTH_S
from model_core.preprocess import ALIGN_MAX_DEGREES, ALIGN_MIN_DEGREES, FACE_MARGIN
from tests.conftest import ROOT

VENDOR = ROOT / "static" / "vendor" / "onnxruntime-web"


def test_the_vendored_runtime_is_the_pinned_package():
    manifest = json.loads((VENDOR / "MANIFEST.json").read_text())
    assert manifest["package"] == "onnxruntime-web"
    script = (ROOT / "deploy" / "vendor-onnxruntime-web.sh").read_text()
    assert f"ORT_WEB_VERSION:-{manifest['version']}" in script, "the script pins another version"
    assert manifest["integrity"] in script
    assert sorted(p.name for p in VENDOR.iterdir()) == sorted([manifest["version"], "MANIFEST.json"])
    files = VENDOR / manifest["version"]  # the version is in the URL (issue 24: cached as immutable)
    assert sorted(p.name for p in files.iterdir()) == sorted(manifest["files"])
    for name, meta in manifest["files"].items():
        body = (files / name).read_bytes()
        assert len(body) == meta["bytes"] and hashlib.sha256(body).hexdigest() == meta["sha256"], name
        assert len(body) <= 15_000_000


def test_settings_are_the_servers_own(app, client):
    s = client.get("/api/ondevice").get_json()
    det = s["detector"]
    assert det["min_confidence"] == app.config["MIN_FACE_CONFIDENCE"]
    assert det["max_faces"] == app.config["MAX_FACES"] and det["max_side"] == app.config["DETECT_MAX_SIDE"]
    assert det["scale_factor"] == app.config["DETECT_SCALE_FACTOR"]
    assert det["keypoints"] == list(mtcnn_ort.KEYPOINTS)
    assert det["rnet_max_candidates"] == mtcnn_ort.RNET_MAX_CANDIDATES
    assert s["crop"] == {
        "margin": FACE_MARGIN,
        "align_min_degrees": ALIGN_MIN_DEGREES,
        "align_max_degrees": ALIGN_MAX_DEGREES,
    }
    assert s["runtime"]["entry"] == f"/static/vendor/onnxruntime-web/{s['runtime']['version']}/ort.wasm.min.mjs"
    counts = s["replies"]["counts"]
    assert counts["happy"] >= 1 and s["replies"]["no_face"] in counts
    # every single model with an ONNX file can run in the browser; ensembles run their members
    models = client.get("/api/models").get_json()["models"]
    singles = {m["name"] for m in models if m["kind"] == "single"}
    assert set(s["models"]) == singles
    for m in models:
        if m["kind"] == "ensemble":
            assert {x["name"] for x in m["members"]} <= set(s["models"])
    # a clip analysed in the browser keeps POST /api/video's limits and report rules
    video, limits = s["video"], limits_from(app.config)
    assert video["fps"] == app.config["VIDEO_FPS"] and video["max_fps"] == app.config["VIDEO_MAX_FPS"]
    assert video["max_seconds"] == app.config["VIDEO_MAX_SECONDS"] == limits.max_seconds
    assert (video["max_bytes"], video["max_pixels"], video["max_side"], video["max_frames"]) == (
        limits.max_bytes,
        limits.max_pixels,
        limits.max_side,
        limits.max_frames,
    )
    assert video["analysis_side"] == app.config["VIDEO_ANALYSIS_SIDE"]
    assert (video["smooth_s"], video["min_segment_s"]) == (SMOOTH_S, MIN_SEGMENT_S)


def test_the_browsers_tracker_reads_every_number_from_the_server(app, client):
    """static/js/ondevice/tracking.js (and the clip path, js/videolocal.js) keep no number of their own:
    every `t.<name>` / `tr.<name>` they read is in /api/ondevice's "tracking", with the server's value."""
    import re

    from app import tracking

    served = client.get("/api/ondevice").get_json()["tracking"]
    assert served == tracking.settings(app.config["TRACK_FULL_EVERY"], app.config["TRACK_MAX_AGE_MS"])
    read = set()
    for name in ("static/js/ondevice/tracking.js", "static/js/videolocal.js"):
        read |= set(re.findall(r"\btr?\.([a-z_]+)\b", (ROOT / name).read_text()))
    assert read and read <= set(served), sorted(read - set(served))
    assert served["max_tracked"] == tracking.MAX_TRACKED and served["live_fps"] == tracking.LIVE_FPS


def test_detector_networks_are_the_servers_graphs(client):
    for name in mtcnn_ort.NETWORKS:
        resp = client.get(f"/api/detector/{name}.onnx")
        assert resp.status_code == 200
        assert resp.data == mtcnn_ort.build_graph(name).SerializeToString()
        model = onnx.load_from_string(resp.data)
        assert model.ir_version <= 13, "onnxruntime-web reads IR versions up to 13"
        again = client.get(f"/api/detector/{name}.onnx", headers={"If-None-Match": resp.headers["ETag"]})
        assert again.status_code == 304
    assert client.get("/api/detector/../app.onnx").status_code == 404
    bad = client.get("/api/detector/xnet.onnx")
    assert bad.status_code == 404 and bad.get_json()["error"]["code"] == "unknown_network"


def test_model_files_are_served_by_card_name_only(client, models):
    name = models.default
    resp = client.get(f"/api/models/{name}.onnx")
    assert resp.status_code == 200
    assert resp.data == models.cards[name].onnx_path.read_bytes()
    for bad in ("ensemble", "nope", "..%2Fwsgi", "ferplus_mobilenet.json"):
        r = client.get(f"/api/models/{bad}.onnx")
        assert r.status_code == 404 and r.get_json()["error"]["code"] in ("unknown_model", "not_found"), bad


def test_the_runtime_is_served_with_types_the_browser_accepts(client):
    js = client.get(client.get("/api/ondevice").get_json()["runtime"]["entry"])
    assert js.status_code == 200 and js.mimetype == "text/javascript"
    wasm = client.get(client.get("/api/ondevice").get_json()["runtime"]["wasm_paths"] + "ort-wasm-simd-threaded.wasm")
    assert wasm.status_code == 200 and wasm.mimetype == "application/wasm"


def test_the_page_is_cross_origin_isolated_and_may_compile_wasm(client):
    resp = client.get("/")
    assert resp.headers["Cross-Origin-Opener-Policy"] == "same-origin"
    assert resp.headers["Cross-Origin-Embedder-Policy"] == "require-corp"
    csp = resp.headers["Content-Security-Policy"]
    assert "script-src 'self' 'wasm-unsafe-eval'" in csp and "'unsafe-eval'" not in csp.replace(
        "'wasm-unsafe-eval'", ""
    )
    assert SECURITY_HEADERS["Content-Security-Policy"] == csp
    assert 'id="private-mode"' in resp.get_data(as_text=True)


def test_a_long_detector_name_is_not_quoted_whole(client):
    """Issue 24: the 404 for /api/detector/<7 000 characters>.onnx quoted all of them back."""
    resp = client.get(f"/api/detector/{'n' * 7000}.onnx")
    assert resp.status_code == 404 and resp.get_json()["error"]["code"] == "unknown_network"
    assert len(resp.get_json()["error"]["message"]) < 250


def test_detector_and_model_files_honour_range(client, models):
    """Issue 24: the detector's route ignored Range (a resumed download started again); now it and the
    model route answer 206 with the asked bytes, and 416 for a range past the end."""
    for url, whole in (
        (f"/api/detector/{n}.onnx", mtcnn_ort.build_graph(n).SerializeToString()) for n in mtcnn_ort.NETWORKS
    ):
        assert client.get(url).headers.get("Accept-Ranges") == "bytes"
        part = client.get(url, headers={"Range": "bytes=100-1099"})
        assert part.status_code == 206 and part.data == whole[100:1100], url
        assert part.headers["Content-Range"] == f"bytes 100-1099/{len(whole)}"
        assert client.get(url, headers={"Range": f"bytes={len(whole)}-"}).status_code == 416
    name = models.default
    whole = models.cards[name].onnx_path.read_bytes()
    part = client.get(f"/api/models/{name}.onnx", headers={"Range": "bytes=0-9"})
    assert part.status_code == 206 and part.data == whole[:10]


def test_the_runtime_is_cached_for_good_and_the_page_revalidated(client):
    """Issue 24: the runtime's files (their version in the URL) were `no-cache`: every page load
    revalidated 14 MB. Now a year and `immutable`; the page's own files keep `no-cache`."""
    runtime = client.get("/api/ondevice").get_json()["runtime"]
    for url in (runtime["entry"], runtime["wasm_paths"] + "ort-wasm-simd-threaded.wasm"):
        resp = client.get(url)
        assert resp.status_code == 200
        assert resp.headers["Cache-Control"] == "public, max-age=31536000, immutable", url
    for url in ("/static/app.js", "/static/vendor/onnxruntime-web/MANIFEST.json"):
        assert client.get(url).headers["Cache-Control"] == "no-cache", url

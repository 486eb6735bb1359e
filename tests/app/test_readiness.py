"""Issue 24: /api/health is the readiness probe (deploy/kubernetes/deployment.yaml). It answers 503
while a worker's background warm-up is loading and when the warm-up left the detector or the default
model unloaded; 200 once it can serve, as before."""

from __future__ import annotations

import threading

import pytest

import app as app_package
from tests.conftest import models_dir_for_tests


@pytest.mark.no_model_needed
def test_health_is_503_until_the_background_warm_up_is_done(monkeypatch, tmp_path):
    release, started = threading.Event(), threading.Event()

    def slow_load(app):
        started.set()
        release.wait(30)

    monkeypatch.setattr(app_package, "_load_all", slow_load)
    app = app_package.create_app({"TESTING": True, "MODELS_DIR": str(tmp_path), "WARMUP": "background"})
    client = app.test_client()
    assert started.wait(10)
    resp = client.get("/api/health")
    assert resp.status_code == 503 and resp.headers["Retry-After"] == "1"
    assert resp.get_json()["status"] == "starting" and resp.get_json()["ready"] is False
    release.set()
    app.extensions["emotion.warmup"].wait(10)
    resp = client.get("/api/health")
    assert resp.status_code == 200 and resp.get_json()["ready"] is True
    assert resp.get_json()["status"] == "degraded"  # no model in tmp_path: up, but says so


def test_a_warm_up_that_loaded_nothing_is_not_ready(monkeypatch):
    if not any(models_dir_for_tests().glob("*.json")):
        pytest.skip("no model card")
    monkeypatch.setattr(app_package, "_load_all", lambda app: None)  # as if every load had failed
    app = app_package.create_app({"TESTING": True, "MODELS_DIR": str(models_dir_for_tests()), "WARMUP": "sync"})
    resp = app.test_client().get("/api/health")
    assert resp.status_code == 503 and resp.get_json()["status"] == "unavailable"


def test_a_warm_worker_is_ready(client):
    body = client.get("/api/health").get_json()
    assert body["ready"] is True and body["status"] == "ok"

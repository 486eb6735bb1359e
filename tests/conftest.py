"""Shared fixtures, the flaskr way: `app`, `client`, `runner`.

The app serves the real models/ folder with the real MTCNN detector. Before the trained models are
committed, EMOTION_TEST_MODELS_DIR (or the smoke model at /tmp/smoke_models, if present) stands in;
tests that need a model skip when there is none. Building the app loads the detector and every
model, so it is built once per session.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """A loopback port nobody listens on, for a server a test starts."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def gunicorn_bin() -> Path:
    here = Path(sys.executable).parent / "gunicorn"
    return here if here.exists() else Path(shutil.which("gunicorn") or "gunicorn")


def start_gunicorn(
    log_path: Path, workers: int = 2, warmup: str = "sync", loglevel: str = "info", env: dict | None = None
) -> tuple[subprocess.Popen, int]:
    """The README's gunicorn (gunicorn.conf.py) on a free loopback port, serving the test models;
    its output goes to `log_path`. Skips when there is no model or no gunicorn. `env` adds variables;
    the metrics port is off unless `env` names one (servers started side by side would share 9100)."""
    import pytest

    extra = dict(env or {})
    models = models_dir_for_tests()
    if not any(models.glob("*.json")):
        pytest.skip("no model card to serve")
    if not gunicorn_bin().exists():
        pytest.skip("gunicorn is not installed")
    port = free_port()
    env = dict(
        os.environ,
        WEB_CONCURRENCY=str(workers),
        EMOTION_MODELS_DIR=str(models),
        EMOTION_WARMUP=warmup,
        GUNICORN_LOGLEVEL=loglevel,
        PYTHONUNBUFFERED="1",
        METRICS_PORT="0",
    )
    env.update(extra)
    env.pop("PORT", None)
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [str(gunicorn_bin()), "-c", "gunicorn.conf.py", "-b", f"127.0.0.1:{port}", "wsgi:app"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return proc, port


def post_photo(port: int, photo: bytes, timeout: float = 30) -> tuple[int, dict]:
    """POST a JPEG as multipart `image` to /api/predict on a loopback port: (status, JSON reply)."""
    boundary = uuid.uuid4().hex
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="a.jpg"\r\n'
            f"Content-Type: image/jpeg\r\n\r\n"
        ).encode()
        + photo
        + f"\r\n--{boundary}--\r\n".encode()
    )
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("POST", "/api/predict", body, {"Content-Type": f"multipart/form-data; boundary={boundary}"})
        resp = conn.getresponse()
        return resp.status, json.loads(resp.read())
    finally:
        conn.close()


def models_dir_for_tests() -> Path:
    env = os.environ.get("EMOTION_TEST_MODELS_DIR")
    if env:
        return Path(env)
    shipped = ROOT / "models"
    if any(shipped.glob("*.json")):
        return shipped
    smoke = Path("/tmp/smoke_models")
    if any(smoke.glob("*.json")):
        return smoke
    return shipped


@pytest.fixture(scope="session")
def models_dir() -> Path:
    return models_dir_for_tests()


@pytest.fixture(scope="session")
def app(models_dir):
    from app import create_app

    app = create_app({"TESTING": True, "MODELS_DIR": str(models_dir), "WARMUP": "sync", "SPEECH_ENGINE": "espeak"})
    yield app


@pytest.fixture(scope="session")
def models(app):
    """The app's model registry, as the app reaches it."""
    from app.emotion import get_models

    with app.app_context():
        return get_models()


@pytest.fixture(scope="session")
def detector(app):
    """The app's face detector, as the app reaches it."""
    from app.faces import get_detector

    with app.app_context():
        return get_detector()


@pytest.fixture(scope="session")
def has_model(models) -> bool:
    return models.default is not None


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


def pytest_configure(config):
    config.addinivalue_line("markers", "no_model_needed: runs even when no model card is installed")

"""Shared fixtures, the flaskr way: `app`, `client`, `runner`.

The app serves the real models/ folder with the real MTCNN detector. Before the trained models are
committed, EMOTION_TEST_MODELS_DIR (or the smoke model at /tmp/smoke_models, if present) stands in;
tests that need a model skip when there is none. Building the app loads the detector and every
model, so it is built once per session.
"""
from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """A loopback port nobody listens on, for a server a test starts."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


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

    app = create_app({"TESTING": True, "MODELS_DIR": str(models_dir), "WARMUP": "sync",
                      "SPEECH_ENGINE": "espeak"})
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

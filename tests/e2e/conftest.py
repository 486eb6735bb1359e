"""Fixtures for the browser tests: the real server in a subprocess, Debian's Chromium through Playwright.

Run:  bash .ci/install-browser.sh && .venv/bin/python -m pytest tests/e2e -v

- The server is `python -m flask --app wsgi run` from the repo root on a free port, with the real
  detector and the shipped models (EMOTION_WARMUP=sync, so /api/health answers once they are loaded).
  Set E2E_BASE_URL=http://host:port to test a server that is already running instead.
- The browser is /usr/bin/chromium (override with E2E_CHROMIUM); Playwright never downloads one.
  When it is missing the tests FAIL (they are not skipped) and say to run .ci/install-browser.sh.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import pytest

from tests.conftest import ROOT, free_port

from .media import write_face_jpeg, write_face_y4m

CHROMIUM = os.environ.get("E2E_CHROMIUM", "/usr/bin/chromium")
SERVER_START_TIMEOUT_S = float(os.environ.get("E2E_SERVER_TIMEOUT", "240"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/api/health", timeout=5) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _require_models(url: str) -> None:
    with urllib.request.urlopen(url + "/api/models", timeout=10) as resp:
        models = json.load(resp).get("models") or []
    if not models:
        pytest.fail(
            "the server has no model: put the shipped models in models/ (or set EMOTION_MODELS_DIR) "
            "before the e2e tests"
        )


@pytest.fixture(scope="session")
def server_url(tmp_path_factory):
    if os.environ.get("E2E_BASE_URL"):
        url = os.environ["E2E_BASE_URL"].rstrip("/")
        if not _healthy(url):
            pytest.fail(f"E2E_BASE_URL={url} does not answer GET /api/health")
        _require_models(url)
        yield url
        return

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = tmp_path_factory.mktemp("server") / "server.log"
    env = dict(os.environ, EMOTION_WARMUP="sync", FLASK_DEBUG="0", PYTHONUNBUFFERED="1")
    cmd = [
        sys.executable,
        "-m",
        "flask",
        "--app",
        "wsgi",
        "run",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-reload",
        "--no-debugger",
        "--with-threads",
    ]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while not _healthy(url):
            if proc.poll() is not None or time.monotonic() > deadline:
                tail = log_path.read_text(errors="replace")[-4000:]
                why = (
                    f"exited with {proc.returncode}"
                    if proc.poll() is not None
                    else f"did not answer /api/health within {SERVER_START_TIMEOUT_S:.0f} s"
                )
                pytest.fail(f"the server ({' '.join(cmd)}) {why}; its log ends with:\n{tail}")
            time.sleep(0.5)
        _require_models(url)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="session")
def media(tmp_path_factory):
    d = tmp_path_factory.mktemp("media")
    return {"face_jpeg": write_face_jpeg(d / "astronaut.jpg"), "face_y4m": write_face_y4m(d / "astronaut.y4m")}


@pytest.fixture(scope="session")
def playwright_instance():
    if not os.path.exists(CHROMIUM):
        pytest.fail(
            f"{CHROMIUM} is missing: run `bash .ci/install-browser.sh` (installs Debian's chromium) "
            "before the e2e tests; Playwright's own browser download is not used."
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        yield p


def _launch(playwright_instance, extra_args=()):
    return playwright_instance.chromium.launch(
        executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS + list(extra_args)
    )


@pytest.fixture(scope="session")
def browser(playwright_instance):
    b = _launch(playwright_instance)
    yield b
    b.close()


@pytest.fixture(scope="session")
def camera_browser(playwright_instance, media):
    b = _launch(
        playwright_instance,
        [
            "--use-fake-ui-for-media-stream",
            "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-video-capture={media['face_y4m']}",
        ],
    )
    yield b
    b.close()


@dataclass
class PageLog:
    """What a page did: every request URL, console messages (errors apart), uncaught errors,
    /api/predict concurrency."""

    origin: str
    requests: list = field(default_factory=list)
    console_errors: list = field(default_factory=list)
    console: list = field(default_factory=list)  # (type, text) of every console message, warnings too
    page_errors: list = field(default_factory=list)
    predict_in_flight: int = 0
    predict_max_in_flight: int = 0
    predict_requests: int = 0

    def attach(self, page):
        def is_predict(req):
            return req.url.split("?")[0].endswith("/api/predict")

        def on_request(req):
            self.requests.append(req.url)
            if is_predict(req):
                self.predict_requests += 1
                self.predict_in_flight += 1
                self.predict_max_in_flight = max(self.predict_max_in_flight, self.predict_in_flight)

        def on_done(req):
            if is_predict(req):
                self.predict_in_flight -= 1

        page.on("request", on_request)
        page.on("requestfinished", on_done)
        page.on("requestfailed", on_done)

        def on_console(msg):
            self.console.append((msg.type, msg.text))
            if msg.type == "error":
                self.console_errors.append(msg.text)

        page.on("console", on_console)
        page.on("pageerror", lambda err: self.page_errors.append(str(err)))

    def foreign_requests(self):
        out = []
        for url in self.requests:
            parts = urlsplit(url)
            if parts.scheme in ("data", "blob"):
                continue
            if f"{parts.scheme}://{parts.netloc}" != self.origin:
                out.append(url)
        return out

    def assert_clean(self):
        assert not self.foreign_requests(), f"requests to another origin: {self.foreign_requests()}"
        assert not self.page_errors, f"uncaught errors in the page: {self.page_errors}"
        assert not self.console_errors, f"console errors (CSP violations show here): {self.console_errors}"


def _open(browser, server_url, **context_kwargs):
    context = browser.new_context(accept_downloads=True, **context_kwargs)
    context.set_default_timeout(20_000)
    page = context.new_page()
    log = PageLog(origin=server_url)
    log.attach(page)
    return context, page, log


def _close(context) -> None:
    """Close a test's context. A route handler may still be relaying a live frame's answer (the page
    sends one as soon as the last is in): its routes are removed first, errors of handlers still running
    ignored, so a closing page is never reported as the next test's error."""
    context.unroute_all(behavior="ignoreErrors")
    for page in context.pages:
        page.unroute_all(behavior="ignoreErrors")
    context.close()


@pytest.fixture
def app_page(browser, server_url):
    """A fresh page on the app (1280x900), with its PageLog: `page, log = app_page`."""
    context, page, log = _open(browser, server_url, viewport={"width": 1280, "height": 900})
    yield page, log
    _close(context)


@pytest.fixture
def open_page(browser, server_url):
    """Open the app in a fresh context with custom options (viewport, init script)."""
    contexts = []

    def _make(init_script: str | None = None, **context_kwargs):
        context, page, log = _open(browser, server_url, **context_kwargs)
        contexts.append(context)
        if init_script:
            page.add_init_script(init_script)
        return page, log

    yield _make
    for c in contexts:
        _close(c)


@pytest.fixture
def camera_page(camera_browser, server_url):
    context, page, log = _open(camera_browser, server_url, viewport={"width": 1280, "height": 900})
    yield page, log
    _close(context)

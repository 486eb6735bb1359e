"""A small load test against the production server: gunicorn with the repo's gunicorn.conf.py.

Two workers on a free loopback port; 20 concurrent clients post a 640x480 JPEG with one real face for
LOAD_SECONDS. It is a regression guard (no 5xx, no dropped connection, bounded latency), not a
benchmark: the p95 bound is generous because CI machines are small and busy.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.app import imagegen as g
from tests.conftest import start_gunicorn

requests = pytest.importorskip("requests")

CLIENTS = 20
LOAD_SECONDS = float(os.environ.get("LOAD_TEST_SECONDS", "15"))
P95_LIMIT_S = float(os.environ.get("LOAD_TEST_P95_LIMIT_S", "10"))
START_TIMEOUT_S = 120  # two workers each load the detector and the models (about a second each when idle)


def webcam_frame() -> bytes:
    """640x480, the astronaut's face near (228, 80, 104, 134): what a webcam snapshot looks like."""
    big = np.asarray(Image.fromarray(g.astronaut()).resize((640, 640), Image.BILINEAR))
    return g.jpeg(big[:480], quality=85)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    log_path = tmp_path_factory.mktemp("gunicorn") / "gunicorn.log"
    proc, port = start_gunicorn(log_path, workers=2, warmup="background", loglevel="warning")
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_until_ready(proc, base, log_path)
        yield base, proc, log_path
    finally:
        _stop(proc)


def _log_tail(log_path: Path) -> str:
    return log_path.read_text(errors="replace")[-3000:]


def _wait_until_ready(proc, base: str, log_path: Path) -> None:
    """Up: /api/health answers. Ready: a first predict succeeds, and (best effort) both workers have
    their detector and models loaded, so that the load phase measures serving, not start-up."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        if proc.poll() is not None:
            pytest.fail(f"gunicorn exited with {proc.returncode}:\n{_log_tail(log_path)}")
        if time.monotonic() > deadline:
            pytest.fail(f"gunicorn did not answer /api/health in {START_TIMEOUT_S} s:\n{_log_tail(log_path)}")
        try:
            if requests.get(base + "/api/health", timeout=2).status_code == 200:
                break
        except requests.RequestException:
            pass
        time.sleep(0.3)
    resp = requests.post(
        base + "/api/predict", files={"image": ("frame.jpg", webcam_frame(), "image/jpeg")}, timeout=START_TIMEOUT_S
    )
    assert resp.status_code == 200, resp.text[:300]
    assert len(resp.json()["faces"]) == 1
    warm = set()
    while len(warm) < 2 and time.monotonic() < deadline:
        try:
            body = requests.get(base + "/api/health", timeout=5).json()  # a new connection each time
        except requests.RequestException:
            body = {}
        if body.get("detector_loaded") and body.get("default") in body.get("models_loaded", []):
            warm.add(body["pid"])
        else:
            time.sleep(0.2)


def _stop(proc) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)  # gunicorn: graceful shutdown of master and workers
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def test_twenty_clients_for_fifteen_seconds(server):
    base, proc, log_path = server
    frame = webcam_frame()
    stop_at = time.monotonic() + LOAD_SECONDS
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    errors: list[str] = []
    face_counts: set[int] = set()
    lock = threading.Lock()

    def client():
        with requests.Session() as session:
            while time.monotonic() < stop_at:
                t0 = time.perf_counter()
                try:
                    resp = session.post(
                        base + "/api/predict", files={"image": ("frame.jpg", frame, "image/jpeg")}, timeout=60
                    )
                except requests.RequestException as exc:
                    with lock:
                        errors.append(f"{type(exc).__name__}: {exc}"[:200])
                    continue
                elapsed = time.perf_counter() - t0
                with lock:
                    statuses[resp.status_code] = statuses.get(resp.status_code, 0) + 1
                    latencies.append(elapsed)
                    if resp.status_code == 200:
                        face_counts.add(len(resp.json()["faces"]))

    threads = [threading.Thread(target=client, name=f"load-{i}") for i in range(CLIENTS)]
    t_start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=LOAD_SECONDS + 90)
    wall = time.monotonic() - t_start
    assert not any(t.is_alive() for t in threads), "a client hung"

    lat = np.array(latencies)
    p50, p95 = (float(np.percentile(lat, q)) for q in (50, 95)) if len(lat) else (float("nan"),) * 2
    report = (
        f"{len(lat)} requests in {wall:.1f} s ({len(lat) / wall:.1f}/s) by {CLIENTS} clients; "
        f"statuses {statuses}; p50 {p50:.2f} s, p95 {p95:.2f} s, max {lat.max() if len(lat) else 0:.2f} s; "
        f"{len(errors)} connection errors {errors[:3]}"
    )
    print("\nload:", report)
    assert not errors, report
    assert not any(code >= 500 for code in statuses), report + "\n" + _log_tail(log_path)
    assert statuses.get(200, 0) == len(lat) and len(lat) >= CLIENTS, report
    assert face_counts == {1}, report
    assert p95 < P95_LIMIT_S, report
    assert proc.poll() is None, "gunicorn died under load:\n" + _log_tail(log_path)
    # and it still answers afterwards
    assert requests.get(base + "/api/health", timeout=10).status_code == 200


def test_server_stops_cleanly(server):
    base, proc, log_path = server
    _stop(proc)
    assert proc.returncode == 0, _log_tail(log_path)
    with pytest.raises(requests.RequestException):
        requests.get(base + "/api/health", timeout=2)

"""Issue 11: the Dockerfile and deploy/compose.yaml, built and run for real with podman.

Slow (a base image, the app image and the proxy image: ~3 minutes from nothing, ~1 minute once the
base exists), so it runs only with EMOTION_CONTAINER_TESTS=1 and where podman is installed (Debian:
`apt-get install podman runc netavark aardvark-dns podman-compose debootstrap`, then
deploy/podman/setup-host.sh). The base image: $EMOTION_BASE, else localhost/emotion-base:bookworm
(made by deploy/podman/make-base.sh when debootstrap is there), else python:3.11-slim (pulled).
tests/app/test_scaling.py is the loopback twin of the compose test and always runs.

Containers publish on 127.0.0.1 only; every wait is bounded; everything started is removed.
"""

from __future__ import annotations

import http.client
import os
import shutil
import subprocess
import time
import uuid

import pytest

from tests.app.imagegen import astronaut, jpeg
from tests.conftest import ROOT, free_port, post_photo

PODMAN = shutil.which("podman")
COMPOSE = shutil.which("podman-compose")
STANDIN = "localhost/emotion-base:bookworm"
APP_IMAGE = "localhost/emotion-assistant:test"
PROXY_IMAGE = "localhost/emotion-proxy:test"

pytestmark = [
    pytest.mark.skipif(
        os.environ.get("EMOTION_CONTAINER_TESTS") != "1",
        reason="container build tests are slow: set EMOTION_CONTAINER_TESTS=1 to run them",
    ),
    pytest.mark.skipif(PODMAN is None, reason="podman is not installed (see this module's docstring)"),
]


def run(cmd, timeout, **kw):
    return subprocess.run(cmd, cwd=ROOT, timeout=timeout, capture_output=True, text=True, **kw)


def check(cmd, timeout, **kw):
    res = run(cmd, timeout, **kw)
    assert res.returncode == 0, (
        f"{' '.join(map(str, cmd))} -> {res.returncode}\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
    )
    return res


def wait_health(port: int, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=3)
            conn.request("GET", "/api/health")
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.5)
    pytest.fail(f"nothing answered /api/health on 127.0.0.1:{port} within {seconds} s")


@pytest.fixture(scope="module")
def base_image():
    base = os.environ.get("EMOTION_BASE")
    if base:
        return base
    if run([PODMAN, "image", "exists", STANDIN], 30).returncode == 0:
        return STANDIN
    if shutil.which("debootstrap") and os.geteuid() == 0:
        check(["bash", "deploy/podman/make-base.sh", STANDIN], 900)
        return STANDIN
    return "python:3.11-slim"


@pytest.fixture(scope="module")
def app_image(base_image):
    check(["bash", "deploy/build-image.sh", "--base", base_image, "--tag", APP_IMAGE], 900)
    return APP_IMAGE


def test_the_image_builds_runs_and_answers_a_real_photo(app_image):
    port = free_port()
    name = f"emotion-test-{uuid.uuid4().hex[:8]}"
    check([PODMAN, "run", "-d", "--rm", "--name", name, "-p", f"127.0.0.1:{port}:8000", app_image], 120)
    try:
        wait_health(port)
        status, reply = post_photo(port, jpeg(astronaut()))
        assert status == 200, reply
        assert reply["emotion"] == "happy" and len(reply["faces"]) == 1, reply
        user = check([PODMAN, "exec", name, "id", "-u"], 30).stdout.strip()
        assert user == "10001", "the app must not run as root in its container"
    finally:
        run([PODMAN, "rm", "-f", "-t", "5", name], 60)


@pytest.mark.skipif(COMPOSE is None, reason="podman-compose is not installed (apt-get install podman-compose)")
def test_compose_spreads_requests_and_survives_a_killed_replica(app_image, base_image):
    project = f"emotiontest{uuid.uuid4().hex[:6]}"
    port = free_port()
    env = dict(
        os.environ,
        EMOTION_IMAGE=app_image,
        EMOTION_BASE=base_image,
        EMOTION_PROXY_IMAGE=PROXY_IMAGE,
        EMOTION_PORT=str(port),
        EMOTION_REPLICAS="3",
        WEB_CONCURRENCY="1",
    )
    compose = [COMPOSE, "-p", project, "-f", "deploy/compose.yaml"]
    try:
        check(compose + ["build"], 600, env=env)
        check(compose + ["up", "-d"], 300, env=env)
        wait_health(port)
        replicas = [f"{project}_app_{i}" for i in (1, 2, 3)]
        photo = jpeg(astronaut())

        def served_by() -> dict[str, int]:
            return {
                c: run([PODMAN, "logs", c], 30).stdout.count("POST /api/predict")
                + run([PODMAN, "logs", c], 30).stderr.count("POST /api/predict")
                for c in replicas
            }

        for _ in range(9):
            status, reply = post_photo(port, photo)
            assert status == 200 and reply["emotion"] == "happy", reply
        counts = served_by()
        assert all(n > 0 for n in counts.values()), f"nginx should reach every replica: {counts}"

        check([PODMAN, "kill", replicas[1]], 60)
        for _ in range(9):
            status, reply = post_photo(port, photo)
            assert status == 200 and reply["emotion"] == "happy", reply
        after = served_by()
        assert after[replicas[0]] + after[replicas[2]] == counts[replicas[0]] + counts[replicas[2]] + 9, (counts, after)
    finally:
        run(compose + ["down", "-t", "5"], 300, env=env)
        run([PODMAN, "network", "rm", "-f", f"{project}_default"], 60)  # podman-compose 1.0 leaves it

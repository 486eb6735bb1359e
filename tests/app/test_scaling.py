"""Issue 11, beyond one machine, on loopback: several independent gunicorn instances (each a stand-in
for one app container of deploy/compose.yaml) behind deploy/nginx/emotion.conf.template with an
upstream of several servers, which is what nginx makes of compose's service name "app" resolving to
one address per replica. Requests must be spread over the instances, and the service must keep
answering, uploads included, when one instance is killed outright.

Skips where nginx is not installed (.ci/run installs nginx-light, so CI runs it). Every server listens
on 127.0.0.1 only; request counts and waits are bounded.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import time

import pytest

from tests.app.imagegen import astronaut, jpeg
from tests.app.test_server import NGINX, _answers, render_nginx, start_gunicorn, stop
from tests.conftest import free_port, post_photo

INSTANCES = 3


def _wait(port: int, proc: subprocess.Popen, log, what: str, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while not _answers(port):
        if proc.poll() is not None or time.monotonic() > deadline:
            text = log.read_text(errors="replace")[-3000:] if hasattr(log, "read_text") else str(log)
            pytest.fail(f"{what} did not start (exit {proc.poll()}):\n{text}")
        time.sleep(0.3)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """{"nginx": port, "apps": [(proc, port), ...]}: INSTANCES one-worker gunicorns behind one nginx."""
    if NGINX is None:
        pytest.skip("nginx is not installed (apt-get install nginx-light)")
    apps = []
    try:
        for i in range(INSTANCES):
            log = tmp_path_factory.mktemp(f"app{i}") / "gunicorn.log"
            proc, port = start_gunicorn(log, workers=1)
            apps.append((proc, port, log))
        for proc, port, log in apps:
            _wait(port, proc, log, f"gunicorn on {port}")
        directory = tmp_path_factory.mktemp("nginx-lb")
        nginx_port = free_port()
        render_nginx(directory, nginx_port, f"127.0.0.1:{apps[0][1]}")
        conf = directory / "emotion.conf"
        one = f"    server 127.0.0.1:{apps[0][1]};\n"
        text = conf.read_text()
        assert text.count(one) == 1, "the template's upstream block changed shape"
        conf.write_text(text.replace(one, "".join(f"    server 127.0.0.1:{p};\n" for _, p, _ in apps)))
        nginx = subprocess.Popen(
            [NGINX, "-p", f"{directory}/", "-c", "nginx.conf", "-e", str(directory / "error.log")],
            cwd=directory,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            _wait(nginx_port, nginx, directory / "error.log", "nginx", 20)
            yield {"nginx": nginx_port, "apps": [(p, port) for p, port, _ in apps]}
        finally:
            stop(nginx, signal.SIGQUIT)
    finally:
        for proc, _, _ in apps:
            stop(proc)


def _health_pid(port: int) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", "/api/health")
        resp = conn.getresponse()
        body = resp.read()
        assert resp.status == 200, (resp.status, body[:200])
        return json.loads(body)["pid"]
    finally:
        conn.close()


def _predict(port: int, photo: bytes) -> dict:
    status, reply = post_photo(port, photo)
    assert status == 200, (status, reply)
    return reply


def _worker_pids(apps) -> dict[int, int]:
    """{worker pid: instance index}, from each instance's own /api/health (one worker each)."""
    return {_health_pid(port): i for i, (_, port) in enumerate(apps)}


def test_requests_are_spread_and_survive_a_killed_instance(cluster):
    front, apps = cluster["nginx"], cluster["apps"]
    owner = _worker_pids(apps)
    assert len(owner) == INSTANCES

    seen = [owner[_health_pid(front)] for _ in range(3 * INSTANCES)]
    assert set(seen) == set(range(INSTANCES)), f"round-robin should reach every instance: {seen}"

    photo = jpeg(astronaut())
    reply = _predict(front, photo)
    assert reply["emotion"] and reply["faces"], reply

    victim_proc, victim_port = apps[1]
    os.killpg(victim_proc.pid, signal.SIGKILL)  # master and worker, no graceful shutdown
    victim_proc.wait(timeout=10)
    assert not _answers(victim_port)

    after = []
    for _ in range(2 * INSTANCES):
        after.append(owner[_health_pid(front)])
        assert _predict(front, photo)["emotion"] == reply["emotion"]
    assert 1 not in after and set(after) == {0, 2}, after

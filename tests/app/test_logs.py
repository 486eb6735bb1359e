"""Issue 24, logs: a request id on every request (taken from X-Request-ID when plausible, else made,
always echoed), JSON lines with LOG_FORMAT=json, and never more than 100 characters of what a client
sent nor any image byte in a log line."""

from __future__ import annotations

import http.client
import json
import logging
import os
import re
import signal
import subprocess
import time
import uuid

import pytest

from app import logs
from tests.app import imagegen as g
from tests.conftest import start_gunicorn

HEX32 = re.compile(r"[0-9a-f]{32}")


# ---- the pieces --------------------------------------------------------------------------------------


@pytest.mark.no_model_needed
@pytest.mark.parametrize(
    "given, kept",
    [
        ("0123456789abcdef0123456789abcdef", True),  # nginx's $request_id
        (str(uuid.uuid4()), True),
        ("01HZX3K4Y5ABCDEF0123456789", True),  # a ULID
        ("req:42/a+b=c@edge-1", True),
        ("", False),
        ("   ", False),
        ("a" * 64, True),
        ("a" * 65, False),  # no long texts in every log line
        ("two words", False),
        ('quote"d', False),
        ("new\nline", False),
        ("tab\there", False),
        ("{json}", False),
        ("-starts-with-dash", False),
        ("ünïcode", False),
    ],
)
def test_request_ids_are_checked(given, kept):
    assert (logs.clean_request_id(given) == given.strip()) is kept
    if not kept:
        assert logs.clean_request_id(given) is None


@pytest.mark.no_model_needed
def test_json_lines_cut_every_argument_and_never_log_bytes():
    args = ("p" * 5000, b"\xff\xd8" * 900)
    record = logging.LogRecord("app.x", logging.WARNING, __file__, 1, "bad %s from %s", args, None)
    logs.RequestContextFilter().filter(record)
    line = logs.JsonFormatter().format(record)
    assert "\n" not in line
    out = json.loads(line)
    assert out["level"] == "warning" and out["logger"] == "app.x" and out["request_id"] == "-"
    assert out["msg"] == "bad " + "p" * 100 + "... from <1800 bytes>"
    assert set(out) >= {"ts", "pid", "msg"} and out["ts"].endswith("Z")


@pytest.mark.no_model_needed
def test_json_lines_carry_the_traceback():
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        record = logging.LogRecord("app", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    out = json.loads(logs.JsonFormatter().format(record))
    assert out["msg"] == "failed" and "ValueError: boom" in out["exc"]


# ---- through the app (the test client) ---------------------------------------------------------------


@pytest.mark.no_model_needed
def test_the_request_id_is_made_or_kept_and_echoed(client):
    made = client.get("/api/health").headers["X-Request-ID"]
    assert HEX32.fullmatch(made)
    assert client.get("/api/health").headers["X-Request-ID"] != made  # one per request
    assert client.get("/api/health", headers={"X-Request-ID": "edge-42"}).headers["X-Request-ID"] == "edge-42"
    replaced = client.get("/api/health", headers={"X-Request-ID": "x" * 5000}).headers["X-Request-ID"]
    assert HEX32.fullmatch(replaced)
    # errors carry it too, the app's JSON 404 included
    assert client.get("/nothing", headers={"X-Request-ID": "err-1"}).headers["X-Request-ID"] == "err-1"


def test_app_log_lines_during_a_request_carry_its_id(client, caplog):
    """A line the app logs while serving a request is tagged with that request's id."""
    from flask import Flask

    with caplog.at_level(logging.INFO):
        app: Flask = client.application
        with app.test_request_context("/api/health", headers={"X-Request-ID": "trace-7"}):
            app.preprocess_request()
            logging.getLogger("app.test").info("inside %s", "a request")
            record = caplog.records[-1]
            logs.RequestContextFilter().filter(record)
    assert record.request_id == "trace-7"


# ---- real gunicorn, LOG_FORMAT=json --------------------------------------------------------------------


def _request(port, method, path, body=b"", headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(method, path, body, headers or {})
        resp = conn.getresponse()
        resp.read()
        return resp.status, resp.getheader("X-Request-ID")
    finally:
        conn.close()


@pytest.fixture(scope="module")
def json_server(tmp_path_factory):
    log_path = tmp_path_factory.mktemp("jsonlogs") / "gunicorn.log"
    proc, port = start_gunicorn(log_path, workers=1, warmup="background", env={"LOG_FORMAT": "json"})
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                if _request(port, "GET", "/api/health")[0] == 200:
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail("gunicorn did not start:\n" + log_path.read_text(errors="replace")[-3000:])
            time.sleep(0.3)
        yield port, log_path, proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)


def test_gunicorn_writes_one_json_object_a_line_with_the_request_id(json_server):
    port, log_path, proc = json_server
    marker = "PIXELSECRET" * 20  # in the body: must never reach the log
    photo = g.jpeg(g.astronaut())
    boundary = uuid.uuid4().hex
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="a.jpg"\r\n'
            f"Content-Type: image/jpeg\r\n\r\n"
        ).encode()
        + photo
        + marker.encode()
        + f"\r\n--{boundary}--\r\n".encode()
    )
    status, rid = _request(
        port,
        "POST",
        "/api/predict",
        body,
        {"Content-Type": f"multipart/form-data; boundary={boundary}", "X-Request-ID": "photo-1"},
    )
    assert status == 200 and rid == "photo-1"
    status, rid_text = _request(port, "POST", "/api/predict", marker.encode() * 10, {"Content-Type": "text/plain"})
    assert status == 415 and HEX32.fullmatch(rid_text)
    long_path = "/api/" + "q" * 3000
    status, rid_long = _request(
        port,
        "GET",
        long_path + "?lang=" + "v" * 3000,
        headers={"User-Agent": "U" * 3000, "X-Request-ID": "bad id with spaces"},
    )
    assert status == 404 and HEX32.fullmatch(rid_long)

    deadline = time.monotonic() + 10
    while rid_long not in log_path.read_text(errors="replace") and time.monotonic() < deadline:
        time.sleep(0.2)
    text = log_path.read_text(errors="replace")
    lines = [line for line in text.splitlines() if line.strip()]
    parsed = []
    for line in lines:
        try:
            parsed.append(json.loads(line))
        except ValueError:
            pytest.fail(f"not a JSON line: {line[:200]!r}")
    assert all({"ts", "level", "logger", "pid", "request_id"} <= set(p) for p in parsed)
    loggers = {p["logger"] for p in parsed}
    assert {"gunicorn.error", "gunicorn.access"} <= loggers and any(n.startswith("app") for n in loggers), loggers

    access = {p["request_id"]: p for p in parsed if p["logger"] == "gunicorn.access"}
    assert access["photo-1"]["status"] == 200 and access["photo-1"]["path"] == "/api/predict"
    assert access[rid_text]["status"] == 415
    long = access[rid_long]
    assert long["status"] == 404 and len(long["path"]) <= 103 and len(long["query"]) <= 103
    assert len(long["user_agent"]) <= 103
    # never image bytes, never a long run of what the client sent
    assert "PIXELSECRET" not in text and "JFIF" not in text
    assert "q" * 101 not in text and "v" * 101 not in text and "U" * 101 not in text


def test_behind_the_shipped_nginx_the_id_is_nginxs_and_metrics_are_not_served(json_server, tmp_path):
    """deploy/nginx sets its own $request_id (a client's header is replaced), the app logs and echoes
    it; /metrics through nginx is the app's JSON 404 (the metrics port is never proxied)."""
    from tests.app.test_server import NGINX, render_nginx
    from tests.conftest import free_port

    if NGINX is None:
        pytest.skip("nginx is not installed (apt-get install nginx-light)")
    port, log_path, _ = json_server
    front = free_port()
    render_nginx(tmp_path, front, f"127.0.0.1:{port}")
    nginx = subprocess.Popen(
        [NGINX, "-p", f"{tmp_path}/", "-c", "nginx.conf", "-e", str(tmp_path / "error.log")],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if _request(front, "GET", "/api/health")[0] == 200:
                    break
            except OSError:
                pass
            assert nginx.poll() is None and time.monotonic() < deadline, "nginx did not start"
            time.sleep(0.2)
        status, rid = _request(front, "GET", "/api/health", headers={"X-Request-ID": "client-chosen"})
        assert status == 200 and HEX32.fullmatch(rid) and rid != "client-chosen"
        deadline = time.monotonic() + 10
        while rid not in log_path.read_text(errors="replace"):
            assert time.monotonic() < deadline, "the proxy's request id is not in the app's log"
            time.sleep(0.2)
        status, _ = _request(front, "GET", "/metrics")
        assert status == 404
    finally:
        if nginx.poll() is None:
            nginx.send_signal(signal.SIGQUIT)
            try:
                nginx.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(nginx.pid, signal.SIGKILL)

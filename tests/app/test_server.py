"""Issue 11, hostile and unlucky clients against the real server on loopback: gunicorn with the repo's
gunicorn.conf.py, and nginx with deploy/nginx/emotion.conf.template in front of it (skipped where nginx
is not installed: `apt-get install nginx-light`).

Every server listens on 127.0.0.1 only; every wait is bounded.
"""

from __future__ import annotations

import http.client
import io
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from app.security import SECURITY_HEADERS
from tests.conftest import ROOT, free_port, start_gunicorn

TEMPLATE = ROOT / "deploy" / "nginx" / "emotion.conf.template"
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)


# ---- servers --------------------------------------------------------------------------------------


def _answers(port: int, path: str = "/api/health") -> bool:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        conn.request("GET", path)
        ok = conn.getresponse().status == 200
        conn.close()
        return ok
    except OSError:
        return False


def stop(proc: subprocess.Popen, sig=signal.SIGTERM) -> int:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    return proc.returncode


@pytest.fixture(scope="module")
def gunicorn_port(tmp_path_factory):
    log_path = tmp_path_factory.mktemp("gunicorn") / "gunicorn.log"
    proc, port = start_gunicorn(log_path)
    try:
        deadline = time.monotonic() + 120
        while not _answers(port):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail("gunicorn did not start:\n" + log_path.read_text(errors="replace")[-3000:])
            time.sleep(0.3)
        yield port
    finally:
        stop(proc)


def render_nginx(directory: Path, port: int, upstream: str) -> Path:
    """deploy/nginx's template filled in as envsubst would, inside a minimal main config whose files all
    live in `directory` (nginx -p)."""
    conf = (
        TEMPLATE.read_text()
        .replace("${NGINX_PORT}", f"127.0.0.1:{port}")
        .replace("${APP_UPSTREAM}", upstream)
        .replace("${STATIC_ROOT}", str(ROOT / "static"))
    )
    assert "${" not in conf
    (directory / "emotion.conf").write_text(conf)
    main = directory / "nginx.conf"
    main.write_text(
        "daemon off;\nworker_processes 1;\npid nginx.pid;\nerror_log error.log warn;\n"
        "events { worker_connections 512; }\n"
        "http {\n    access_log off;\n"
        "    client_body_temp_path body; proxy_temp_path proxy; fastcgi_temp_path fastcgi;\n"
        "    uwsgi_temp_path uwsgi; scgi_temp_path scgi;\n"
        "    include emotion.conf;\n}\n"
    )
    return main


@pytest.fixture(scope="module")
def nginx_port(gunicorn_port, tmp_path_factory):
    if NGINX is None:
        pytest.skip("nginx is not installed (apt-get install nginx-light)")
    directory = tmp_path_factory.mktemp("nginx")
    port = free_port()
    render_nginx(directory, port, f"127.0.0.1:{gunicorn_port}")
    proc = subprocess.Popen(
        [NGINX, "-p", f"{directory}/", "-c", "nginx.conf", "-e", str(directory / "error.log")],
        cwd=directory,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 20
        while not _answers(port):
            if proc.poll() is not None or time.monotonic() > deadline:
                log = (
                    (directory / "error.log").read_text(errors="replace") if (directory / "error.log").exists() else ""
                )
                pytest.fail(f"nginx did not start (exit {proc.poll()}):\n{log[-2000:]}")
            time.sleep(0.2)
        yield port
    finally:
        stop(proc, signal.SIGQUIT)  # nginx: graceful shutdown


@pytest.fixture(params=["gunicorn", "nginx"])
def any_port(request):
    return request.getfixturevalue(f"{request.param}_port")


# ---- raw HTTP -------------------------------------------------------------------------------------


def raw_exchange(port: int, data: bytes, timeout: float = 10) -> tuple[int, dict, bytes]:
    """Send bytes, read one response (to its Content-Length, or until the server closes);
    (status, lower-cased headers, body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        try:
            sock.sendall(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered before taking it all; read what it said
        buf = b""
        while True:
            head, sep, body = buf.partition(b"\r\n\r\n")
            if sep:
                length = re.search(rb"(?im)^content-length:\s*(\d+)", head)
                if length and len(body) >= int(length.group(1)):
                    break
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            buf += chunk
    head, _, body = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(lines[0].split()[1]), headers, body


def assert_json_error_with_security_headers(status, headers, body, label):
    assert headers.get("content-type", "").startswith("application/json"), (label, status, headers, body[:200])
    error = json.loads(body)["error"]
    assert set(error) == {"code", "message"} and error["code"] and error["message"], (label, error)
    assert "<html" not in body.decode("utf-8", "replace").lower(), label
    for name, value in SECURITY_HEADERS.items():
        assert headers.get(name.lower()) == value, (label, name, headers)
    return error


# ---- 4. errors the server answers itself, before the app sees the request -------------------------

CHUNKED_HEAD = (
    b"POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\nTransfer-Encoding: chunked\r\n\r\n"
)

SERVER_ERRORS = {
    "uri-20kb": (b"GET /" + b"a" * 20_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", {414}),
    "header-20kb": (b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20_000 + b"\r\n\r\n", {431}),
    "200-headers": (
        b"GET /api/health HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-%d: a\r\n" % i for i in range(200)) + b"\r\n",
        {431},
    ),
    "http-9.9": (b"GET / HTTP/9.9\r\nHost: x\r\n\r\n", {400, 505}),
    "bad-method": (b"G@T / HTTP/1.1\r\nHost: x\r\n\r\n", {400}),
    "tls-to-http-port": (b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03" + b"\0" * 40 + b"\r\n\r\n", {400}),
    "body-over-16mb-declared": (
        b"POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\nContent-Length: 17000000\r\n\r\n",
        {413},
    ),
    # issue 16: a malformed chunked body was a 500 from the app under gunicorn (its parser raised
    # inside the app's read); nginx refuses it itself
    "chunk-size-not-hex": (CHUNKED_HEAD + b"zz\r\nabc\r\n0\r\n\r\n", {400}),
    "chunk-missing-crlf": (CHUNKED_HEAD + b"3\r\nabcXY4\r\nabcd\r\n0\r\n\r\n", {400}),
    "chunked-multipart-malformed": (
        b"POST /api/predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
        b"Content-Type: multipart/form-data; boundary=zz\r\n\r\n"
        b"10\r\n--zz\r\nContent-Dis\r\nq\r\n",
        {400},
    ),
    # issue 16: methods and codings the front refuses itself (nginx: 405 / 501 pages without headers)
    "trace": (b"TRACE / HTTP/1.1\r\nHost: x\r\n\r\n", {405}),
    "transfer-encoding-gzip": (
        b"POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\nTransfer-Encoding: gzip\r\n\r\nabc",
        {400, 501},
    ),
}


@pytest.mark.parametrize("case", sorted(SERVER_ERRORS))
def test_server_errors_are_json_with_security_headers(any_port, case):
    """gunicorn answered these with an HTML page and no security header (issue 11); nginx would too."""
    request, statuses = SERVER_ERRORS[case]
    status, headers, body = raw_exchange(any_port, request)
    assert status in statuses, (case, status, body[:200])
    error = assert_json_error_with_security_headers(status, headers, body, case)
    if status == 413:
        assert error["code"] == "request_entity_too_large"
    assert headers.get("connection") == "close" or status in (405, 431), (case, headers)


def test_nginx_template_repeats_the_app_headers_and_limits():
    """The proxy's own error pages carry exactly app/security.py's headers, and its limits match the app's."""
    from app import DEFAULTS

    text = TEMPLATE.read_text()
    locations = re.findall(r"location = /_emotion_error/(\d+) \{(.*?)\n    \}", text, flags=re.S)
    assert {code for code, _ in locations} >= {
        "400",
        "404",
        "405",
        "408",
        "413",
        "414",
        "431",
        "501",
        "502",
        "503",
        "504",
        "505",
    }
    # nginx's own static files carry the same headers (issue 24: it serves /static itself)
    for where in re.findall(r"location [^{]*/static/[^{]*\{(.*?)\n    \}", text, flags=re.S):
        assert dict(re.findall(r'add_header (\S+) "([^"]*)" always;', where)).items() >= SECURITY_HEADERS.items()
    for code, block in locations:
        headers = dict(re.findall(r'add_header (\S+) "([^"]*)" always;', block))
        assert headers == SECURITY_HEADERS, code
        body = re.search(r"return (\d+) '(.*)';", block)
        assert body.group(1) == code and set(json.loads(body.group(2))["error"]) == {"code", "message"}
    assert f"client_max_body_size {DEFAULTS['MAX_CONTENT_LENGTH'] >> 20}m;" in text
    # never a temp file: room for a whole body at the cap (issue 24: a chunked 16 MiB one filled a 16m buffer)
    buffer_kb = int(re.search(r"client_body_buffer_size (\d+)k;", text).group(1))
    assert (DEFAULTS["MAX_CONTENT_LENGTH"] >> 10) < buffer_kb <= (DEFAULTS["MAX_CONTENT_LENGTH"] >> 10) + 1024
    assert "proxy_request_buffering on;" in text and "proxy_max_temp_file_size 0;" in text


def test_nginx_drops_idle_upstream_connections_before_gunicorn_does():
    """Issue 16: nginx kept idle connections to gunicorn for its default 60 s, gunicorn closes them after
    its `keepalive` (5 s): a request sent on one as gunicorn closes it got a 502. nginx now lets them go
    first, and a connection that fails anyway is retried once (POST included: a prediction has no side
    effect), but not a timeout (that would double a slow request's cost)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("gunicorn_conf", ROOT / "gunicorn.conf.py")
    conf = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(conf)
    text = TEMPLATE.read_text()
    upstream = re.search(r"upstream emotion_app \{(.*?)\n\}", text, flags=re.S).group(1)
    timeout = re.search(r"keepalive_timeout (\d+)s;", upstream)
    assert timeout and int(timeout.group(1)) < conf.keepalive, (upstream, conf.keepalive)
    retry = re.search(r"proxy_next_upstream ([^;]*);", text).group(1).split()
    assert "error" in retry and "non_idempotent" in retry and "timeout" not in retry
    assert re.search(r"proxy_next_upstream_tries [12];", text)


# ---- 3. keep-alive after an early error -----------------------------------------------------------


def _chunks(total: int):
    yield b"\xff\xd8\xff"
    for _ in range(total // 65536):
        yield b"\0" * 65536


EARLY_ERRORS = {
    # name: (method, path, body, headers, expected status)
    "415-small-text": ("POST", "/api/predict", b"hello", {"Content-Type": "text/plain"}, 415),
    "415-1mb-text": ("POST", "/api/predict", b"h" * (1 << 20), {"Content-Type": "text/plain"}, 415),
    "404-no-body": ("GET", "/nothing/here", None, {}, 404),
    "404-200kb-body": ("POST", "/nothing/here", b"x" * 200_000, {"Content-Type": "application/octet-stream"}, 404),
    "405-200kb-body": ("PUT", "/api/predict", b"x" * 200_000, {"Content-Type": "image/jpeg"}, 405),
    "413-chunked-17mb": ("POST", "/api/predict", "chunked", {"Content-Type": "image/jpeg"}, 413),
    "400-read-body": ("POST", "/api/predict", b"\xff\xd8\xff" + b"\0" * 100_000, {"Content-Type": "image/jpeg"}, 400),
    "200-multipart": ("POST", "/api/predict", "multipart", {}, 200),
}


def _multipart() -> tuple[bytes, str]:
    from werkzeug.datastructures import FileStorage
    from werkzeug.test import encode_multipart

    from tests.app.test_load import webcam_frame

    boundary, body = encode_multipart({"image": FileStorage(io.BytesIO(webcam_frame()), "frame.jpg"), "lang": "vi"})
    return body, f"multipart/form-data; boundary={boundary}"


@pytest.mark.parametrize("case", sorted(EARLY_ERRORS))
def test_connection_header_tells_the_truth_after_an_early_error(gunicorn_port, case):
    """Issue 11: gunicorn said `Connection: keep-alive` after these, then dropped the connection, so a
    client's next request on it got no answer. Now: keep-alive only when the next request is served on
    the same connection; otherwise `Connection: close`, and the server does close."""
    method, path, body, headers, expected = EARLY_ERRORS[case]
    closing = ("415-1mb-text", "404-200kb-body", "405-200kb-body", "413-chunked-17mb")
    conn = http.client.HTTPConnection("127.0.0.1", gunicorn_port, timeout=20)
    cut_off = False
    try:
        if body == "chunked":
            conn.request(method, path, body=_chunks(17 << 20), headers=headers, encode_chunked=True)
        elif body == "multipart":
            body, content_type = _multipart()
            conn.request(method, path, body=body, headers={"Content-Type": content_type})
        else:
            conn.request(method, path, body=body, headers=headers)
    except (BrokenPipeError, ConnectionResetError):
        # The server answered and closed while the client was still sending the body it will not read
        # (gunicorn has no lingering close; behind nginx, which reads the whole request first, this
        # cannot happen). Only a request the server should close may see that; its answer is read if
        # the reset left it in the socket.
        assert case in closing, f"{case}: the connection was cut while the request was being sent"
        cut_off = True
    try:
        resp = conn.getresponse()
        resp.read()
    except (ConnectionResetError, BrokenPipeError, http.client.RemoteDisconnected):
        if not cut_off:
            raise
        conn.close()
        return  # closed, as it should be; the reset took the answer with it
    assert resp.status == expected
    said = resp.getheader("Connection")
    if said == "keep-alive":
        sock = conn.sock
        conn.request("GET", "/api/health")
        again = conn.getresponse()
        again.read()
        assert again.status == 200 and conn.sock is sock, f"{case}: kept alive, but the next request failed"
    else:
        assert said == "close", said
        assert conn.sock is None  # http.client closes its side; the next request opens a new connection
        conn.request("GET", "/api/health")
        assert conn.getresponse().status == 200
    conn.close()
    if case in ("404-no-body", "400-read-body", "200-multipart"):
        assert said == "keep-alive", f"{case}: needlessly closed"
    if case in ("415-1mb-text", "404-200kb-body", "405-200kb-body", "413-chunked-17mb"):
        assert said == "close", case


# ---- 2. slow clients ------------------------------------------------------------------------------


class SlowClient(threading.Thread):
    """Sends a request a few bytes at a time over `seconds` (headers or body), as a slowloris or a
    phone on a bad link does."""

    def __init__(self, port: int, kind: str, seconds: float):
        super().__init__(daemon=True)
        self.port, self.kind, self.seconds = port, kind, seconds
        self.stop = threading.Event()

    def run(self):
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=self.seconds + 10) as sock:
                if self.kind == "headers":
                    head, body = b"GET /api/health HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 30 + b"\r\n\r\n", b""
                    trickle = head
                else:
                    body = b"\xff\xd8\xff" + b"\0" * 61
                    head = (
                        b"POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\n"
                        b"Content-Length: %d\r\n\r\n" % len(body)
                    )
                    sock.sendall(head)
                    trickle = body
                for i in range(len(trickle)):
                    if self.stop.wait(self.seconds / len(trickle)):
                        return
                    sock.sendall(trickle[i : i + 1])
                sock.recv(100)
        except OSError:
            pass


@pytest.mark.parametrize(
    "front",
    [
        "nginx",
        # Not strict: which worker accepts each slow connection is up to the kernel, and when the four land
        # 3 + 1 a thread stays free and the normal request gets through (2 of 3 full runs at stop 10
        # passed so). The limit itself is real and documented; the nginx case is the assertion that counts.
        pytest.param(
            "gunicorn",
            marks=pytest.mark.xfail(
                strict=False,
                reason=(
                    "gunicorn alone gives each connection a thread while it reads the request: 4 slow clients can take "
                    "all 2x2 threads. Behind nginx they do not (docs/ROBUSTNESS.md)"
                ),
            ),
        ),
    ],
)
def test_slow_clients_do_not_delay_others(request, front):
    """Issue 11: four slow clients (an upload trickled over 8 s, or headers sent slowly) stalled every
    other request under gunicorn alone. Behind the shipped nginx config, ten of them delay no one."""
    port = request.getfixturevalue(f"{front}_port")
    n = 10 if front == "nginx" else 4
    clients = [SlowClient(port, "headers" if i % 2 else "body", seconds=8) for i in range(n)]
    for c in clients:
        c.start()
    try:
        time.sleep(1.0)  # every slow client is connected and mid-request
        for _ in range(3):
            t0 = time.perf_counter()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2.5)
            try:
                conn.request("GET", "/api/health")
                resp = conn.getresponse()
                resp.read()
            except (TimeoutError, OSError) as exc:
                pytest.fail(
                    f"a normal request waited behind {n} slow clients: {exc!r} after {time.perf_counter() - t0:.1f} s"
                )
            finally:
                conn.close()
            assert resp.status == 200
            assert time.perf_counter() - t0 < 2.0
            time.sleep(0.3)
    finally:
        for c in clients:
            c.stop.set()
        for c in clients:
            c.join(timeout=5)


# ---- 7. a worker stopped while it loads its models ------------------------------------------------


def test_worker_stopped_while_loading_exits_cleanly(tmp_path):
    """Issue 11: SIGTERM while a worker's background warm-up was inside ONNX Runtime aborted the worker
    (`terminate called without an active exception`, SIGABRT) at interpreter teardown."""
    log_path = tmp_path / "gunicorn.log"
    proc, _ = start_gunicorn(log_path, workers=2, warmup="background")
    try:
        deadline = time.monotonic() + 60
        while "loading model" not in log_path.read_text(errors="replace"):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail("the workers never started loading:\n" + log_path.read_text(errors="replace")[-2000:])
            time.sleep(0.02)
    finally:
        code = stop(proc)
    log = log_path.read_text(errors="replace")
    assert "terminate called" not in log and "SIGABRT" not in log and "was sent" not in log, log[-2000:]
    assert code == 0, log[-2000:]


# ---- issue 16: a worker's memory after large requests ----------------------------------------------


class _Worker:
    def __init__(self):
        self.alive = True

        class Log:
            lines = []

            def info(self, *args):
                self.lines.append(args)

        self.log = Log()


def test_memory_guard_trims_after_growth_and_retires_an_idle_worker_over_its_limit(monkeypatch):
    """The hooks' logic, with RSS and malloc_trim stubbed (the real server: the test below)."""
    from app import serving

    rss = [300.0]
    trims = []
    monkeypatch.setattr(serving, "rss_mb", lambda: rss[0])
    guard = serving.MemoryGuard(trim_growth_mb=64, max_rss_mb=1000)

    def fake_trim(pad):
        trims.append(pad)
        rss[0] = 320.0
        return 1

    guard._trim = fake_trim
    worker = _Worker()
    for grown, trims_so_far in [(300, 0), (350, 0), (380, 1), (330, 1), (420, 2)]:  # trimmed to 320
        guard.pre_request(worker, None)
        rss[0] = grown
        guard.post_request(worker, None, {}, None)
        assert len(trims) == trims_so_far, (grown, trims)
    # Over the limit while another request is in flight: that request's memory, not the worker's size.
    guard.pre_request(worker, None)
    rss[0] = 1200
    guard.pre_request(worker, None)
    assert worker.alive
    guard.post_request(worker, None, {}, None)
    guard.post_request(worker, None, {}, None)
    rss[0] = 1100  # still over, and idle: retired
    guard.pre_request(worker, None)
    assert not worker.alive and guard.retired
    guard.post_request(worker, None, {}, None)
    off = serving.MemoryGuard(trim_growth_mb=0, max_rss_mb=0)
    off.pre_request(_Worker(), None)
    assert off._trim is None


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def test_a_worker_returns_to_its_size_after_large_requests(gunicorn_port):
    """Issue 16: after two 40 MP PNGs (16-bit RGBA, 315 KB each) and two grids of ~1 100 faces, a worker
    stayed ~370 MB larger (ONNX Runtime's arenas kept the largest shapes, glibc kept freed pages). Now
    the arenas are off and the worker trims: it ends within 100 MB of its size after a normal request."""
    from tests.app import imagegen as g
    from tests.app.test_load import webcam_frame
    from tests.app.test_mtcnn_ort import face_grid

    def post(conn, data, mime):
        conn.request("POST", "/api/predict", body=data, headers={"Content-Type": mime})
        resp = conn.getresponse()
        resp.read()
        assert resp.status == 200
        assert resp.getheader("Connection") != "close"

    conn = http.client.HTTPConnection("127.0.0.1", gunicorn_port, timeout=60)  # one connection: one worker
    try:
        post(conn, webcam_frame(), "image/jpeg")
        conn.request("GET", "/api/health")
        resp = conn.getresponse()
        pid = json.loads(resp.read())["pid"]
        before = _rss_mb(pid)
        png, grid = g.flat_png(7300, 5475, "RGBA", 16), g.jpeg(face_grid())
        for data, mime in [
            (png, "image/png"),
            (grid, "image/jpeg"),
            (png, "image/png"),
            (grid, "image/jpeg"),
            (webcam_frame(), "image/jpeg"),
        ]:
            post(conn, data, mime)
        time.sleep(0.5)  # the trim runs after the response is sent
        after = _rss_mb(pid)
    finally:
        conn.close()
    assert after - before < 100, f"worker {pid}: {before:.0f} MB -> {after:.0f} MB"


def _chunked_multipart(total: int):
    """A multipart form with one `image` part of about `total` bytes, as chunks (no Content-Length)."""
    yield (
        b'--zz\r\nContent-Disposition: form-data; name="image"; filename="a.jpg"\r\n'
        b"Content-Type: image/jpeg\r\n\r\n\xff\xd8\xff"
    )
    for _ in range(total // 65536):
        yield b"\0" * 65536
    yield b"\r\n--zz--\r\n"


@pytest.mark.parametrize("megabytes", [16.5, 17, 19.5, 20])
def test_a_chunked_form_over_the_cap_is_413_like_a_declared_one(any_port, megabytes):
    """Issue 16: a chunked multipart upload of 16.5-20 MB was answered 400 `too_many_parts` under
    gunicorn (Werkzeug stops a chunked body at the cap with the same exception as for too many parts)."""
    conn = http.client.HTTPConnection("127.0.0.1", any_port, timeout=30)
    try:
        try:
            conn.request(
                "POST",
                "/api/predict",
                body=_chunked_multipart(int(megabytes * (1 << 20))),
                headers={"Content-Type": "multipart/form-data; boundary=zz"},
                encode_chunked=True,
            )
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered before taking it all
        resp = conn.getresponse()
        body = resp.read()
    finally:
        conn.close()
    assert resp.status == 413, body[:200]
    assert json.loads(body)["error"]["code"] == "request_entity_too_large"


def g_jpeg_like(size: int) -> bytes:
    return b"\xff\xd8\xff" + b"\0" * (size - 3)


@pytest.mark.parametrize("path", [b"//api/health", b"//static//app.js", b"/api//health", b"//"])
def test_a_double_slash_path_is_not_redirected_to_the_host_header(any_port, path):
    """Issue 16, on the real servers: `GET //x` with a foreign Host was a 308 to `http://<Host>/x`."""
    status, headers, body = raw_exchange(
        any_port, b"GET " + path + b" HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n"
    )
    assert not 300 <= status < 400, (path, status, headers.get("location"))
    assert status in (200, 404), (path, status, body[:200])


def test_nginx_gzips_private_modes_runtime_and_keeps_the_isolation_headers(nginx_port):
    """Private mode's one-off download (issue 18): the 14 MB WebAssembly runtime reaches the browser
    gzipped through the shipped nginx, byte-identical once unzipped, with the cross-origin isolation
    headers its threads need."""
    import gzip

    path = json.loads(_get(nginx_port, "/api/ondevice")[2])["runtime"]["wasm_paths"] + "ort-wasm-simd-threaded.wasm"
    conn = http.client.HTTPConnection("127.0.0.1", nginx_port, timeout=30)
    conn.request("GET", path, headers={"Accept-Encoding": "gzip"})
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    assert resp.status == 200 and resp.getheader("Content-Type") == "application/wasm"
    assert resp.getheader("Content-Encoding") == "gzip"
    original = (ROOT / "static" / path.removeprefix("/static/")).read_bytes()
    assert gzip.decompress(body) == original and len(body) < len(original) / 3
    assert resp.getheader("Cross-Origin-Embedder-Policy") == "require-corp"
    assert resp.getheader("Cross-Origin-Opener-Policy") == "same-origin"


# ---- issue 24: the hostile edges still open -------------------------------------------------------

BAD_REQUEST, TOO_LARGE = (400, "bad_request"), (413, "request_entity_too_large")
STALLED_CHUNKS = {
    # name: (body, {front: (status, error code)})
    # a chunk size no body can have (2^64 - 1), then a few bytes and a client that waits
    "chunk-size-2^64": (b"ffffffffffffffff\r\nabc", {"gunicorn": BAD_REQUEST, "nginx": BAD_REQUEST}),
    # RFC 9112 frames chunks with CRLF; gunicorn looked for a CRLF that never came. nginx reads bare
    # LFs leniently: a 3-byte body, not an image
    "chunk-bare-lf": (b"3\nabc\n0\n\n", {"gunicorn": BAD_REQUEST, "nginx": (415, "unsupported_type")}),
    "chunk-bare-lf-after-a-chunk": (
        b"3\r\nabc\r\n2\nzz\n0\n\n",
        {"gunicorn": BAD_REQUEST, "nginx": (415, "unsupported_type")},
    ),
    # a chunk larger than the whole body may be: refused before its bytes arrive, as nginx does
    "chunk-over-the-cap": (b"1100000\r\nabc", {"gunicorn": TOO_LARGE, "nginx": TOO_LARGE}),
}


@pytest.mark.parametrize("front", ["gunicorn", "nginx"])
@pytest.mark.parametrize("case", sorted(STALLED_CHUNKS))
def test_a_stalled_chunked_body_is_answered_at_once(request, front, case):
    """Issue 24: on bare gunicorn these got no answer and held a thread until the client left (nginx
    answered at once). Now both fronts answer within a second, in the app's JSON."""
    port = request.getfixturevalue(f"{front}_port")
    data, expected_by_front = STALLED_CHUNKS[case]
    expected, code = expected_by_front[front]
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(CHUNKED_HEAD + data)  # and the client keeps the connection open, sending nothing
        t0 = time.monotonic()
        buf = b""
        try:
            while b"\r\n\r\n" not in buf or not buf.rstrip().endswith(b"}"):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                buf += chunk
        except TimeoutError:
            pytest.fail(f"{case}: no answer within 5 s")
        elapsed = time.monotonic() - t0
    head, _, body = buf.partition(b"\r\n\r\n")
    status = int(head.split()[1])
    assert status == expected, (case, head[:200], body[:200])
    headers = {
        k.strip().lower(): v.strip()
        for k, _, v in (line.partition(":") for line in head.decode("latin-1").split("\r\n")[1:])
    }
    error = assert_json_error_with_security_headers(status, headers, body, case)
    assert error["code"] == code
    assert elapsed < 1.0, f"{case}: {elapsed:.1f} s"


class SlowReader(threading.Thread):
    """Downloads a URL reading 4 KB every 0.5 s with a small receive buffer, as a phone on a bad link."""

    def __init__(self, port: int, path: str):
        super().__init__(daemon=True)
        self.port, self.path = port, path
        self.stop, self.got = threading.Event(), 0

    def run(self):
        try:
            with socket.socket() as sock:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
                sock.settimeout(30)
                sock.connect(("127.0.0.1", self.port))
                sock.sendall(f"GET {self.path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
                while not self.stop.wait(0.5):
                    data = sock.recv(4096)
                    if not data:
                        return
                    self.got += len(data)
        except OSError:
            pass


def test_slow_readers_of_the_runtime_do_not_hold_app_threads(nginx_port):
    """Issue 24: /static went through to gunicorn and nginx buffered 1 MB of a response, so each slow
    download of the 14 MB WebAssembly runtime held one of the 2x2 gunicorn threads and /api/health
    timed out. nginx now serves /static from disk itself; the model and detector files are buffered whole."""
    settings = json.loads(_get(nginx_port, "/api/ondevice")[2])
    wasm = settings["runtime"]["wasm_paths"] + "ort-wasm-simd-threaded.wasm"
    model = next(iter(settings["models"].values()))["url"]
    paths = [wasm] * 4 + [model] * 2 + [settings["detector"]["networks"]["onet"]] * 2
    readers = [SlowReader(nginx_port, p) for p in paths]
    for r in readers:
        r.start()
    try:
        time.sleep(2.0)  # every download has started and filled what buffers it can
        for _ in range(3):
            t0 = time.perf_counter()
            try:
                status, _, _ = _get(nginx_port, "/api/health", timeout=3)
            except OSError as exc:
                pytest.fail(f"/api/health waited behind {len(readers)} slow downloads: {exc!r}")
            assert status == 200 and time.perf_counter() - t0 < 2.0
            time.sleep(0.3)
        assert all(r.got > 0 for r in readers), [r.got for r in readers]
    finally:
        for r in readers:
            r.stop.set()
        for r in readers:
            r.join(timeout=5)


def _get(port: int, path: str, headers: dict | None = None, timeout: float = 30) -> tuple[int, dict, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


STATIC_TYPES = {"app.js": "text/javascript", "style.css": "text/css"}


def test_nginx_serves_static_files_as_the_app_does(nginx_port, gunicorn_port):
    """Same bytes, type and security headers from nginx's disk as from Flask; the runtime's .mjs as
    JavaScript (a module script with nosniff needs it) and its .wasm as application/wasm; a missing
    file is the app's JSON 404."""
    settings = json.loads(_get(nginx_port, "/api/ondevice")[2])
    base = settings["runtime"]["wasm_paths"]
    cases = dict(STATIC_TYPES)
    cases[base.removeprefix("/static/") + "ort-wasm-simd-threaded.mjs"] = "text/javascript"
    cases[base.removeprefix("/static/") + "ort-wasm-simd-threaded.wasm"] = "application/wasm"
    for name, mime in cases.items():
        app_status, app_headers, app_body = _get(gunicorn_port, f"/static/{name}")
        status, headers, body = _get(nginx_port, f"/static/{name}")
        assert status == app_status == 200, name
        assert body == app_body == (ROOT / "static" / name).read_bytes(), name
        assert headers["content-type"].split(";")[0] == app_headers["content-type"].split(";")[0] == mime, name
        for header, value in SECURITY_HEADERS.items():
            assert headers.get(header.lower()) == value, (name, header)
        assert headers.get("cache-control") == app_headers.get("cache-control"), name
        # nginx's own ETag ("<mtime hex>-<size hex>"), not Flask's: gunicorn never saw the request
        assert re.fullmatch(r'"[0-9a-f]+-[0-9a-f]+"', headers.get("etag", "")), (name, headers.get("etag"))
    for missing in ("/static/nothing.js", "/static/js/", "/static/../app/__init__.py"):
        status, headers, body = _get(nginx_port, missing)
        assert status in (400, 404), missing
        assert_json_error_with_security_headers(status, headers, body, missing)


def test_the_vendored_runtime_is_cached_for_good_and_the_rest_revalidated(any_port):
    """The runtime's files sit under their version's folder, so their URL changes when they do: a year
    and `immutable` instead of `no-cache` (a page load no longer revalidates 14 MB); the page's own
    files keep `no-cache`."""
    settings = json.loads(_get(any_port, "/api/ondevice")[2])
    version = settings["runtime"]["version"]
    assert f"/{version}/" in settings["runtime"]["entry"]
    for url in (settings["runtime"]["entry"], settings["runtime"]["wasm_paths"] + "ort-wasm-simd-threaded.wasm"):
        status, headers, _ = _get(any_port, url, {"Accept-Encoding": "gzip"})
        assert status == 200
        assert headers["cache-control"] == "public, max-age=31536000, immutable", url
    status, headers, _ = _get(any_port, "/static/app.js")
    assert status == 200 and headers["cache-control"] == "no-cache"


@pytest.mark.parametrize("size", [15 << 20, 16 << 20])
def test_nginx_keeps_a_chunked_body_up_to_the_cap_in_memory(nginx_port, tmp_path_factory, size):
    """Issue 24: a chunked body of exactly 16 MiB filled nginx's 16 MiB body buffer before its last
    chunk arrived, and nginx wrote it to a temporary file (deleted after)."""
    directory = next(Path(p) for p in tmp_path_factory.getbasetemp().glob("nginx*"))
    log = directory / "error.log"
    before = log.read_text(errors="replace") if log.exists() else ""
    body = g_jpeg_like(size)
    conn = http.client.HTTPConnection("127.0.0.1", nginx_port, timeout=60)
    try:
        conn.request(
            "POST",
            "/api/predict",
            body=iter([body[i : i + 65536] for i in range(0, len(body), 65536)]),
            headers={"Content-Type": "image/jpeg"},
            encode_chunked=True,
        )
        resp = conn.getresponse()
        resp.read()
    finally:
        conn.close()
    assert resp.status == 413  # the app's 10 MB image cap, after nginx passed the whole body on
    after = log.read_text(errors="replace")[len(before) :] if log.exists() else ""
    assert "buffered to a temporary file" not in after, after[-1000:]
    assert not any((directory / "body").glob("*")), "a request body was written to disk"


def test_a_video_report_streams_through_nginx_line_by_line(nginx_port, has_model):
    """Issue 25: POST /api/video behind the shipped nginx (2 gunicorn workers, no job store): the NDJSON
    lines reach the client as the frames are analysed, not all at once when the clip is done, and the
    report at the end is whole. (nginx forwards what it has read even with buffering on; the app's
    `X-Accel-Buffering: no` also keeps it from holding lines back to fill its buffers.)"""
    if not has_model:
        pytest.skip("no model card to serve")
    import json

    import requests

    from benchmarks.clips import encode, make_clip

    clip = encode(make_clip("walk", n_frames=96).frames, "mp4-h264")  # 8 s at 12 frames/s
    t0 = time.monotonic()
    resp = requests.post(
        f"http://127.0.0.1:{nginx_port}/api/video",
        files={"video": ("walk.mp4", clip, "video/mp4")},
        data={"fps": "8"},
        stream=True,
        timeout=120,
    )
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("application/x-ndjson")
    arrivals = []
    for line in resp.iter_lines():
        if line:
            arrivals.append((time.monotonic() - t0, json.loads(line)))
    kinds = [event["type"] for _, event in arrivals]
    assert kinds[0] == "start" and kinds[-1] == "report" and kinds.count("frame") == 64, kinds
    report = arrivals[-1][1]["report"]
    assert report["analysed_frames"] == 64 and len(report["tracks"]) == 1
    first_frame = next(t for t, event in arrivals if event["type"] == "frame")
    last = arrivals[-1][0]
    # 64 analysed frames take well over a second: the first frame's line came long before the report
    assert last - first_frame > 0.5, (first_frame, last)

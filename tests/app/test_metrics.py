"""Issue 24, metrics: the Prometheus counters move when requests are made, every gunicorn worker is
counted (multiprocess mode, served by the master on the internal METRICS_PORT), and neither the app's
own port nor the shipped nginx serves /metrics."""

from __future__ import annotations

import http.client
import os
import re
import signal
import subprocess
import time

import pytest

from app import metrics
from tests.app import imagegen as g
from tests.conftest import free_port, post_photo, start_gunicorn

SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$")


def parse(text: str) -> dict[tuple[str, frozenset], float]:
    """{(name, frozenset of label pairs): value} from the Prometheus text format."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        assert m, f"not a Prometheus sample line: {line!r}"
        labels = frozenset(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2) or ""))
        out[(m.group(1), labels)] = float(m.group(3))
    return out


def value(samples, name: str, **labels) -> float:
    return samples.get((name, frozenset((k, str(v)) for k, v in labels.items())), 0.0)


def total(samples, name: str, **labels) -> float:
    """Sum over every series of `name` whose labels include `labels`."""
    want = {(k, str(v)) for k, v in labels.items()}
    return sum(v for (n, lab), v in samples.items() if n == name and want <= lab)


def get(port: int, path: str, headers: dict | None = None, timeout: float = 10) -> tuple[int, dict, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)  # a new connection each time
    try:
        conn.request("GET", path, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def scrape(port: int) -> dict:
    status, headers, body = get(port, "/metrics")
    assert status == 200 and headers["content-type"].startswith("text/plain"), (status, headers)
    return parse(body.decode())


# ---- in one process (the test client) ---------------------------------------------------------------


@pytest.mark.no_model_needed
def test_tracking_labels_are_a_closed_set():
    before = parse(metrics.render()[0].decode())
    metrics.observe_tracking("tracked", "ok", 3)
    metrics.observe_tracking("full", "lost", 1)
    metrics.observe_tracking("x" * 5000, "y" * 5000, 2)  # a caller's typo: one "other" series
    metrics.observe_tracking("tracked", "ok", -4)  # clamped to 0
    after = parse(metrics.render()[0].decode())
    series = {(dict(lab)["mode"], dict(lab)["reason"]) for (n, lab) in after if n == "emotion_live_frames_total"}
    assert series >= {("tracked", "ok"), ("full", "lost"), ("other", "other")}
    assert all(m in ("tracked", "full", "other") for m, _ in series)
    assert (
        value(after, "emotion_live_frames_total", mode="tracked", reason="ok")
        - value(before, "emotion_live_frames_total", mode="tracked", reason="ok")
    ) == 2
    assert (
        value(after, "emotion_live_tracks_per_frame_count", mode="tracked")
        - value(before, "emotion_live_tracks_per_frame_count", mode="tracked")
    ) == 2
    assert (
        value(after, "emotion_live_tracks_per_frame_sum", mode="tracked")
        - value(before, "emotion_live_tracks_per_frame_sum", mode="tracked")
    ) == 3


def test_requests_stages_faces_and_rejections_are_counted(client):
    import io

    astronaut_jpeg = g.jpeg(g.astronaut())
    before = parse(metrics.render()[0].decode())
    assert client.post("/api/predict", data={"image": (io.BytesIO(astronaut_jpeg), "a.jpg")}).status_code == 200
    assert client.post("/api/predict", data=b"hello", content_type="text/plain").status_code == 415
    assert client.get("/api/reply?id=nope").status_code == 404
    assert client.get("/no/such/page/" + "x" * 300).status_code == 404
    after = parse(metrics.render()[0].decode())

    def moved(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("emotion_http_requests_total", route="/api/predict", method="POST", status=200) == 1
    assert moved("emotion_http_requests_total", route="/api/predict", method="POST", status=415) == 1
    assert moved("emotion_http_requests_total", route="/api/reply", method="GET", status=404) == 1
    # the raw path is never a label: an unknown path is "unmatched"
    assert moved("emotion_http_requests_total", route="unmatched", method="GET", status=404) == 1
    assert not any("x" * 50 in str(lab) for (_, lab) in after)
    assert moved("emotion_http_rejected_total", status=415, reason="unsupported_type") == 1
    assert moved("emotion_http_rejected_total", status=404, reason="unknown_reply") == 1
    assert moved("emotion_http_request_duration_seconds_count", route="/api/predict") == 2
    for stage in metrics.STAGES:
        assert moved("emotion_predict_stage_duration_seconds_count", stage=stage) == 1, stage
    assert moved("emotion_predict_stage_duration_seconds_sum", stage="detect") > 0
    assert moved("emotion_predict_faces_count") == 1 and moved("emotion_predict_faces_sum") == 1
    assert (
        sum(v for (n, lab), v in after.items() if n == "emotion_predictions_total")
        - sum(v for (n, lab), v in before.items() if n == "emotion_predictions_total")
        == 1
    )
    assert value(after, "emotion_worker_rss_bytes", pid=os.getpid()) > 50e6


@pytest.mark.no_model_needed
def test_the_app_port_has_no_metrics_route(client):
    resp = client.get("/metrics")
    assert resp.status_code == 404 and resp.get_json()["error"]["code"] == "not_found"


@pytest.mark.no_model_needed
def test_multiprocess_dir_is_fresh_and_kept_across_a_config_reload(tmp_path):
    env = {}
    made = metrics.setup_multiprocess(env)
    assert made.is_dir() and env[metrics.ENV_DIR] == str(made)
    (made / "counter_123.db").write_bytes(b"x")
    assert metrics.setup_multiprocess(env) == made and (made / "counter_123.db").exists()  # SIGHUP
    metrics.remove_owned_dir(env)
    assert not made.exists()

    given = tmp_path / "prom"
    given.mkdir()
    (given / "counter_99.db").write_bytes(b"stale")
    (given / "keep.txt").write_text("not ours")
    env = {metrics.ENV_DIR: str(given)}
    assert metrics.setup_multiprocess(env) == given
    assert not (given / "counter_99.db").exists() and (given / "keep.txt").exists()
    metrics.remove_owned_dir(env)
    assert given.exists()  # an operator's directory is never removed


# ---- real gunicorn, 2 workers -----------------------------------------------------------------------


def _wait_up(proc, port, metrics_port, log_path, seconds=180):
    deadline = time.monotonic() + seconds
    while True:
        try:
            if get(port, "/api/health", timeout=3)[0] == 200 and get(metrics_port, "/metrics", timeout=3)[0] == 200:
                return
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            pytest.fail("gunicorn did not start:\n" + log_path.read_text(errors="replace")[-3000:])
        time.sleep(0.3)


def _stop(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    directory = tmp_path_factory.mktemp("metrics")
    log_path = directory / "gunicorn.log"
    metrics_port = free_port()
    prom_dir = directory / "prom"
    proc, port = start_gunicorn(
        log_path,
        workers=2,
        env={
            "METRICS_PORT": str(metrics_port),
            "METRICS_ADDR": "127.0.0.1",
            "PROMETHEUS_MULTIPROC_DIR": str(prom_dir),
            "GUNICORN_MAX_REQUESTS": "0",
        },
    )
    try:
        _wait_up(proc, port, metrics_port, log_path)
        yield {"proc": proc, "port": port, "metrics": metrics_port, "log": log_path, "dir": prom_dir}
    finally:
        _stop(proc)


def _worker_of_each_request(port: int, n: int) -> list[int]:
    """The pid that answered each of `n` health checks sent at the same moment, each on a new
    connection (both workers wake up on the listening socket; one at a time, an idle server may hand
    every connection to the same worker)."""
    import json
    import threading

    pids: list[int] = []
    start = threading.Barrier(n)

    def one():
        start.wait(10)
        status, _, body = get(port, "/api/health")
        assert status == 200
        pids.append(json.loads(body)["pid"])

    threads = [threading.Thread(target=one) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(pids) == n
    return pids


def test_counters_move_and_every_worker_is_counted(served):
    port, mport = served["port"], served["metrics"]
    before = scrape(mport)
    # Health checks on new connections until both workers have answered some; every one of them
    # must be in the master's total.
    # (A worker still loading its models takes no connection yet: on a busy machine the second one
    # may need several seconds more than the first, so keep asking for up to a minute.)
    pids: list[int] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        pids += _worker_of_each_request(port, 8)
        if len(set(pids)) == 2:
            break
        time.sleep(0.2)
    assert len(set(pids)) == 2, f"one worker answered everything: {pids}"
    photo = g.jpeg(g.astronaut())
    for _ in range(4):
        status, reply = post_photo(port, photo)
        assert status == 200, reply
    assert get(port, "/api/predict")[0] == 405
    after = scrape(mport)

    def moved(name, **labels):
        return total(after, name, **labels) - total(before, name, **labels)

    assert moved("emotion_http_requests_total", route="/api/health", status=200) == len(pids)
    assert moved("emotion_http_requests_total", route="/api/predict", status=200) == 4
    assert moved("emotion_http_rejected_total", status=405, reason="method_not_allowed") == 1
    assert moved("emotion_predictions_total") == 4
    assert moved("emotion_predict_faces_sum") == 4  # one face in each
    assert moved("emotion_predict_stage_duration_seconds_count", stage="classify") == 4
    assert moved("emotion_http_request_duration_seconds_count", route="/api/predict") == 4
    # a method no route takes is not routed: "unmatched", as an unknown path
    assert moved("emotion_http_requests_total", route="unmatched", method="GET", status=405) == 1
    # the master reads each live worker's memory when it is scraped
    assert value(after, "emotion_workers") == 2
    assert value(after, "emotion_http_requests_in_flight") == 0
    rss = {int(dict(lab)["pid"]): v for (n, lab), v in after.items() if n == "emotion_worker_rss_bytes"}
    assert set(rss) == set(pids) and all(v > 50e6 for v in rss.values()), rss


def test_a_dead_workers_counts_stay_and_its_files_are_folded(served):
    import json

    port, mport, directory = served["port"], served["metrics"], served["dir"]
    before = scrape(mport)
    health = 1
    pid = json.loads(get(port, "/api/health")[2])["pid"]
    assert list(directory.glob(f"gauge_livesum_{pid}.db")) and list(directory.glob(f"counter_{pid}.db"))
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 120
    while True:  # gunicorn starts a replacement, which answers once warmed up
        after = scrape(mport)
        pids = {int(dict(lab)["pid"]) for (n, lab), _ in after.items() if n == "emotion_worker_rss_bytes"}
        if pid not in pids and len(pids) == 2:
            health += 1
            if get(port, "/api/health")[0] == 200:
                break
        assert time.monotonic() < deadline, f"no replacement worker: {pids}"
        time.sleep(0.5)
    after = scrape(mport)
    # not one request lost or counted twice: the dead worker's counts moved into the archive
    key = "emotion_http_requests_total"
    assert total(after, key, route="/api/health") == total(before, key, route="/api/health") + health
    assert (
        total(after, "emotion_http_request_duration_seconds_count", route="/api/health")
        == total(before, "emotion_http_request_duration_seconds_count", route="/api/health") + health
    )
    assert not list(directory.glob(f"*_{pid}.db")), sorted(p.name for p in directory.iterdir())
    assert (directory / "counter_archive.db").exists() and (directory / "histogram_archive.db").exists()


@pytest.mark.no_model_needed
def test_folding_a_dead_worker_keeps_every_count(tmp_path, monkeypatch):
    """mark_dead on files written as a worker writes them: the totals do not change."""
    from prometheus_client.mmap_dict import MmapedDict, mmap_key

    monkeypatch.setenv(metrics.ENV_DIR, str(tmp_path))
    key = mmap_key("emotion_x", "emotion_x_total", ["route"], ["/a"], "help")
    for pid, n in ((101, 3.0), (102, 4.0)):
        d = MmapedDict(str(tmp_path / f"counter_{pid}.db"))
        d.write_value(key, n, 0.0)
        d.close()
    gauge = MmapedDict(str(tmp_path / "gauge_livesum_101.db"))
    gauge.write_value(mmap_key("emotion_y", "emotion_y", [], [], "help"), 1.0, 0.0)
    gauge.close()
    first = parse(metrics.render(lambda: [])[0].decode())
    metrics.mark_dead(101)
    metrics.mark_dead(102)
    metrics.mark_dead(103)  # a worker that never wrote anything
    assert sorted(p.name for p in tmp_path.iterdir()) == ["counter_archive.db"]
    again = parse(metrics.render(lambda: [])[0].decode())
    assert value(first, "emotion_x_total", route="/a") == value(again, "emotion_x_total", route="/a") == 7.0


def test_metrics_are_not_on_the_public_port(served):
    status, headers, body = get(served["port"], "/metrics")
    assert status == 404 and headers["content-type"] == "application/json"


def test_metrics_port_in_use_does_not_stop_the_server(tmp_path):
    """A second server configured with a taken metrics port logs it and serves people anyway."""
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        mport = taken.getsockname()[1]
        log_path = tmp_path / "gunicorn.log"
        proc, port = start_gunicorn(
            log_path, workers=1, warmup="lazy", env={"METRICS_PORT": str(mport), "METRICS_ADDR": "127.0.0.1"}
        )
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if get(port, "/api/health", timeout=3)[0] == 200:
                        break
                except OSError:
                    pass
                assert proc.poll() is None and time.monotonic() < deadline, log_path.read_text()[-2000:]
                time.sleep(0.3)
            assert "metrics: cannot listen" in log_path.read_text()
        finally:
            _stop(proc)


def test_live_frames_are_counted_by_how_their_faces_were_found(client, has_model):
    if not has_model:
        pytest.skip("no model card to serve")
    import io
    import json

    from tests.app import imagegen as g

    def live(track):
        form = {"image": (io.BytesIO(g.jpeg(g.astronaut())), "f.jpg"), "track": json.dumps(track)}
        return client.post("/api/predict", data=form, content_type="multipart/form-data").get_json()

    before = parse(metrics.render()[0].decode())
    first = live({})
    live({"faces": [{"id": f["track"], "box": f["box"]} for f in first["faces"]], "since_full": 0, "age_ms": 50})
    after = parse(metrics.render()[0].decode())
    for mode, reason in (("full", "no_faces"), ("tracked", "ok")):
        assert (
            value(after, "emotion_live_frames_total", mode=mode, reason=reason)
            - value(before, "emotion_live_frames_total", mode=mode, reason=reason)
        ) == 1, (mode, reason)

"""Prometheus metrics (issue 24): what an operator watches, counted in every gunicorn worker.

Served in the Prometheus text format at `/metrics` on an internal port (`METRICS_PORT`, 9100) by
the gunicorn *master*, never on the app's public port: gunicorn.conf.py calls `setup_multiprocess()`
before anything imports prometheus_client, `start_exporter(arbiter)` when gunicorn is ready and
`mark_dead(pid)` when a worker exits. Each worker writes its counters to memory-mapped files in
`PROMETHEUS_MULTIPROC_DIR` (prometheus_client's multiprocess mode) and the master adds them up at
scrape time, so every worker is counted, a scrape never takes one of the app's few threads, and no
proxy (nginx, an Ingress, a cloud balancer) can publish the metrics by forwarding the public port.

What the workers record (`init_app` wires the request hooks; the routes call the `observe_*`
functions):

| metric | labels | from |
|---|---|---|
| `emotion_http_requests_total` | route (the URL rule; `unmatched`: 404/405), method, status | every request |
| `emotion_http_request_duration_seconds` | route | every request (histogram) |
| `emotion_http_rejected_total` | status, reason (the JSON error's code) | every 4xx the app answers |
| `emotion_http_requests_in_flight` | - | requests inside the app now, summed over live workers |
| `emotion_predict_stage_duration_seconds` | stage: decode, detect, classify, speech | `observe_predict` |
| `emotion_predict_faces` | - | faces found per image (histogram) |
| `emotion_predictions_total` | model | `observe_predict` |
| `emotion_live_frames_total` | mode: tracked, full; reason: ok, no_faces, periodic, stale, bad_box, many_faces, lost | `observe_tracking` |
| `emotion_live_tracks_per_frame` | mode: tracked, full | `observe_tracking` |
| `emotion_worker_rss_bytes` | pid | read from /proc by the master at scrape time |
| `emotion_workers` | - | workers the master runs |

Metric objects are made on first use, in the worker: a module that only defines them would leave a
file per metric behind in the master, which never serves a request.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path

log = logging.getLogger(__name__)

ENV_DIR = "PROMETHEUS_MULTIPROC_DIR"
STAGES = ("decode", "detect", "classify", "speech")
TRACKING_MODES = ("tracked", "full")  # app/tracking.Located.mode
TRACKING_REASONS = ("ok", "no_faces", "periodic", "stale", "bad_box", "many_faces", "lost")  # Located.reason
# Seconds. A webcam frame takes 20-60 ms end to end, a 3-face photo ~140 ms, a 40 MP PNG ~1.3 s
# (docs/BENCHMARKS.md); gunicorn's timeout is 30 s.
REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
STAGE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
FACE_BUCKETS = (0, 1, 2, 3, 5, 10, 20)  # MAX_FACES is 20
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


# ---- the master: where the files live, the exporter, dead workers -----------------------------------


def setup_multiprocess(environ=os.environ) -> Path:
    """Give this server a multiprocess directory before prometheus_client is imported (it picks its
    value class at import). An operator's `PROMETHEUS_MULTIPROC_DIR` is used as given; otherwise a
    fresh directory under the temporary directory (`/tmp`, an emptyDir in Kubernetes). Either way it
    starts empty: files left by an earlier run would be added to this one's counts. Idempotent:
    gunicorn re-reads its config file on SIGHUP, and the live workers' files must survive that."""
    if environ.get("_EMOTION_METRICS_DIR_READY") == environ.get(ENV_DIR) and environ.get(ENV_DIR):
        return Path(environ[ENV_DIR])
    given = environ.get(ENV_DIR)
    if given:
        path = Path(given)
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.db"):
            stale.unlink()
    else:
        path = Path(tempfile.mkdtemp(prefix="emotion-metrics-"))
        environ["_EMOTION_METRICS_DIR_OWNED"] = str(path)
        environ[ENV_DIR] = str(path)
    environ["_EMOTION_METRICS_DIR_READY"] = str(path)
    return path


def remove_owned_dir(environ=os.environ) -> None:
    """gunicorn's on_exit: remove the directory setup_multiprocess made (never an operator's)."""
    owned = environ.get("_EMOTION_METRICS_DIR_OWNED")
    if owned and owned == environ.get(ENV_DIR):
        shutil.rmtree(owned, ignore_errors=True)


# The master's exporter thread reads the files while its main thread folds a dead worker's into the
# archive: one lock, so a scrape never sees a count twice or not at all.
_files_lock = threading.Lock()
ARCHIVED_TYPES = ("counter", "histogram")


def mark_dead(pid: int) -> None:
    """gunicorn's child_exit: drop a dead worker's live gauges, and fold its counters and histograms
    into one archive file per type (`counter_archive.db`, ...) so that the totals keep them. Without
    this every replaced worker (max_requests recycles one every ~1000 requests) would leave its files
    behind, and the directory, a memory-backed emptyDir in Kubernetes, and the time of each scrape
    would grow without end."""
    path = os.environ.get(ENV_DIR)
    if not path:
        return
    from prometheus_client import multiprocess
    from prometheus_client.mmap_dict import MmapedDict

    with _files_lock:
        multiprocess.mark_process_dead(pid, path)
        for typ in ARCHIVED_TYPES:
            dead = Path(path) / f"{typ}_{pid}.db"
            if not dead.exists():
                continue
            archive = MmapedDict(str(Path(path) / f"{typ}_archive.db"))
            try:
                for key, value, timestamp, _pos in MmapedDict.read_all_values_from_file(str(dead)):
                    total, _ = archive.read_value(key)
                    archive.write_value(key, total + value, timestamp)
            finally:
                archive.close()
            dead.unlink()


class _LockedCollector:
    """MultiProcessCollector read under the master's files lock (see mark_dead)."""

    def __init__(self, path: str):
        from prometheus_client import multiprocess

        self._collector = multiprocess.MultiProcessCollector(None, path=path)

    def collect(self):
        with _files_lock:
            return list(self._collector.collect())


def process_rss_bytes(pid: int | str = "self") -> int:
    """Resident memory of a process, from /proc (0 where there is none)."""
    try:
        with open(f"/proc/{pid}/statm", "rb") as f:
            return int(f.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return 0


class WorkerCollector:
    """The workers' resident memory, read by the master when Prometheus scrapes: a busy or stuck
    worker is measured as well as an idle one, and a gone one is not reported."""

    def __init__(self, pids):
        self._pids = pids  # () -> iterable of worker pids

    def collect(self):
        from prometheus_client.core import GaugeMetricFamily

        pids = sorted(self._pids())
        rss = GaugeMetricFamily("emotion_worker_rss_bytes", "Resident memory of each gunicorn worker", labels=["pid"])
        for pid in pids:
            rss.add_metric([str(pid)], process_rss_bytes(pid))
        yield rss
        yield GaugeMetricFamily("emotion_workers", "gunicorn workers running", value=len(pids))


def registry(pids=None):
    """A registry of everything the workers wrote (multiprocess mode), or of this process alone."""
    from prometheus_client import REGISTRY, CollectorRegistry

    if os.environ.get(ENV_DIR):
        reg = CollectorRegistry()
        reg.register(_LockedCollector(os.environ[ENV_DIR]))
    else:
        reg = CollectorRegistry()
        _metrics()  # this process's own metrics live in the default registry
        reg.register(_DefaultRegistryView(REGISTRY))
    reg.register(WorkerCollector(pids or (lambda: [os.getpid()])))
    return reg


class _DefaultRegistryView:
    def __init__(self, reg):
        self._reg = reg

    def collect(self):
        return self._reg.collect()


def render(pids=None) -> tuple[bytes, str]:
    """The Prometheus text exposition and its content type."""
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    return generate_latest(registry(pids)), CONTENT_TYPE_LATEST


def start_exporter(arbiter, port: int, addr: str = "0.0.0.0"):
    """gunicorn's when_ready: serve `/metrics` from the master on `addr:port` (a thread). A port in
    use is logged, not fatal: the app serves people without its metrics."""
    if not port:
        return None
    from prometheus_client import start_http_server

    try:
        server, _thread = start_http_server(port, addr, registry=registry(lambda: list(arbiter.WORKERS)))
    except OSError as exc:
        arbiter.log.error("metrics: cannot listen on %s:%s (%s); /metrics is not served", addr, port, exc)
        return None
    arbiter.log.info("metrics: http://%s:%s/metrics (internal port; not proxied)", addr, port)
    return server


# ---- the workers: what requests record ------------------------------------------------------------


class _Metrics:
    def __init__(self):
        from prometheus_client import Counter, Gauge, Histogram

        self.requests = Counter(
            "emotion_http_requests_total", "HTTP requests answered by the app", ["route", "method", "status"]
        )
        self.duration = Histogram(
            "emotion_http_request_duration_seconds",
            "Time from the request reaching the app to its response",
            ["route"],
            buckets=REQUEST_BUCKETS,
        )
        self.rejected = Counter(
            "emotion_http_rejected_total",
            "Requests the app refused with a 4xx, by status and error code",
            ["status", "reason"],
        )
        self.in_flight = Gauge(
            "emotion_http_requests_in_flight", "Requests being served by the app now", multiprocess_mode="livesum"
        )
        self.stages = Histogram(
            "emotion_predict_stage_duration_seconds",
            "Time of each /api/predict stage",
            ["stage"],
            buckets=STAGE_BUCKETS,
        )
        self.faces = Histogram("emotion_predict_faces", "Faces found per analysed image", buckets=FACE_BUCKETS)
        self.predictions = Counter("emotion_predictions_total", "Images analysed, by model", ["model"])
        self.live_frames = Counter(
            "emotion_live_frames_total",
            "Live frames (a track hint), by how their faces were found and why",
            ["mode", "reason"],
        )
        self.tracks_per_frame = Histogram(
            "emotion_live_tracks_per_frame", "Faces with a track id per live frame", ["mode"], buckets=FACE_BUCKETS
        )


_lock = threading.Lock()
_instance: _Metrics | None = None


def _metrics() -> _Metrics:
    global _instance
    if _instance is None:
        with _lock:
            if _instance is None:
                _instance = _Metrics()
    return _instance


def observe_predict(timings: dict[str, float], model: str | None = None, faces: int | None = None) -> None:
    """What /api/predict measured: seconds per stage (`timings`, as the route fills it), the model that
    ran and the number of faces found. Never raises: metrics must not fail a request."""
    try:
        m = _metrics()
        for stage in STAGES:
            if stage in timings:
                m.stages.labels(stage).observe(max(0.0, float(timings[stage])))
        if model:
            m.predictions.labels(str(model)[:100]).inc()
        if faces is not None:
            m.faces.observe(int(faces))
    except Exception:  # pragma: no cover - a metrics bug is logged, the reply still goes out
        log.exception("metrics: observe_predict failed")


def observe_stages(timings: dict[str, float]) -> None:
    """Stage timings alone (`observe_predict` without a model or faces)."""
    observe_predict(timings)


def observe_tracking(mode: str, reason: str, n_tracks: int) -> None:
    """One live frame (app/tracking.py): `mode` "tracked" or "full", the `reason` a full detection ran
    ("ok" when tracked) and how many faces it answered with. Values outside the known sets are counted
    as "other", so a caller cannot add label values."""
    try:
        mode = mode if mode in TRACKING_MODES else "other"
        reason = reason if reason in TRACKING_REASONS else "other"
        n = max(0, int(n_tracks))
        m = _metrics()
        m.live_frames.labels(mode, reason).inc()
        m.tracks_per_frame.labels(mode).observe(n)
    except Exception:  # pragma: no cover
        log.exception("metrics: observe_tracking failed")


def _error_code(response) -> str:
    if response.is_streamed or not response.is_json:
        return "other"
    body = response.get_json(silent=True)
    error = body.get("error") if isinstance(body, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    return code[:60] if isinstance(code, str) and code else "other"


def init_app(app) -> None:
    """Count every request the app answers (gunicorn's own 400/414/431, answered before the app sees
    the request, are not: nginx's log has those)."""
    from flask import g, request

    @app.before_request
    def _started():
        g.metrics_t0 = time.perf_counter()
        try:
            _metrics().in_flight.inc()
            g.metrics_in_flight = True
        except Exception:  # pragma: no cover
            log.exception("metrics: counting a request failed")

    @app.teardown_request
    def _finished(exc=None):
        if g.pop("metrics_in_flight", False):
            _metrics().in_flight.dec()

    @app.after_request
    def _count(response):
        try:
            m = _metrics()
            rule = request.url_rule
            route = rule.rule if rule is not None else "unmatched"
            status = response.status_code
            m.requests.labels(route, request.method if request.method in _METHODS else "other", str(status)).inc()
            t0 = g.get("metrics_t0")
            if t0 is not None:
                m.duration.labels(route).observe(time.perf_counter() - t0)
            if 400 <= status < 500:
                m.rejected.labels(str(status), _error_code(response)).inc()
        except Exception:  # pragma: no cover
            log.exception("metrics: counting a request failed")
        return response


_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"})

"""gunicorn settings: `gunicorn -c gunicorn.conf.py wsgi:app`.

Each worker loads the detector and models itself, on ONNX Runtime. preload_app stays off: the
runtime's thread pools do not survive fork. The app loads them in a background thread, so a worker
answers gunicorn's heartbeat while it warms up and the first request simply waits.
"""

import os

# Issue 24, metrics: prometheus_client picks its multiprocess mode when it is first imported, so the
# directory the workers write their counters to is set up before anything imports it (app/metrics.py).
from app import metrics  # noqa: E402  (imports no prometheus_client at module level)

metrics.setup_multiprocess()

from app import logs, serving  # noqa: E402

bind = f"0.0.0.0:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", os.environ.get("GUNICORN_WORKERS", "2")))
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "2"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
graceful_timeout = 30
keepalive = 5
preload_app = False
# Recycle workers now and then, a safety net (the 10-minute soak benchmark showed flat memory with
# recycling off); jitter keeps them from restarting together.
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "1000"))
max_requests_jitter = int(os.environ.get("GUNICORN_MAX_REQUESTS_JITTER", "100"))
# Requests carry at most a 16 MB body (MAX_CONTENT_LENGTH); headers stay small.
limit_request_line = 8190
accesslog = "-"
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOGLEVEL", "info")

# Issue 11: gunicorn's own errors (400, 414, 431, ...) in the app's JSON with its security headers;
# "Connection: close" when the app answered without reading the whole body; workers leave with
# os._exit so ONNX Runtime's C++ teardown cannot abort them (app/serving.py says why).
serving.install_json_errors()
# Issue 24: a chunk size of 2^64 - 1, one over the body cap, or bare-LF chunk framing fails at once
# (400 / 413) instead of holding a thread until the client leaves.
serving.install_chunk_limits()
# Issue 16: after a request that grew the worker by more than GUNICORN_TRIM_GROWTH_MB, give glibc's
# free pages back (malloc_trim); retire a worker still over GUNICORN_MAX_WORKER_RSS_MB (0: never).
# Measured by `python -m benchmarks memory` (docs/BENCHMARKS.md).
memory_guard = serving.MemoryGuard(
    trim_growth_mb=float(os.environ.get("GUNICORN_TRIM_GROWTH_MB", "64")),
    max_rss_mb=float(os.environ.get("GUNICORN_MAX_WORKER_RSS_MB", "1024")),
)
pre_request = memory_guard.pre_request
post_request = memory_guard.post_request
worker_exit = serving.worker_exit
# No control socket ($HOME/.gunicorn/gunicorn.ctl): nothing here uses it, and two servers on one
# machine (tests, a second deployment) would share the path.
control_socket_disable = True

# Issue 24: /metrics (Prometheus text format) on an internal port, served by this master from every
# worker's counters; the public port (PORT) has no /metrics, so no proxy in front can publish it.
# METRICS_PORT=0 turns it off; METRICS_ADDR narrows where it listens (a pod IP is reachable only inside
# the cluster, and deploy/kubernetes/networkpolicy.yaml admits only the monitoring namespace).
metrics_port = int(os.environ.get("METRICS_PORT", "9100"))
metrics_addr = os.environ.get("METRICS_ADDR", "0.0.0.0")


def when_ready(server):
    metrics.start_exporter(server, metrics_port, metrics_addr)


def child_exit(server, worker):
    metrics.mark_dead(worker.pid)  # its live gauges go; its counters are kept in an archive file


def on_exit(server):
    metrics.remove_owned_dir()


# Issue 24: LOG_FORMAT=json makes gunicorn's error and access logs JSON lines (the app's own logs
# follow the same variable, app/logs.py), each with the request's X-Request-ID.
if logs.log_format() == "json":
    logger_class = logs.gunicorn_json_logger()

"""Throughput under load: N concurrent clients for D seconds on case (a), gunicorn as configured.

Worker recycling (gunicorn's max_requests) is switched off for the measurement, so a leak could not
hide behind a restarted worker; the workers' RSS is sampled every few seconds during the load.
"""

from __future__ import annotations

import threading
import time

import requests

from .common import percentiles
from .images import CASES, jpeg
from .server import gunicorn, rss_mb, worker_pids


def hammer(
    base: str, body: bytes, clients: int, seconds: float, pids=(), every: float = 5.0, keepalive: bool = True
) -> dict:
    lat, codes, lock = [], {}, threading.Lock()
    stop = time.perf_counter() + seconds
    samples = []  # (seconds since start, [RSS MB per worker])

    def client():
        s = requests.Session() if keepalive else requests
        while time.perf_counter() < stop:
            t = time.perf_counter()
            try:
                code = s.post(
                    base + "/api/predict", files={"image": ("a.jpg", body, "image/jpeg")}, timeout=60
                ).status_code
            except requests.RequestException:
                code = "error"
            with lock:
                lat.append((time.perf_counter() - t) * 1e3)
                codes[code] = codes.get(code, 0) + 1

    threads = [threading.Thread(target=client) for _ in range(clients)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    while pids and any(t.is_alive() for t in threads):
        samples.append((round(time.perf_counter() - t0, 1), [round(rss_mb(p)) for p in pids]))
        time.sleep(min(every, max(0.1, stop - time.perf_counter())))
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    return {
        "requests": len(lat),
        "rps": round(len(lat) / wall, 1),
        "latency_ms": percentiles(lat),
        "status": {str(k): v for k, v in codes.items()},
        "rss_samples": samples,
    }


def run(args, duration: float | None = None) -> dict:
    duration = args.duration if duration is None else duration
    body = jpeg(CASES["a_webcam_640x480_1face"][0]())
    with gunicorn(workers=2, env={"GUNICORN_MAX_REQUESTS": "0"}) as (base, proc, _):
        # Warm-up on a new connection per request, so that every worker gets its share (kept-alive
        # connections can all land on one worker, whose RSS would then look like growth later).
        hammer(base, body, args.concurrency, 10, keepalive=False)
        pids = worker_pids(proc.pid)
        rss_before = [round(rss_mb(p)) for p in pids]
        res = hammer(base, body, args.concurrency, duration, pids=pids, every=max(5.0, duration / 60))
        rss_after = [round(rss_mb(p)) for p in pids]
        alive = worker_pids(proc.pid)
    res.update(
        {
            "concurrency": args.concurrency,
            "duration_s": duration,
            "workers_restarted": sorted(alive) != sorted(pids),
            "rss_mb_after_warmup": rss_before,
            "rss_mb_after_load": rss_after,
        }
    )
    return res


def markdown(res: dict) -> str:
    growth = [
        round(100 * (a - b) / b, 1)
        for a, b in zip(res["rss_mb_after_load"], res["rss_mb_after_warmup"], strict=True)
        if b
    ]
    errors = sum(v for k, v in res["status"].items() if k != "200")
    return (
        f"{res['concurrency']} clients for {res['duration_s']} s on case (a): **{res['rps']} requests/s**, "
        f"p95 {res['latency_ms']['p95']} ms (median {res['latency_ms']['median']} ms), "
        f"{res['requests']} requests, non-200: {errors} ({res['status']}). Worker RSS after warm-up "
        f"{res['rss_mb_after_warmup']} MB, after the load {res['rss_mb_after_load']} MB (growth {growth} %; "
        f"worker recycling off, workers restarted: {res.get('workers_restarted', '?')})."
    )

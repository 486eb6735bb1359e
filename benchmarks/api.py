"""End-to-end /api/predict on a warm production server (gunicorn, 2 workers), one client.

Cases (a) 640x480 webcam-like JPEG with one face and (b) 1280x960 photo with three faces, speech off
and on, and with the live page's `min_face` hint (1/8 of the shorter side) (speech on: the reply is synthesised once per worker and then served from the cache, which is
what a live session sees). Also cold start: launch to first successful /api/predict, RSS per worker.
"""

from __future__ import annotations

import time

import numpy as np
import requests

from .common import percentiles
from .images import CASES, jpeg
from .server import gunicorn, rss_mb, worker_pids


def run(args) -> dict:
    n = args.requests
    out = {"cases": {}, "workers": 2}
    with gunicorn(workers=2) as (base, proc, t0):
        first = None
        body = jpeg(CASES["a_webcam_640x480_1face"][0]())
        while first is None:
            r = requests.post(base + "/api/predict", files={"image": ("a.jpg", body, "image/jpeg")}, timeout=120)
            if r.status_code == 200:
                first = time.perf_counter() - t0
        out["cold_start_s"] = round(first, 1)
        for case, (make, n_faces) in CASES.items():
            img = make()
            body = jpeg(img)
            live_hint = str(min(img.shape[:2]) // 8)  # what the live page sends as min_face
            for speak, min_face in (("false", ""), ("true", ""), ("false", live_hint)):
                lat, parts, found = [], {}, []
                fields = {"speak": speak, "min_face": min_face}
                for i in range(n + 4):
                    t = time.perf_counter()
                    r = requests.post(
                        base + "/api/predict", data=fields, files={"image": ("x.jpg", body, "image/jpeg")}, timeout=60
                    )
                    ms = (time.perf_counter() - t) * 1e3
                    r.raise_for_status()
                    j = r.json()
                    if i < 4:  # warm both workers (and their speech cache)
                        continue
                    lat.append(ms)
                    found.append(len(j["faces"]))
                    for k, v in j["timings_ms"].items():
                        parts.setdefault(k, []).append(v)
                label = f"{case} speak={speak}" + (f" min_face={min_face}" if min_face else "")
                out["cases"][label] = {
                    "bytes": len(body),
                    "expected_faces": n_faces,
                    "faces_found": sorted(set(found)),
                    "latency_ms": percentiles(lat),
                    "server_ms_median": {k: round(float(np.median(v)), 1) for k, v in parts.items()},
                    "emotion": j["emotion"],
                }
        out["rss_mb_per_worker"] = [round(rss_mb(p)) for p in worker_pids(proc.pid)]
    return out


def markdown(res: dict) -> str:
    lines = [
        f"Cold start (launch to first successful /api/predict): **{res['cold_start_s']} s**; "
        f"RSS per worker after the run: {', '.join(f'{m} MB' for m in res['rss_mb_per_worker'])}.",
        "",
        "| case | faces found | median ms | p95 ms | server breakdown (median ms) |",
        "|---|---|---|---|---|",
    ]
    for case, c in res["cases"].items():
        parts = ", ".join(f"{k} {v}" for k, v in c["server_ms_median"].items())
        lines.append(
            f"| {case} | {c['faces_found']} (of {c['expected_faces']}) | **{c['latency_ms']['median']}** | "
            f"{c['latency_ms']['p95']} | {parts} |"
        )
    return "\n".join(lines)

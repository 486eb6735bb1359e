"""Worker memory and CPU per request under a hostile mix (issue 16): `python -m benchmarks memory`.

gunicorn with gunicorn.conf.py (2 gthread workers x 2 threads, max_requests off), once per variant of
the memory guard (app/serving.py MemoryGuard):

- `off`: no malloc_trim, no RSS limit (what issue 16 found);
- `trim`: malloc_trim(0) after a request that grew the worker by > 64 MB;
- `shipped`: trim + a worker over GUNICORN_MAX_WORKER_RSS_MB (1024) is replaced.

Phases: warm-up (webcam frames on fresh connections, so both workers serve); each hostile case sent
twice by one client (per request: status, wall time, CPU-s of all workers, and peak RSS growth from
the kernel's high-water mark VmHWM, reset before each request through /proc/PID/clear_refs); then 4
clients sending the mix at once for a while (peak RSS per worker); then 20 webcam frames and the
steady-state RSS per worker.
"""

from __future__ import annotations

import io
import threading
import time
from pathlib import Path

import requests
from PIL import Image

from .server import cpu_s, gunicorn, worker_pids

VARIANTS = {
    "off": {"GUNICORN_TRIM_GROWTH_MB": "0", "GUNICORN_MAX_WORKER_RSS_MB": "0"},
    "trim": {"GUNICORN_TRIM_GROWTH_MB": "64", "GUNICORN_MAX_WORKER_RSS_MB": "0"},
    "shipped": {},
}


def _status(pid: int) -> dict[str, float]:
    out = {}
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(("VmRSS:", "VmHWM:")):
                out[line.split(":")[0]] = int(line.split()[1]) / 1024
    except OSError:
        pass
    return out


def _reset_hwm(pid: int) -> None:
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")  # resets VmHWM to the current RSS
    except OSError:
        pass


def _cases() -> dict[str, tuple]:
    from tests.app import imagegen as g
    from tests.app.test_load import webcam_frame
    from tests.app.test_mtcnn_ort import face_grid

    w, h = 7300, 5475  # 40 MP, just under MAX_PIXELS
    flat = Image.new("RGB", (w, h), (180, 120, 90))
    buf = io.BytesIO()
    flat.save(buf, "JPEG", quality=80)
    return {
        "webcam-640x480": (webcam_frame(), "image/jpeg"),
        "png-40mp-rgba16": (g.flat_png(w, h, "RGBA", 16), "image/png"),
        "png-40mp-grey16": (g.flat_png(w, h, "L", 16), "image/png"),
        "png-40mp-palette-trns": (g.flat_png(w, h, "P"), "image/png"),
        "png-40mp-rgb": (g.flat_png(w, h, "RGB"), "image/png"),
        "jpeg-40mp": (buf.getvalue(), "image/jpeg"),
        "face-grid-1100": (g.jpeg(face_grid()), "image/jpeg"),
        # issue 24: the largest grids, with the most expensive model (two members, mirror each)
        "face-grid-1600 ensemble": (g.jpeg(face_grid(side=30, n=40)), "image/jpeg", {"model": "ensemble"}),
        "face-grid-2601 ensemble": (g.jpeg(face_grid(side=24, n=51)), "image/jpeg", {"model": "ensemble"}),
        "jpeg-scan-bomb": (g.scan_bomb_jpeg(6000, 6000, 5000), "image/jpeg"),
        "png-pixel-bomb": (g.pixel_bomb_png(20000, 20000), "image/png"),
    }


def _post(session, base: str, body: bytes, mime: str, fields: dict | None = None) -> int:
    try:
        return session.post(
            base + "/api/predict", files={"image": ("x", body, mime)}, data=fields or {}, timeout=120
        ).status_code
    except requests.RequestException:
        return -1


def _variant(name: str, env: dict, cases: dict, concurrent_s: float) -> dict:
    env = dict({"GUNICORN_MAX_REQUESTS": "0"}, **env)
    webcam = cases["webcam-640x480"]
    with gunicorn(workers=2, env=env) as (base, proc, _):
        for _ in range(12):
            _post(requests, base, *webcam)  # new connection each: both workers warm up
        pids = worker_pids(proc.pid)
        baseline = {p: round(_status(p).get("VmRSS", 0)) for p in pids}
        per_case: dict[str, list] = {}
        session = requests.Session()
        for case, (body, mime, *fields) in cases.items():
            for _ in range(2):
                pids = worker_pids(proc.pid)
                before = {p: _status(p).get("VmRSS", 0) for p in pids}
                for p in pids:
                    _reset_hwm(p)
                cpu0 = sum(cpu_s(p) for p in pids)
                t0 = time.perf_counter()
                code = _post(session, base, body, mime, *fields)
                wall = time.perf_counter() - t0
                time.sleep(0.3)  # post_request (the trim) runs after the response is sent
                cpu = sum(cpu_s(p) for p in pids) - cpu0
                growth = max((_status(p).get("VmHWM", 0) - before.get(p, 0) for p in pids), default=0)
                per_case.setdefault(case, []).append(
                    {"status": code, "wall_s": round(wall, 2), "cpu_s": round(cpu, 2), "peak_growth_mb": round(growth)}
                )
        # Concurrent phase: 4 clients cycling through the mix.
        pids = worker_pids(proc.pid)
        for p in pids:
            _reset_hwm(p)
        stop = time.perf_counter() + concurrent_s
        codes: dict[str, int] = {}
        lock = threading.Lock()
        peaks: dict[int, float] = {}
        mix = [v for k, v in cases.items()]

        def client(offset: int):
            s = requests.Session()
            i = offset
            while time.perf_counter() < stop:
                code = _post(s, base, *mix[i % len(mix)])
                i += 1
                with lock:
                    codes[str(code)] = codes.get(str(code), 0) + 1

        threads = [threading.Thread(target=client, args=(k * 2,)) for k in range(4)]
        for t in threads:
            t.start()
        while any(t.is_alive() for t in threads):
            for p in worker_pids(proc.pid):
                peaks[p] = max(peaks.get(p, 0), _status(p).get("VmHWM", 0))
            time.sleep(0.5)
        for t in threads:
            t.join()
        for _ in range(20):
            _post(requests, base, *webcam)
        time.sleep(1.0)
        final_pids = worker_pids(proc.pid)
        steady = {p: round(_status(p).get("VmRSS", 0)) for p in final_pids}
        restarted = len(set(final_pids) - set(baseline))
    return {
        "variant": name,
        "env": env,
        "baseline_rss_mb": list(baseline.values()),
        "per_case": per_case,
        "concurrent": {
            "clients": 4,
            "seconds": concurrent_s,
            "status": codes,
            "peak_rss_mb": [round(v) for v in peaks.values()],
        },
        "steady_rss_mb": list(steady.values()),
        "workers_replaced": restarted,
    }


def run(args) -> dict:
    cases = _cases()
    seconds = float(getattr(args, "memory_duration", 40))
    variants = [_variant(name, env, cases, seconds) for name, env in VARIANTS.items()]
    return {"cases": {k: {"bytes": len(v[0]), "type": v[1]} for k, v in cases.items()}, "variants": variants}


def markdown(res: dict) -> str:
    variants = res["variants"]
    shipped = next((v for v in variants if v["variant"] == "shipped"), variants[-1])
    lines = [
        "Per request (one client, each case twice, `shipped` variant): status, CPU-s of the workers, "
        "peak RSS growth of the worker (VmHWM).",
        "",
        "| case | size | status | CPU-s | peak growth MB |",
        "|---|---|---|---|---|",
    ]
    for case, runs in shipped["per_case"].items():
        size = res["cases"][case]["bytes"]
        lines.append(
            f"| {case} | {size / 1024:.0f} KB | {runs[-1]['status']} | "
            f"{max(r['cpu_s'] for r in runs)} | {max(r['peak_growth_mb'] for r in runs)} |"
        )
    lines += [
        "",
        "Worker RSS by memory-guard variant (MB per worker): after warm-up, peak while 4 clients "
        "send the mix at once, and after 20 webcam frames that follow.",
        "",
        "| variant | after warm-up | peak under the mix | steady state after | workers replaced | concurrent statuses |",
        "|---|---|---|---|---|---|",
    ]
    for v in variants:
        lines.append(
            f"| {v['variant']} | {'/'.join(map(str, v['baseline_rss_mb']))} | "
            f"{'/'.join(map(str, v['concurrent']['peak_rss_mb']))} | {'/'.join(map(str, v['steady_rss_mb']))} | "
            f"{v['workers_replaced']} | {v['concurrent']['status']} |"
        )
    return "\n".join(lines)

"""Live streaming throughput (issue 23): gunicorn as shipped, several clients streaming a recorded clip
the way the page sends it, today's path and the tracked path side by side in one run.

The clip is benchmarks/clips.py's "walk" scene (one real face moving, turning and coming closer: a
person in front of a webcam), as the 480x360 JPEGs at quality 0.8 the page posts, looped. Each client
is one live page: a kept-alive connection, one frame in flight, the next frame as soon as the answer
is in (a closed loop, so the server is saturated and the figure is its capacity).

- `min_face` (before issue 23): every frame a full detection with the page's min_face hint, posted as
  the page posted it then (multipart: `image`, `min_face`, `lang`, `speak`);
- `tracked` (the page now): the JPEG as the whole body and the fields in the query string with the
  `track` hint built from the previous answer as js/live.js builds it (app/tracking.py).

Phases alternate (min_face, tracked, min_face, tracked) so that drift on a shared VM hits both. The
figures per path: analysed frames per second, latency, errors, and the workers' CPU time per frame
(utime + stime from /proc over the phase), from which the server CPU per live user at the page's
rate follows. The clients run on the same two cores, so frames/s is what the box does with its
clients; CPU per frame is the server's alone.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
import uuid
from urllib.parse import urlencode

from .common import percentiles
from .server import cpu_s, gunicorn, worker_pids

PATHS = ("min_face", "tracked")
PAGE_FPS = 12  # the rate the issue asks the page to reach when the server keeps up


def _multipart(fields: dict[str, str], image: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode() for k, v in fields.items()
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="frame.jpg"\r\n'
        f"Content-Type: image/jpeg\r\n\r\n".encode()
        + image
        + b"\r\n"
    )
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def stream(port: int, jpegs: list[bytes], path: str, seconds: float, client: int, out: dict, lock) -> None:
    """One live page streaming `jpegs` in a loop for `seconds`."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    min_face = str(360 // 8)
    hint = {}
    last = None
    i = client * 7  # clients start at different frames of the clip
    stop = time.perf_counter() + seconds
    lat, codes, modes = [], {}, {}
    while time.perf_counter() < stop:
        fields = {"min_face": min_face, "lang": "en", "speak": "false"}
        if path == "overhead":  # the stack alone: gunicorn, Flask, a small JSON answer
            body, ctype, url = b"", "text/plain", "/api/health"
        elif path == "tracked":
            if last is not None:
                hint["age_ms"] = round((time.perf_counter() - last) * 1000)
            fields["track"] = json.dumps(hint)
            body, ctype = jpegs[i % len(jpegs)], "image/jpeg"
            url = "/api/predict?" + urlencode(fields)
        else:
            body, ctype = _multipart(fields, jpegs[i % len(jpegs)])
            url = "/api/predict"
        t = time.perf_counter()
        try:
            if path == "overhead":
                conn.request("GET", url)
            else:
                conn.request("POST", url, body, {"Content-Type": ctype})
            resp = conn.getresponse()
            data = resp.read()
            code = resp.status
        except (OSError, http.client.HTTPException):
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            code, data = "error", b""
        lat.append((time.perf_counter() - t) * 1e3)
        codes[code] = codes.get(code, 0) + 1
        if code == 200 and path == "tracked":
            answer = json.loads(data)
            hint = {
                "faces": [{"id": f["track"], "box": f["box"]} for f in answer["faces"]],
                "since_full": answer["track"]["since_full"],
            }
            modes[answer["track"]["mode"]] = modes.get(answer["track"]["mode"], 0) + 1
            last = t
        i += 1
    conn.close()
    with lock:
        out["latency_ms"].extend(lat)
        for k, v in codes.items():
            out["status"][str(k)] = out["status"].get(str(k), 0) + v
        for k, v in modes.items():
            out["modes"][k] = out["modes"].get(k, 0) + v


def phase(port: int, pids: list[int], jpegs: list[bytes], path: str, clients: int, seconds: float) -> dict:
    out, lock = {"latency_ms": [], "status": {}, "modes": {}}, threading.Lock()
    cpu0 = sum(cpu_s(p) for p in pids)
    t0 = time.perf_counter()
    threads = [threading.Thread(target=stream, args=(port, jpegs, path, seconds, c, out, lock)) for c in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    cpu = sum(cpu_s(p) for p in pids) - cpu0
    n = len(out["latency_ms"])
    return {
        "path": path,
        "frames": n,
        "wall_s": round(wall, 2),
        "fps": round(n / wall, 1),
        "server_cpu_ms_per_frame": round(1000 * cpu / max(1, n), 2),
        "latency_ms": percentiles(out["latency_ms"]),
        "status": out["status"],
        "modes": out["modes"],
    }


def run(args) -> dict:
    from .clips import make_clip

    clip = make_clip("walk", n_frames=48)
    seconds = max(5.0, args.live_duration / 2)
    with gunicorn(workers=2, env={"GUNICORN_MAX_REQUESTS": "0"}) as (base, proc, _):
        port = int(base.rsplit(":", 1)[1])
        pids = worker_pids(proc.pid)
        for path in PATHS:  # warm-up: every worker has seen both paths
            phase(port, pids, clip.jpegs, path, args.live_clients, 3)
        phases = [phase(port, pids, clip.jpegs, path, args.live_clients, seconds) for _ in range(2) for path in PATHS]
        overhead = phase(port, pids, clip.jpegs, "overhead", args.live_clients, min(10.0, seconds))
    per_path = {}
    for path in PATHS:
        ps = [p for p in phases if p["path"] == path]
        frames = sum(p["frames"] for p in ps)
        wall = sum(p["wall_s"] for p in ps)
        cpu_ms = sum(p["server_cpu_ms_per_frame"] * p["frames"] for p in ps) / max(1, frames)
        errors = sum(v for p in ps for k, v in p["status"].items() if k != "200")
        per_path[path] = {
            "fps": round(frames / wall, 1),
            "frames": frames,
            "errors": errors,
            "server_cpu_ms_per_frame": round(cpu_ms, 2),
            "core_per_user_at_page_rate": round(cpu_ms * PAGE_FPS / 1000, 3),
            "latency_median_ms": round(sum(p["latency_ms"]["median"] for p in ps) / len(ps), 1),
            "latency_p95_ms": round(max(p["latency_ms"]["p95"] for p in ps), 1),
        }
    ratio = per_path["tracked"]["fps"] / max(0.1, per_path["min_face"]["fps"])
    return {
        "clients": args.live_clients,
        "seconds_per_phase": seconds,
        "clip": clip.name,
        "overhead": overhead,
        "clip_frames": len(clip.jpegs),
        "phases": phases,
        "paths": per_path,
        "ratio": round(ratio, 2),
        "cpu_ratio": round(
            per_path["min_face"]["server_cpu_ms_per_frame"] / max(0.01, per_path["tracked"]["server_cpu_ms_per_frame"]),
            2,
        ),
    }


def markdown(res: dict) -> str:
    lines = [
        f"{res['clients']} clients, each a live page streaming the `{res['clip']}` clip ({res['clip_frames']} "
        f"480x360 JPEGs at q0.8, looped) with one frame in flight, against gunicorn as shipped (2 workers x "
        f"2 threads); phases of {res['seconds_per_phase']:.0f} s alternate between the paths. Clients and server "
        "share the 2 cores.",
        "",
        "| path | analysed frames/s | errors | server CPU ms / frame | server cores per live user at "
        f"{PAGE_FPS} frames/s | latency median / p95 ms | full / tracked frames |",
        "|---|---|---|---|---|---|---|",
    ]
    for path, r in res["paths"].items():
        modes = [p["modes"] for p in res["phases"] if p["path"] == path]
        full = sum(m.get("full", 0) for m in modes)
        tracked = sum(m.get("tracked", 0) for m in modes)
        name = (
            "before: full detection (`min_face`), multipart"
            if path == "min_face"
            else "**now: tracked** (`track` hint), raw JPEG body"
        )
        lines.append(
            f"| {name} | **{r['fps']}** | {r['errors']} | {r['server_cpu_ms_per_frame']} | "
            f"{r['core_per_user_at_page_rate']} | {r['latency_median_ms']} / {r['latency_p95_ms']} | "
            f"{'-' if path == 'min_face' else f'{full} / {tracked}'} |"
        )
    lines += [
        "",
        f"Now / before, frames/s: **{res['ratio']}x**; server CPU per frame: {res['cpu_ratio']}x less. "
        f"Capacity of one 2-core box from the server's CPU alone (clients elsewhere): "
        f"{round(2000 / max(0.01, res['paths']['tracked']['server_cpu_ms_per_frame']))} tracked frames/s, "
        f"{round(2000 / max(0.01, res['paths']['min_face']['server_cpu_ms_per_frame']))} before.",
    ]
    if "overhead" in res:
        o = res["overhead"]
        lines += [
            "",
            f"The stack alone (the same clients asking `GET /api/health`: gunicorn's gthread worker, Flask, a "
            f"small JSON answer): {o['server_cpu_ms_per_frame']} ms of server CPU a request, {o['fps']} requests/s.",
        ]
    return "\n".join(lines)

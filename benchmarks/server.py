"""Start the production server (gunicorn with the repo's gunicorn.conf.py) for a benchmark."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import requests

from .common import REPO


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def cpu_s(pid: int) -> float:
    """CPU seconds (user + system) a process has used so far; 0 when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return 0.0


def worker_pids(master: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(master)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


@contextmanager
def gunicorn(workers: int = 2, env: dict | None = None, ready_timeout: float = 120.0):
    port = free_port()
    e = dict(os.environ, PORT=str(port), WEB_CONCURRENCY=str(workers), GUNICORN_LOGLEVEL="warning", **(env or {}))
    bin_dir = Path(sys.executable).parent
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [
            str(bin_dir / "gunicorn"),
            "-c",
            "gunicorn.conf.py",
            "--bind",
            f"127.0.0.1:{port}",
            "--access-logfile",
            "/dev/null",
            "wsgi:app",
        ],
        cwd=REPO,
        env=e,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited: {proc.stderr.read()[-2000:]}")
            try:
                if requests.get(base + "/api/health", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.perf_counter() - t0 > ready_timeout:
                raise RuntimeError("gunicorn did not answer /api/health in time")
            time.sleep(0.2)
        yield base, proc, t0
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()

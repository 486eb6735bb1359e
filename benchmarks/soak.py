"""Soak test: the load benchmark held for longer (default 10 minutes), to tell a leak from warm-up.

Same server, clients and image as `load`; worker recycling off; RSS sampled throughout. A leak shows
as RSS that keeps climbing after the first minutes; warm-up as a step that then stays flat.
"""

from __future__ import annotations

from . import load


def run(args) -> dict:
    return load.run(args, duration=args.soak_duration)


def markdown(res: dict) -> str:
    samples = res.get("rss_samples") or []
    errors = sum(v for k, v in res["status"].items() if k != "200")
    lines = [
        f"{res['concurrency']} clients for {res['duration_s']} s on case (a): **{res['rps']} requests/s**, "
        f"p95 {res['latency_ms']['p95']} ms (median {res['latency_ms']['median']} ms), {res['requests']} "
        f"requests, non-200: {errors}; worker recycling off, workers restarted: {res.get('workers_restarted', '?')}."
    ]
    if samples:
        # Growth is measured from the first minute on: a worker that served little of the 10 s warm-up
        # is still loading its lazily allocated buffers during the first seconds of the load.
        t1, rss1 = ([s for s in samples if s[0] >= 60][:1] or samples[:1])[0]
        t2, rss2 = samples[-1]
        drift = [round(100 * (b - a) / a, 1) for a, b in zip(rss1, rss2, strict=True) if a]
        lines.append("")
        lines.append(
            f"Worker RSS from t = {t1:.0f} s to the end (t = {t2:.0f} s): {rss1} -> {rss2} MB "
            f"(**growth {drift} %**). Samples (s: MB per worker): "
            + ", ".join(f"{t:.0f}: {'/'.join(map(str, r))}" for t, r in samples[:: max(1, len(samples) // 12)])
        )
    return "\n".join(lines)

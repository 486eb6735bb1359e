"""Private mode's video report (static/js/videoreport.js) is app/videoreport.py's: the same frames through
both give the same tracks, dominant expressions, shares, mean scores and segments.

The frames are made up here (random walks of scores for up to three faces that come and go, at several
sampling rates, so that segments are cut, smoothed and folded), and the JavaScript runs in Node; the
test is skipped where Node is missing (the e2e tests cover the page itself)."""

from __future__ import annotations

import json
import shutil
import subprocess

import numpy as np
import pytest

from app.pipeline import Face, FaceResult
from app.video import VideoInfo
from app.videoreport import MIN_SEGMENT_S, SMOOTH_S, FrameResult, build_report, frame_json
from tests.conftest import ROOT

NODE = shutil.which("node")
LABELS = ["neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt"]

RUN_JS = """
import { buildReport } from '%s';
let input = '';
process.stdin.on('data', (d) => { input += d; });
process.stdin.on('end', () => {
  const cases = JSON.parse(input);
  const out = cases.map((c) => buildReport(c.frames, { video: null, model: 'm', labels: c.labels, fps: c.fps,
    smoothS: c.smooth_s, minSegmentS: c.min_segment_s }));
  process.stdout.write(JSON.stringify(out));
});
"""


def make_frames(rng: np.random.Generator, fps: float, n: int) -> list[FrameResult]:
    walks = {tid: rng.normal(size=len(LABELS)) * 2 for tid in (1, 2, 3)}
    present = {1: (0, n), 2: (n // 5, n - 2), 3: (n // 2, n // 2 + rng.integers(1, 8))}
    frames = []
    for i in range(n):
        faces = []
        for tid, (a, b) in present.items():
            if not a <= i < b or rng.random() < 0.05:
                continue
            walks[tid] = walks[tid] + rng.normal(size=len(LABELS)) * 0.9
            p = np.exp(walks[tid] - walks[tid].max())
            p /= p.sum()
            scores = {label: float(v) for label, v in zip(LABELS, p, strict=True)}
            face = Face(box=[10 * tid, 10, 40, 40], confidence=0.99, keypoints={}, track=tid)
            faces.append(FaceResult(face=face, emotion=max(scores, key=scores.__getitem__), scores=scores))
        frames.append(
            FrameResult(index=i * 3, time=round(i / fps, 4), faces=faces, confident=[True] * len(faces), mode="full")
        )
    return frames


@pytest.mark.skipif(NODE is None, reason="node is not installed")
def test_the_browser_builds_the_servers_report():
    rng = np.random.default_rng(25)
    cases, expected = [], []
    info = VideoInfo("webm", "vp8", 64, 64, None, None, None, False)
    for fps in (4.0, 3.0, 5.0, 2.5, 8.0, 1.0):
        for n in (1, 7, 40, 90):
            frames = make_frames(rng, fps, n)
            report = build_report(frames, video=info, model="m", labels=LABELS, fps=fps).to_dict()
            expected.append(report)
            cases.append(
                {
                    "frames": [frame_json(f) for f in frames],
                    "labels": LABELS,
                    "fps": fps,
                    "smooth_s": SMOOTH_S,
                    "min_segment_s": MIN_SEGMENT_S,
                }
            )
    module = (ROOT / "static/js/videoreport.js").as_uri()
    done = subprocess.run(
        [NODE, "--input-type=module", "-e", RUN_JS % module],
        input=json.dumps(cases),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    got = json.loads(done.stdout)
    segments = 0
    for py, js in zip(expected, got, strict=True):
        assert js["emotion"] == py["emotion"]
        assert js["analysed_frames"] == py["analysed_frames"]
        assert js["duration_analysed"] == py["duration_analysed"]
        assert len(js["tracks"]) == len(py["tracks"])
        for a, b in zip(py["tracks"], js["tracks"], strict=True):
            for key in ("id", "start", "end", "frames", "dominant"):
                assert a[key] == b[key], (key, a, b)
            for key in ("mean_scores", "shares"):
                assert a[key].keys() == b[key].keys()
                bad = {k: (a[key][k], b[key][k]) for k in a[key] if abs(a[key][k] - b[key][k]) > 1e-4}
                assert not bad, (key, bad)
            assert [(s["start"], s["end"], s["emotion"], s["frames"]) for s in a["segments"]] == [
                (s["start"], s["end"], s["emotion"], s["frames"]) for s in b["segments"]
            ]
            assert all(abs(s["score"] - t["score"]) <= 1e-4 for s, t in zip(a["segments"], b["segments"], strict=True))
            segments += len(a["segments"])
    assert segments >= 60  # the cases did cut and fold segments

"""A clip's faces over time (issue 25): frames tracked with the live tracker, then a report per face.

`track_frames` runs app/pipeline.py's `analyze_live` over the sampled frames of a clip (app/video.py),
each frame's faces sent back as the next frame's hint as the live page does (app/tracking.py: faces
re-found by ONet alone, a full detection every `full_every` frames or when a face is lost). Track ids
are the clip's own: a face the tracker could not follow and finds again later gets a new id, never the
id of someone who left; nothing about a face outlives its clip (no identity is kept across clips).

`build_report` turns the frames into a `VideoReport`: per track, its timeline (every sampled frame's
scores), its segments (runs of one expression after smoothing the scores over `smooth_s` seconds and
folding runs shorter than `min_segment_s` into their neighbour) and its dominant expression (the top
of its mean scores); `to_dict()` is the JSON of the command, the library and `POST /api/video`,
`timeline_csv()` the CSV, `chart()` the PNG (matplotlib, optional).
"""

from __future__ import annotations

import csv
import io
import math
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from .emotion import ModelRegistry
from .faces import FaceDetector
from .pipeline import FaceResult, analyze_live, rescale
from .tracking import TrackHint
from .video import Sampled, VideoInfo

SMOOTH_S = 1.0  # scores are averaged over this many seconds of a track before segments are cut
MIN_SEGMENT_S = 1.0  # a run of one expression shorter than this joins its neighbour


@dataclass(frozen=True)
class FrameResult:
    """The faces of one analysed frame, boxes in pixels of the video, each with its clip track id."""

    index: int  # the frame's number in the stream
    time: float  # seconds from the start
    faces: list[FaceResult]
    confident: list[bool]  # per face: its scores clear the model card's confidence rule
    mode: str  # "tracked" | "full" (app/tracking.py)


@dataclass(frozen=True)
class Segment:
    """A stretch of one track's time with one expression."""

    start: float  # seconds
    end: float
    emotion: str
    frames: int
    score: float  # the mean score of `emotion` over the segment's frames


@dataclass(frozen=True)
class Track:
    """One face followed through the clip."""

    id: int
    start: float
    end: float
    frames: int
    dominant: str  # the top label of the mean scores
    mean_scores: dict[str, float]
    shares: dict[str, float]  # the share of frames whose top label is each label
    segments: list[Segment]


@dataclass
class VideoReport:
    """What a clip shows, face by face. `to_dict()` is its JSON (docs/API.md, `POST /api/video`)."""

    source: str | None
    video: VideoInfo
    model: str
    labels: list[str]
    fps: float  # frames analysed per second of video
    frames: list[FrameResult]
    tracks: list[Track]
    truncated: str | None = None  # why the analysis stopped early: "max_seconds", "max_frames", ...
    decoded_frames: int = 0
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def main_track(self) -> Track | None:
        """The face seen longest (the largest on ties comes first in `tracks`)."""
        return max(self.tracks, key=lambda t: t.frames, default=None)

    def to_dict(self, frames: bool = True) -> dict[str, Any]:
        main = self.main_track
        out: dict[str, Any] = {
            "source": self.source,
            "video": self.video.as_dict(),
            "model": self.model,
            "labels": self.labels,
            "fps": self.fps,
            "analysed_frames": len(self.frames),
            "decoded_frames": self.decoded_frames,
            "truncated": self.truncated,
            "duration_analysed": round(self.frames[-1].time, 3) if self.frames else 0.0,
            "emotion": main.dominant if main else None,
            "tracks": [_track_json(t) for t in self.tracks],
            "timings_s": {k: round(v, 3) for k, v in self.timings.items()},
        }
        if frames:
            out["frames"] = [frame_json(f) for f in self.frames]
        return out

    def timeline_rows(self) -> list[dict[str, Any]]:
        """One row per face per analysed frame: time, frame, track, box, label, confident, every score."""
        rows = []
        for f in self.frames:
            for r, ok in zip(f.faces, f.confident, strict=True):
                x, y, w, h = r.face.box
                rows.append(
                    {
                        "time": f.time,
                        "frame": f.index,
                        "track": r.face.track,
                        "x": x,
                        "y": y,
                        "w": w,
                        "h": h,
                        "emotion": r.emotion,
                        "confident": ok,
                        **{label: r.scores.get(label, 0.0) for label in self.labels},
                    }
                )
        return rows

    def timeline_csv(self) -> str:
        out = io.StringIO()
        writer = csv.DictWriter(
            out,
            ["time", "frame", "track", "x", "y", "w", "h", "emotion", "confident", *self.labels],
            lineterminator="\n",
        )
        writer.writeheader()
        writer.writerows(self.timeline_rows())
        return out.getvalue()

    def chart(self, path: str | Path) -> Path | None:
        """Each track's scores over time, its segments shaded, as a PNG; None when matplotlib is not
        installed (`pip install emotion-assistant[chart]`)."""
        try:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt
        except ImportError:
            return None
        from .assistant import display_name

        path = Path(path)
        tracks = self.tracks or []
        rows = max(1, len(tracks))
        fig, axes = plt.subplots(rows, 1, figsize=(10, 2.4 * rows + 0.6), sharex=True, squeeze=False)
        cmap = plt.get_cmap("tab10")
        colours = {label: cmap(k % 10) for k, label in enumerate(self.labels)}
        end = max([f.time for f in self.frames] + [0.0]) + 1.0 / self.fps
        for ax, track in zip(axes[:, 0], tracks, strict=False):
            times, scores = _series(self.frames, track.id, self.labels)
            for k, label in enumerate(self.labels):
                ax.plot(times, scores[:, k], label=display_name(label), color=colours[label], lw=1.4)
            for seg in track.segments:
                ax.axvspan(seg.start, seg.end, color=colours.get(seg.emotion, "grey"), alpha=0.12, lw=0)
                ax.text(
                    (seg.start + seg.end) / 2,
                    1.02,
                    display_name(seg.emotion),
                    ha="center",
                    va="bottom",
                    fontsize=7,
                    transform=ax.get_xaxis_transform(),
                )
            ax.set_ylim(0, 1)
            ax.set_ylabel(f"face {track.id}")
            ax.set_xlim(0, end)
        if not tracks:
            axes[0, 0].text(0.5, 0.5, "no face found", ha="center", va="center", transform=axes[0, 0].transAxes)
        axes[-1, 0].set_xlabel("seconds")
        handles, names = axes[0, 0].get_legend_handles_labels()
        if handles:
            fig.legend(handles, names, loc="upper center", ncol=min(8, len(names)), fontsize=8, frameon=False)
        fig.tight_layout(rect=(0, 0, 1, 0.93 if handles else 1))
        fig.savefig(path, dpi=100)
        plt.close(fig)
        return path

    def write(self, out_dir: str | Path) -> dict[str, Path]:
        """timeline.csv, report.json and (with matplotlib) chart.png in `out_dir`."""
        import json

        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        written = {"timeline": out / "timeline.csv", "report": out / "report.json"}
        written["timeline"].write_text(self.timeline_csv())
        written["report"].write_text(json.dumps(self.to_dict(), indent=1, ensure_ascii=False) + "\n")
        chart = self.chart(out / "chart.png")
        if chart is not None:
            written["chart"] = chart
        return written


def face_json(result: FaceResult, confident: bool) -> dict[str, Any]:
    return {
        "track": result.face.track,
        "box": result.face.box,
        "confidence": result.face.confidence,
        "emotion": result.emotion,
        "scores": result.scores,
        "confident": confident,
    }


def frame_json(frame: FrameResult) -> dict[str, Any]:
    return {
        "index": frame.index,
        "time": frame.time,
        "mode": frame.mode,
        "faces": [face_json(r, c) for r, c in zip(frame.faces, frame.confident, strict=True)],
    }


def _track_json(track: Track) -> dict[str, Any]:
    return {
        "id": track.id,
        "start": track.start,
        "end": track.end,
        "frames": track.frames,
        "dominant": track.dominant,
        "mean_scores": track.mean_scores,
        "shares": track.shares,
        "segments": [
            {"start": s.start, "end": s.end, "emotion": s.emotion, "frames": s.frames, "score": s.score}
            for s in track.segments
        ],
    }


def track_frames(
    frames: Iterable[Sampled],
    *,
    detector: FaceDetector,
    models: ModelRegistry,
    model: str | None = None,
    full_every: int = 8,
    min_face: int | None = None,
    timings: dict[str, float] | None = None,
) -> Iterator[FrameResult]:
    """Each sampled frame's faces, followed from frame to frame by app/tracking.py, with clip-wide
    track ids (1, 2, ... in order of appearance; a face found anew gets a new id)."""
    name = model or models.default
    card = models.cards[name or ""]
    hint = TrackHint(faces=[])
    last_time: float | None = None
    next_id = 1
    timings = timings if timings is not None else {}
    for sample in frames:
        age_ms = 0.0 if last_time is None else (sample.time - last_time) * 1000.0
        step: dict[str, float] = {}
        results, located = analyze_live(
            sample.rgb,
            replace(hint, age_ms=age_ms),
            detector=detector,
            models=models,
            model=name,
            min_face=min_face,
            full_every=full_every,
            # the hint is this loop's own: it is as fresh as the frames are apart
            max_age_ms=max(1000.0, age_ms + 1.0),
            timings=step,
        )
        for key, value in step.items():
            timings[key] = timings.get(key, 0.0) + value
        hinted = {tid for tid, _ in hint.faces}
        kept = []
        for r in results:
            tid = r.face.track
            if tid not in hinted:  # a face the tracker did not carry over: the clip's next id
                tid, next_id = next_id, next_id + 1
            kept.append(replace(r, face=replace(r.face, track=tid)))
        hint = TrackHint(
            faces=[(r.face.track or 0, [float(v) for v in r.face.box]) for r in kept], since_full=located.since_full
        )
        last_time = sample.time
        kept = rescale(kept, sample.scale, sample.width, sample.height)
        yield FrameResult(
            index=sample.index,
            time=sample.time,
            faces=kept,
            confident=[card.confident(r.scores) for r in kept],
            mode=located.mode,
        )


def _series(frames: list[FrameResult], track_id: int, labels: list[str]) -> tuple[list[float], np.ndarray]:
    times, rows = [], []
    for f in frames:
        for r in f.faces:
            if r.face.track == track_id:
                times.append(f.time)
                rows.append([r.scores.get(label, 0.0) for label in labels])
    return times, np.asarray(rows, np.float64).reshape(len(rows), len(labels))


def segments(
    times: list[float],
    scores: np.ndarray,
    labels: list[str],
    fps: float,
    smooth_s: float = SMOOTH_S,
    min_segment_s: float = MIN_SEGMENT_S,
) -> list[Segment]:
    """One track's runs of one expression: scores averaged over `smooth_s` (a centred window), the top
    label per frame, runs shorter than `min_segment_s` folded into the run before (the first into the
    one after). A segment ends where the next begins, the last one frame step after its last frame."""
    n = len(times)
    if n == 0:
        return []
    half = max(0, int(round(smooth_s * fps / 2)))
    smooth = np.stack([scores[max(0, i - half) : i + half + 1].mean(axis=0) for i in range(n)])
    top = smooth.argmax(axis=1)
    runs: list[list[int]] = []  # [label index, first frame, last frame]
    for i, k in enumerate(top):
        if runs and runs[-1][0] == k:
            runs[-1][2] = i
        else:
            runs.append([int(k), i, i])
    step = 1.0 / fps
    min_frames = max(1, int(math.ceil(min_segment_s * fps - 1e-9)))
    changed = True
    while changed and len(runs) > 1:
        changed = False
        for j, (_, first, last) in enumerate(runs):
            if last - first + 1 < min_frames:
                into = j - 1 if j > 0 else j + 1
                runs[into][1], runs[into][2] = min(runs[into][1], first), max(runs[into][2], last)
                del runs[j]
                changed = True
                break
        merged: list[list[int]] = []
        for run in runs:  # neighbours that now show the same label become one
            if merged and merged[-1][0] == run[0]:
                merged[-1][2] = run[2]
            else:
                merged.append(run)
        runs = merged
    out = []
    for j, (k, first, last) in enumerate(runs):
        end = times[runs[j + 1][1]] if j + 1 < len(runs) else times[last] + step
        out.append(
            Segment(
                start=round(times[first], 3),
                end=round(end, 3),
                emotion=labels[k],
                frames=last - first + 1,
                score=round(float(scores[first : last + 1, k].mean()), 4),
            )
        )
    return out


def build_report(
    frames: list[FrameResult],
    *,
    video: VideoInfo,
    model: str,
    labels: list[str],
    fps: float,
    source: str | None = None,
    truncated: str | None = None,
    decoded_frames: int = 0,
    timings: dict[str, float] | None = None,
    smooth_s: float = SMOOTH_S,
    min_segment_s: float = MIN_SEGMENT_S,
) -> VideoReport:
    """The report of a clip's analysed frames: per track, its mean scores, dominant expression, the
    share of frames per label and its segments. Tracks in order of first appearance."""
    ids: list[int] = []
    for f in frames:
        for r in f.faces:
            if r.face.track is not None and r.face.track not in ids:
                ids.append(r.face.track)
    tracks = []
    for tid in ids:
        times, scores = _series(frames, tid, labels)
        mean = scores.mean(axis=0)
        tops = scores.argmax(axis=1)
        tracks.append(
            Track(
                id=tid,
                start=round(times[0], 3),
                end=round(times[-1] + 1.0 / fps, 3),
                frames=len(times),
                dominant=labels[int(mean.argmax())],
                mean_scores={label: round(float(p), 4) for label, p in zip(labels, mean, strict=True)},
                shares={label: round(float((tops == k).mean()), 4) for k, label in enumerate(labels)},
                segments=segments(times, scores, labels, fps, smooth_s, min_segment_s),
            )
        )
    return VideoReport(
        source=source,
        video=video,
        model=model,
        labels=list(labels),
        fps=fps,
        frames=list(frames),
        tracks=tracks,
        truncated=truncated,
        decoded_frames=decoded_frames,
        timings=dict(timings or {}),
    )


def analyze_video(
    video,
    *,
    detector: FaceDetector,
    models: ModelRegistry,
    model: str | None = None,
    fps: float = 4.0,
    full_every: int = 8,
    source: str | None = None,
    on_frame: Callable[[FrameResult], None] | None = None,
) -> VideoReport:
    """An opened clip (app/video.py's `Video`) analysed start to end: `track_frames` over
    `video.sampled(fps)`, then `build_report`. `on_frame` is called with each analysed frame (progress)."""
    name = model or models.default
    if name is None:
        raise KeyError("no model is available")
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    frames = []
    for frame in track_frames(
        video.sampled(fps), detector=detector, models=models, model=name, full_every=full_every, timings=timings
    ):
        frames.append(frame)
        if on_frame is not None:
            on_frame(frame)
    timings["total"] = time.perf_counter() - t0
    return build_report(
        frames,
        video=video.info,
        model=name,
        labels=list(models.get(name).classes),
        fps=fps,
        source=source,
        truncated=video.truncated,
        decoded_frames=video.decoded,
        timings=timings,
    )

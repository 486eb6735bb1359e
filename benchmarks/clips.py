"""Clips that move (issue 23, item 7): real faces moved, scaled and turned over real backgrounds, and
the check that tracked frames agree with full detection on them.

Every clip is made here, deterministically, from scikit-image's bundled photos: the astronaut's head
(Eileen Collins) and the LFW face crops (other people), pasted with a soft oval edge over photos with
no face in them, at the page's live size (480x360), then JPEG-compressed as the page sends them. The
scenes: one person walking, turning and coming closer; two and three people crossing; a face leaving
the frame and coming back; a cut to another scene. Each frame carries where its faces truly are
(`Clip.truth`: a person's id -> [x, y, w, h]).

`follow(clip, ...)` plays a clip as the page does (each answer's faces and tracking state sent back as
the next frame's hint, app/tracking.py) and, on the same frames, runs the full detector as the
reference; `summary` gives the agreement the issue asks for. tests/app/test_tracking.py and
`python -m benchmarks live` both use it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

WIDTH, HEIGHT = 480, 360
# The astronaut's face in scikit-image's photo, and the head-and-shoulders window cut around it.
ASTRONAUT_FACE = (182, 64, 83, 107)
ASTRONAUT_SPRITE = (120, 10, 220, 250)  # x, y, w, h


@dataclass
class Clip:
    name: str
    frames: list[np.ndarray]  # RGB uint8, HEIGHT x WIDTH, as decoded from the JPEG the page would send
    truth: list[dict[int, list[float]]]  # per frame: person -> face box [x, y, w, h] (pixels)
    jpegs: list[bytes] = field(default_factory=list)


def _sprites() -> dict[str, tuple[np.ndarray, tuple[float, float, float, float]]]:
    """Face sprites: (RGB image, the face's box inside it)."""
    from skimage import data

    from benchmarks.calm import lfw_faces

    a = data.astronaut()
    x, y, w, h = ASTRONAUT_SPRITE
    fx, fy, fw, fh = ASTRONAUT_FACE
    out = {"astronaut": (np.ascontiguousarray(a[y : y + h, x : x + w]), (fx - x, fy - y, fw, fh))}
    lfw = lfw_faces()
    for k, i in enumerate((3, 11, 27)):
        # A 25x25 crop is the face alone: upscale it and give it a margin of its own border pixels, so
        # the oval edge falls outside the face as it does around the astronaut's head.
        face = cv2.resize(lfw[i], (96, 96), interpolation=cv2.INTER_CUBIC)
        face = cv2.copyMakeBorder(face, 24, 24, 24, 24, cv2.BORDER_REPLICATE)
        out[f"lfw{k}"] = (np.repeat(face[..., None], 3, axis=2), (24.0, 24.0, 96.0, 96.0))
    return out


def _backgrounds() -> list[np.ndarray]:
    from skimage import data

    return [
        cv2.resize(
            img[..., :3] if img.ndim == 3 else np.repeat(img[..., None], 3, 2),
            (WIDTH, HEIGHT),
            interpolation=cv2.INTER_AREA,
        )
        for img in (data.coffee(), data.chelsea(), data.rocket(), data.immunohistochemistry())
    ]


def _paste(
    frame: np.ndarray, sprite: np.ndarray, face: tuple, cx: float, cy: float, scale: float, angle: float
) -> list[float] | None:
    """Paste `sprite` so that its face's centre lands at (cx, cy), scaled and turned; returns the
    turned face's bounding box, clipped to the frame, or None when less than half of it is inside."""
    sh, sw = sprite.shape[:2]
    fx, fy, fw, fh = face
    m = cv2.getRotationMatrix2D((fx + fw / 2, fy + fh / 2), angle, scale)
    m[0, 2] += cx - (fx + fw / 2)
    m[1, 2] += cy - (fy + fh / 2)
    warped = cv2.warpAffine(sprite, m, (WIDTH, HEIGHT), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    mask = np.zeros((sh, sw), np.float32)
    cv2.ellipse(mask, (sw // 2, sh // 2), (int(sw * 0.46), int(sh * 0.48)), 0, 0, 360, 1.0, -1)
    mask = cv2.GaussianBlur(mask, (0, 0), max(2.0, sw / 30))
    alpha = cv2.warpAffine(mask, m, (WIDTH, HEIGHT), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)[..., None]
    frame[:] = np.clip(frame * (1 - alpha) + warped * alpha, 0, 255).astype(np.uint8)
    a = math.radians(angle)
    span_w = scale * (fw * abs(math.cos(a)) + fh * abs(math.sin(a)))
    span_h = scale * (fw * abs(math.sin(a)) + fh * abs(math.cos(a)))
    x0, y0 = cx - span_w / 2, cy - span_h / 2
    x1, y1 = min(WIDTH, x0 + span_w), min(HEIGHT, y0 + span_h)
    cx0, cy0 = max(0.0, x0), max(0.0, y0)
    if (x1 - cx0) * (y1 - cy0) < 0.5 * span_w * span_h:
        return None
    return [cx0, cy0, x1 - cx0, y1 - cy0]


# A scene: background index and, per person, a path t -> (sprite, cx, cy, face height in px, angle).
def _walk(t: float):
    return 0, {1: ("astronaut", 120 + 240 * t, 170 + 30 * math.sin(6 * t), 95 + 45 * t, 15 * math.sin(9 * t))}


def _two(t: float):
    return 1, {
        1: ("astronaut", 110 + 260 * t, 160, 100, 10 * math.sin(7 * t)),
        2: ("lfw0", 370 - 250 * t, 200 + 20 * math.sin(5 * t), 95, -8 * math.sin(6 * t)),
    }


def _three(t: float):
    return 3, {
        1: ("astronaut", 100 + 40 * math.sin(4 * t), 150, 90, 0),
        2: ("lfw1", 240, 190 + 30 * math.sin(5 * t), 85, 6 * math.sin(3 * t)),
        3: ("lfw2", 390 - 40 * math.sin(4 * t), 170, 88, 0),
    }


def _leave_return(t: float):
    # out through the right edge (t ~ 0.17-0.33), back, out through the left (t ~ 0.67-0.83), back
    return 2, {1: ("astronaut", 240 + 330 * math.sin(2 * math.pi * t), 180, 110, 0)}


def _cut(t: float):
    # the cut falls between two full detections (frame 26 of 48)
    if t < 0.55:
        return 0, {1: ("astronaut", 140 + 40 * t, 170, 120, 0)}
    return 1, {2: ("lfw0", 330, 160 + 20 * (t - 0.55), 90, 5)}


SCENES = {"walk": _walk, "two_people": _two, "three_people": _three, "leave_and_return": _leave_return, "cut": _cut}


def make_clip(name: str, n_frames: int = 48, quality: int = 80) -> Clip:
    """Scene `name` of SCENES as `n_frames` frames (at 12 frames/s, 4 s), JPEG-compressed at the
    page's quality and decoded back."""
    sprites, backgrounds = _sprites(), _backgrounds()
    scene = SCENES[name]
    frames, truth, jpegs = [], [], []
    for i in range(n_frames):
        bg, people = scene(i / max(1, n_frames - 1))
        frame = backgrounds[bg].copy()
        boxes = {}
        for person, (sprite_name, cx, cy, face_h, angle) in people.items():
            sprite, face = sprites[sprite_name]
            box = _paste(frame, sprite, face, cx, cy, face_h / face[3], angle)
            if box is not None:
                boxes[person] = box
        ok, buf = cv2.imencode(".jpg", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
        assert ok
        jpegs.append(buf.tobytes())
        frames.append(cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB))
        truth.append(boxes)
    return Clip(name=name, frames=frames, truth=truth, jpegs=jpegs)


def follow(
    clip: Clip, detector, models, model: str | None = None, full_every: int = 8, min_face_fraction: float = 1 / 8
) -> list[dict]:
    """Play `clip` as the live page does (app/pipeline.analyze_live with the previous answer's hint)
    and run the full detector on the same frames as the reference. One record per frame."""
    from app.faces import box_iou
    from app.pipeline import analyze, analyze_live
    from app.tracking import TrackHint

    min_face = int(min(WIDTH, HEIGHT) * min_face_fraction)
    hint = TrackHint(faces=[])
    records = []
    for i, frame in enumerate(clip.frames):
        live, located = analyze_live(
            frame, hint, detector=detector, models=models, model=model, min_face=min_face, full_every=full_every
        )
        reference = analyze(frame, detector=detector, models=models, model=model, min_face=min_face)
        hint = TrackHint(
            faces=[(r.face.track, [float(v) for v in r.face.box]) for r in live],
            since_full=located.since_full,
            age_ms=83.0,
        )
        # each true person -> the live face over it (its track id) and the reference face over it
        lives, refs = _match(clip.truth[i], live), _match(clip.truth[i], reference)
        persons = {}
        for person in clip.truth[i]:
            lv, rf = lives.get(person), refs.get(person)
            persons[person] = {
                "live": None if lv is None else {"track": lv.face.track, "box": lv.face.box, "emotion": lv.emotion},
                "reference": None if rf is None else {"box": rf.face.box, "emotion": rf.emotion},
                "iou": None if lv is None or rf is None else box_iou(lv.face.box, rf.face.box),
            }
        records.append({"frame": i, "mode": located.mode, "reason": located.reason, "persons": persons})
    return records


def _match(truth: dict[int, list[float]], results: list) -> dict:
    """True persons -> the found faces over them, one to one, greedily by overlap (at least 0.3)."""
    from app.faces import box_iou

    pairs = sorted(
        ((box_iou(r.face.box, box), person, k) for person, box in truth.items() for k, r in enumerate(results)),
        key=lambda p: p[0],
        reverse=True,
    )
    out, used = {}, set()
    for overlap, person, k in pairs:
        if overlap < 0.3:
            break
        if person in out or k in used:
            continue
        out[person] = results[k]
        used.add(k)
    return out


def summary(records: list[dict], full_every: int) -> dict:
    """What the issue asks of tracked frames, over frames whose faces were re-found (mode "tracked"):
    label agreement with full detection and the share of boxes with IoU >= 0.8; over all frames: track
    id switches (a person's id changing while they stay in view), and the longest run of frames in
    which full detection saw a person the live path did not."""
    compared = agree = iou_ok = 0
    switches = 0
    longest_miss = 0
    last_id: dict[int, int | None] = {}
    miss_run: dict[int, int] = {}
    for rec in records:
        for person, p in rec["persons"].items():
            live, ref = p["live"], p["reference"]
            if rec["mode"] == "tracked" and live is not None and ref is not None:
                compared += 1
                agree += live["emotion"] == ref["emotion"]
                iou_ok += p["iou"] >= 0.8
            if ref is not None and live is None:
                miss_run[person] = miss_run.get(person, 0) + 1
                longest_miss = max(longest_miss, miss_run[person])
            else:
                miss_run[person] = 0
            if live is not None:
                prev = last_id.get(person)
                if prev is not None and prev != live["track"]:
                    switches += 1
                last_id[person] = live["track"]
        for person in set(last_id) - set(rec["persons"]):
            last_id[person] = None  # out of view: coming back with a new id is not a switch
    modes = [r["mode"] for r in records]
    return {
        "frames": len(records),
        "tracked_frames": modes.count("tracked"),
        "full_frames": modes.count("full"),
        "faces_compared": compared,
        "label_agreement": agree / compared if compared else None,
        "iou_ge_0_8": iou_ok / compared if compared else None,
        "id_switches": switches,
        "longest_miss_frames": longest_miss,
        "full_every": full_every,
        "full_reasons": {
            k: sum(1 for r in records if r["mode"] == "full" and r["reason"] == k)
            for k in sorted({r["reason"] for r in records if r["mode"] == "full"})
        },
    }


# -- clips as video files (issue 25) ------------------------------------------------------------------
# The scenes above, encoded as the files people upload, made at test and benchmark time (no video file
# is committed). (container, encoder) pairs by the name the tests and benchmarks/video.py use.
ENCODINGS = {
    "mp4-h264": ("mp4", "libx264"),
    "webm-vp8": ("webm", "libvpx"),
    "webm-vp9": ("webm", "libvpx-vp9"),
    "mov-h264": ("mov", "libx264"),
    "avi-mpeg4": ("avi", "mpeg4"),
}


def encode(
    frames: list[np.ndarray],
    encoding: str = "mp4-h264",
    fps: float = 12.0,
    times: list[float] | None = None,
    audio_seconds: float = 0.0,
) -> bytes:
    """RGB frames as a video file's bytes (PyAV, in memory). `times` (seconds, increasing) gives each
    frame its own timestamp: a variable frame rate clip. `audio_seconds` adds a silent AAC / Opus track."""
    import io
    from fractions import Fraction

    import av

    fmt, codec = ENCODINGS[encoding]
    h, w = frames[0].shape[:2]
    buf = io.BytesIO()
    with av.open(buf, "w", format=fmt) as out:
        stream = out.add_stream(codec, rate=Fraction(fps).limit_denominator(1000))
        stream.width, stream.height, stream.pix_fmt = w - w % 2, h - h % 2, "yuv420p"
        if times is not None:
            stream.codec_context.time_base = Fraction(1, 1000)
        audio = None
        if audio_seconds > 0:
            audio = out.add_stream("aac" if fmt in ("mp4", "mov") else "libopus", rate=48000)
        for i, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb[: h - h % 2, : w - w % 2]), format="rgb24")
            if times is not None:
                frame.pts, frame.time_base = int(round(times[i] * 1000)), Fraction(1, 1000)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
        if audio is not None:
            _silence(out, audio, audio_seconds)
    return buf.getvalue()


def _silence(out, stream, seconds: float) -> None:
    import av

    n = stream.codec_context.frame_size or 1024
    fmt = stream.codec_context.format
    dtype = {"s16": np.int16, "s16p": np.int16, "s32": np.int32, "s32p": np.int32}.get(fmt.name, np.float32)
    for k in range(int(seconds * stream.rate / n)):
        frame = av.AudioFrame.from_ndarray(
            np.zeros((1, n * 2) if fmt.is_packed else (2, n), dtype), format=fmt.name, layout="stereo"
        )
        frame.sample_rate, frame.pts = stream.rate, k * n
        for packet in stream.encode(frame):
            out.mux(packet)
    for packet in stream.encode():
        out.mux(packet)


def audio_only(seconds: float = 2.0, fmt: str = "mp4") -> bytes:
    """A file with a silent audio track and no video (an .m4a, or a WebM of Opus)."""
    import io

    import av

    buf = io.BytesIO()
    with av.open(buf, "w", format=fmt) as out:
        stream = out.add_stream("aac" if fmt in ("mp4", "mov") else "libopus", rate=48000)
        _silence(out, stream, seconds)
    return buf.getvalue()

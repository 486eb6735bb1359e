"""`POST /api/video` (issue 25): a clip in, its report out, as a stream of JSON lines (NDJSON).

The clip is checked before anything is sent (app/video.py: container, codec, size, resolution, declared
duration): bad input is an ordinary 4xx JSON error. Then the answer is `200 application/x-ndjson`, one
line per event, each flushed as it is made:

    {"type": "start", "video": {...}, "fps": 4, "expected_frames": 40, "model": ..., "labels": [...], "limits": {...}}
    {"type": "frame", "index": 12, "time": 0.5, "mode": "tracked", "faces": [...], "done": 3, "expected": 40}
    ...
    {"type": "report", "report": {... VideoReport.to_dict() ...}, "reply": {... as /api/predict's ...}}

or, when something fails once streaming has begun (a frame over the size limit midway, a model that
will not load), a last line `{"type": "error", "status": 413, "error": {"code", "message"}}`.

Why a stream and not a job: the whole analysis lives in the one request that carries the clip, so any
worker behind nginx answers it and nothing is kept anywhere (no job store, no clip on disk, nothing
left when it ends). nginx passes each line on at once (`X-Accel-Buffering: no`); its 60 s read timeout
applies between lines, and a line goes out for every analysed frame. When the client goes away the
next line cannot be written, the server closes the generator, and the analysis stops there (the clip's
decoder is closed, its memory freed).

Cost: one clip at a time per worker process (`VIDEO_CONCURRENCY`, a second one is 503 `busy`, so a
worker's other thread keeps answering photos and live frames); at most `VIDEO_MAX_SECONDS` of video
analysed at most `VIDEO_MAX_FPS` frames a second (481 frames at 14-65 ms each on the 2-core build
machine: 7-31 s), frames over 720p shrunk before analysis, and the decoded-frames cap of app/video.py.
"""

from __future__ import annotations

import json
import logging
import threading
import time

from flask import Blueprint, Response, current_app, request, stream_with_context

from . import assistant
from .api import _flag, _lang, _reply_payload
from .emotion import ModelUnavailable, get_models
from .errors import ApiError, error_response
from .faces import get_detector
from .imaging import ImageError
from .security import quote
from .tracking import full_every_at
from .video import VideoLimits, open_video
from .videoreport import build_report, frame_json, track_frames

log = logging.getLogger(__name__)

bp = Blueprint("video", __name__, url_prefix="/api")

_slots_lock = threading.Lock()
_slots: dict[int, threading.BoundedSemaphore] = {}


def _slot(app) -> threading.BoundedSemaphore:
    """The process's video slots (VIDEO_CONCURRENCY), one semaphore per app."""
    with _slots_lock:
        key = id(app)
        if key not in _slots:
            _slots[key] = threading.BoundedSemaphore(max(1, int(app.config["VIDEO_CONCURRENCY"])))
        return _slots[key]


def limits_from(cfg) -> VideoLimits:
    seconds = float(cfg["VIDEO_MAX_SECONDS"])
    return VideoLimits(
        max_bytes=int(cfg["VIDEO_MAX_BYTES"]),
        max_pixels=int(cfg["VIDEO_MAX_PIXELS"]),
        max_side=int(cfg["VIDEO_MAX_SIDE"]),
        max_seconds=seconds,
        refuse_seconds=seconds,
        max_decoded_frames=int(seconds * 60) + 60,
        max_frames=int(seconds * float(cfg["VIDEO_MAX_FPS"])) + 1,
        analysis_side=int(cfg["VIDEO_ANALYSIS_SIDE"]),
        threads=int(cfg["VIDEO_DECODE_THREADS"]),
    )


def _read_clip() -> tuple[bytes, dict]:
    """The clip's bytes and the other fields, from multipart (field `video`) or a raw `video/*` body."""
    cfg = current_app.config
    max_bytes = int(cfg["VIDEO_MAX_BYTES"])
    params = dict(request.args)
    mimetype = request.mimetype or ""
    if mimetype == "multipart/form-data":
        params.update(request.form)
        upload = request.files.get("video")
        if upload is None:
            got = sorted(set(request.files) | set(request.form))
            raise ApiError(
                400,
                "missing_video",
                f"send the clip in the multipart field 'video' (got fields {quote(', '.join(got))})",
            )
        data = upload.stream.read(max_bytes + 1)
    elif mimetype.startswith("video/") or mimetype == "application/octet-stream":
        data = request.get_data(cache=False)
    elif not request.content_length and not mimetype:
        raise ApiError(400, "missing_video", "the request has no clip; send the multipart field 'video'")
    else:
        raise ApiError(
            415,
            "unsupported_type",
            f"request body of type {quote(mimetype)}; send multipart/form-data "
            "with a field 'video', or the clip as a video/* body",
        )
    return data, params


def _fps(value, cfg) -> float:
    if value is None or value == "":
        return float(cfg["VIDEO_FPS"])
    try:
        fps = float(str(value).strip())
    except ValueError:
        fps = -1.0
    top = float(cfg["VIDEO_MAX_FPS"])
    if not 0.1 <= fps <= top:
        raise ApiError(400, "bad_fps", f"'fps' must be a number from 0.1 to {top:g}, got {quote(value, 40)}")
    return fps


def _line(obj) -> bytes:
    return (json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n").encode()


@bp.post("/video")
def video():
    """Check the clip (4xx), then stream its analysis as NDJSON."""
    cfg = current_app.config
    data, params = _read_clip()
    lang = _lang(params.get("lang"))
    speak = _flag(params.get("speak"), "speak")
    fps = _fps(params.get("fps"), cfg)
    registry = get_models()
    model = params.get("model") or None
    if model is not None and model not in registry.cards:
        raise ApiError(400, "unknown_model", f"no model {quote(model, 60)}; GET /api/models lists them")
    model = model or registry.default
    if model is None:
        raise ApiError(503, "no_model", "no model is installed on this server")
    slot = _slot(current_app._get_current_object())  # type: ignore[attr-defined]
    if not slot.acquire(blocking=False):
        response = error_response(503, "busy", "this server is analysing another clip; try again in a few seconds")
        response.headers["Retry-After"] = "5"
        return response
    try:
        clip = open_video(data, limits_from(cfg))
    except BaseException:
        slot.release()
        raise
    del data  # the decoder holds the bytes it reads; nothing else does
    detector = get_detector()
    full_every = full_every_at(fps, int(cfg["TRACK_FULL_EVERY"]))
    expected = clip.expected_frames(fps)
    released = threading.Lock()

    def release() -> None:
        """The clip's decoder closed and the slot given back, once: from the generator's end, or from
        the response's close when the client left before the generator ever started (closing an
        unstarted generator runs none of its code)."""
        if released.acquire(blocking=False):
            clip.close()
            slot.release()

    def generate():
        t0 = time.perf_counter()
        done = 0
        finished = False
        try:
            labels = list(registry.get(model).classes)
            yield _line(
                {
                    "type": "start",
                    "video": clip.info.as_dict(),
                    "fps": fps,
                    "expected_frames": expected,
                    "model": model,
                    "labels": labels,
                    "limits": {"max_seconds": clip.limits.max_seconds, "max_frames": clip.limits.max_frames},
                }
            )
            frames = []
            timings: dict[str, float] = {}
            for frame in track_frames(
                clip.sampled(fps),
                detector=detector,
                models=registry,
                model=model,
                full_every=full_every,
                timings=timings,
            ):
                frames.append(frame)
                done += 1
                yield _line({"type": "frame", **frame_json(frame), "done": done, "expected": max(expected, done)})
            timings["total"] = time.perf_counter() - t0
            report = build_report(
                frames,
                video=clip.info,
                model=model,
                labels=labels,
                fps=fps,
                truncated=clip.truncated,
                decoded_frames=clip.decoded,
                timings=timings,
            )
            main = report.main_track
            choice = assistant.choose_reply(
                main.dominant if main else None,
                lang,
                seed=f"{main.mean_scores[main.dominant]:.2f}" if main else 0,
                confident=main is None or registry.cards[model].confident(main.mean_scores),
            )
            reply, _ = _reply_payload(choice, speak)
            finished = True
            yield _line({"type": "report", "report": report.to_dict(), "reply": reply})
        except ImageError as exc:  # app/video.py's errors found while decoding
            yield _line({"type": "error", "status": exc.status, "error": {"code": exc.code, "message": exc.message}})
        except ModelUnavailable as exc:
            yield _line({"type": "error", "status": 503, "error": {"code": "model_unavailable", "message": str(exc)}})
        except GeneratorExit:
            log.info(
                "video analysis stopped: the client left after %d of about %d frames (%.1f s)",
                done,
                expected,
                time.perf_counter() - t0,
            )
            raise
        finally:
            release()
            if finished:
                log.info("video analysed: %d frames in %.1f s", done, time.perf_counter() - t0)

    response = Response(stream_with_context(generate()), mimetype="application/x-ndjson")
    response.call_on_close(release)
    response.headers["X-Accel-Buffering"] = "no"  # nginx: pass each line on as it comes
    response.headers["Cache-Control"] = "no-store"
    return response

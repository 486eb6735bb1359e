"""Video decoding: PyAV against OpenCV's VideoCapture (issue 25), the measurement behind app/video.py.

Both wheels carry FFmpeg's decoders, so the question is the cost around them and what each can tell.
Clips are benchmarks/clips.py's moving real faces (the `walk` scene), scaled to 854x480 and 1280x720,
30 frames a second, encoded here as MP4/H.264, MOV/H.264, WebM/VP8 and WebM/VP9 (nothing committed).
Per clip and library, all from memory (both read an in-memory file object):

- decode every frame: PyAV without conversion (what app/video.py does for frames it skips), OpenCV's
  `grab()` (decode, no conversion) and `read()` (decode + BGR for every frame);
- sample at 4 frames a second as the report does: PyAV converts the sampled frames only, OpenCV
  `grab()`s every frame and `retrieve()`s the sampled ones;
- seek to 3.0 s and take the first frame: time, and which frame came (its true time);
- a variable frame rate clip (10 frames at irregular times): each library's timestamp per frame
  against the truth;
- an audio-only file and a text file: what each says.
"""

from __future__ import annotations

import io
import statistics
import time

import cv2
import numpy as np

from .clips import audio_only, encode, make_clip

SIZES = {"480p": (854, 480), "720p": (1280, 720)}
ENCODINGS = ["mp4-h264", "mov-h264", "webm-vp8", "webm-vp9"]
FPS = 30
SECONDS = 4
SAMPLE_FPS = 4
REPEAT = 3
VFR_TIMES = [0.0, 0.05, 0.1, 0.5, 0.55, 1.0, 1.6, 1.65, 1.7, 2.5]


def _clip_frames(size: tuple[int, int]) -> list[np.ndarray]:
    base = make_clip("walk", n_frames=FPS * SECONDS).frames
    return [cv2.resize(f, size, interpolation=cv2.INTER_LINEAR) for f in base]


def _best(fn) -> tuple[float, object]:
    times, out = [], None
    for _ in range(REPEAT):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def pyav_decode_all(data: bytes) -> int:
    import av

    with av.open(io.BytesIO(data)) as c:
        stream = c.streams.video[0]
        stream.thread_type = "AUTO"
        stream.codec_context.thread_count = 2
        return sum(1 for _ in c.decode(stream))


def pyav_decode_rgb(data: bytes, reuse: bool = True) -> int:
    """Every frame decoded and converted to RGB; `reuse`: one scaler for the clip (app/video.py),
    else a new one per frame (`frame.to_ndarray(format="rgb24")`, PyAV's obvious call)."""
    import av
    from av.video.reformatter import VideoReformatter

    scaler = VideoReformatter()
    with av.open(io.BytesIO(data)) as c:
        stream = c.streams.video[0]
        stream.thread_type = "AUTO"
        stream.codec_context.thread_count = 2
        if reuse:
            return sum(1 for f in c.decode(stream) if scaler.reformat(f, format="rgb24").to_ndarray() is not None)
        return sum(1 for f in c.decode(stream) if f.to_ndarray(format="rgb24") is not None)


def pyav_sampled(data: bytes) -> int:
    from app.video import VideoLimits, open_video

    with open_video(data, VideoLimits(threads=2)) as video:
        return sum(1 for _ in video.sampled(SAMPLE_FPS))


class _Capture:
    """cv2.VideoCapture over an in-memory file. OpenCV keeps no reference to the file object it reads
    from: when the caller drops it, the next grab() reads freed memory and the process dies
    (segmentation fault, found by this benchmark), so the capture and its stream live together."""

    def __init__(self, data: bytes, params: list[int] | None = None):
        self.stream = io.BytesIO(data)
        self.cap = cv2.VideoCapture(self.stream, cv2.CAP_FFMPEG, params or [])

    def __getattr__(self, name):
        return getattr(self.cap, name)


def _capture(data: bytes):
    cap = _Capture(data, [cv2.CAP_PROP_N_THREADS, 2])
    if not cap.isOpened():
        raise OSError("OpenCV could not open it")
    return cap


def cv_grab_all(data: bytes) -> int:
    cap, n = _capture(data), 0
    while cap.grab():
        n += 1
    cap.release()
    return n


def cv_read_all(data: bytes) -> int:
    cap, n = _capture(data), 0
    while True:
        ok, _ = cap.read()
        if not ok:
            break
        n += 1
    cap.release()
    return n


def cv_sampled(data: bytes) -> int:
    cap, n, k, next_t = _capture(data), 0, 0, 0.0
    while cap.grab():
        t = cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0
        if t + 1e-6 >= next_t:
            ok, _ = cap.retrieve()
            n += ok
            next_t += 1.0 / SAMPLE_FPS
        k += 1
    cap.release()
    return n


def pyav_seek(data: bytes, target: float) -> float:
    import av

    with av.open(io.BytesIO(data)) as c:
        stream = c.streams.video[0]
        c.seek(int(target / stream.time_base), stream=stream, backward=True, any_frame=False)
        for frame in c.decode(stream):  # from the key frame before the target up to it
            if frame.time is not None and frame.time + 1e-6 >= target:
                return float(frame.time)
    return float("nan")


def cv_seek(data: bytes, target: float) -> float:
    cap = _capture(data)
    cap.set(cv2.CAP_PROP_POS_MSEC, target * 1000.0)
    ok, frame = cap.read()
    t = cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0 if ok else float("nan")
    cap.release()
    return t


def _frame_number(rgb: np.ndarray, frames: list[np.ndarray]) -> int:
    """Which source frame a decoded one is (nearest by mean absolute difference)."""
    small = cv2.resize(rgb, (64, 36), interpolation=cv2.INTER_AREA).astype(np.int16)
    diffs = [
        np.abs(cv2.resize(f, (64, 36), interpolation=cv2.INTER_AREA).astype(np.int16) - small).mean() for f in frames
    ]
    return int(np.argmin(diffs))


def seek_accuracy(data: bytes, frames: list[np.ndarray], target: float) -> dict:
    """The frame each library hands back after seeking to `target` seconds: its true time."""
    import av

    out = {}
    with av.open(io.BytesIO(data)) as c:
        stream = c.streams.video[0]
        c.seek(int(target / stream.time_base), stream=stream, backward=True, any_frame=False)
        for frame in c.decode(stream):
            if frame.time is not None and frame.time + 1e-6 >= target:
                out["pyav"] = _frame_number(frame.to_ndarray(format="rgb24"), frames) / FPS
                break
    cap = _capture(data)
    cap.set(cv2.CAP_PROP_POS_MSEC, target * 1000.0)
    ok, bgr = cap.read()
    cap.release()
    out["opencv"] = _frame_number(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), frames) / FPS if ok else None
    return out


def vfr_timestamps(frames: list[np.ndarray]) -> dict:
    import av

    data = encode(frames[: len(VFR_TIMES)], "mp4-h264", times=VFR_TIMES)
    with av.open(io.BytesIO(data)) as c:
        got_av = [round(float(f.time), 3) for f in c.decode(video=0)]
    cap, got_cv = _capture(data), []
    while True:
        ok, _ = cap.read()
        if not ok:
            break
        got_cv.append(round(cap.get(cv2.CAP_PROP_POS_MSEC) / 1000.0, 3))
    fps_cv = cap.get(cv2.CAP_PROP_FPS)
    cap.release()
    err = lambda got: max(abs(a - b) for a, b in zip(got, VFR_TIMES, strict=False)) if got else None  # noqa: E731
    return {
        "truth": VFR_TIMES,
        "pyav": got_av,
        "opencv": got_cv,
        "pyav_max_error_s": err(got_av),
        "opencv_max_error_s": err(got_cv),
        "opencv_fps": round(fps_cv, 3),
    }


def refusals() -> dict:
    """What each library says of an audio-only file and of text."""
    from app.video import VideoError, open_video

    out = {}
    for name, data in (("audio_only_m4a", audio_only(1.0, "mp4")), ("text", b"not a video " * 100)):
        try:
            open_video(data)
            said_av = "opened"
        except VideoError as exc:
            said_av = f"{exc.status} {exc.code}"
        cap = _Capture(data)
        said_cv = "opened" if cap.isOpened() else "isOpened() is False"
        if cap.isOpened():
            said_cv += f", read() {'gives a frame' if cap.read()[0] else 'gives nothing'}"
        cap.release()
        out[name] = {"pyav": said_av, "opencv": said_cv}
    return out


def run(args) -> dict:
    import av

    rows = []
    seeks = {}
    for size_name, size in SIZES.items():
        frames = _clip_frames(size)
        for encoding in ENCODINGS:
            data = encode(frames, encoding, fps=FPS)
            n = len(frames)
            row = {"size": size_name, "encoding": encoding, "bytes": len(data), "frames": n}
            for key, fn in (
                ("pyav_decode", pyav_decode_all),
                ("pyav_decode_rgb", pyav_decode_rgb),
                ("pyav_decode_rgb_new_scaler", lambda d: pyav_decode_rgb(d, reuse=False)),
                ("pyav_sampled", pyav_sampled),
                ("cv_grab", cv_grab_all),
                ("cv_read", cv_read_all),
                ("cv_sampled", cv_sampled),
            ):
                seconds, count = _best(lambda fn=fn, data=data: fn(data))
                row[key + "_ms_per_frame"] = round(seconds * 1000 / n, 3)
                row[key + "_count"] = count
            for key, fn in (("pyav_seek", pyav_seek), ("cv_seek", cv_seek)):
                seconds, _ = _best(lambda fn=fn, data=data: fn(data, 3.0))
                row[key + "_ms"] = round(seconds * 1000, 2)
            rows.append(row)
            if size_name == "480p":
                seeks[encoding] = seek_accuracy(data, frames, 3.0)
        if size_name == "480p":
            vfr = vfr_timestamps(frames)
    return {
        "rows": rows,
        "seek_to_3s_true_time": seeks,
        "vfr": vfr,
        "refusals": refusals(),
        "versions": {
            "pyav": av.__version__,
            "opencv": cv2.__version__,
            "ffmpeg_libavcodec": ".".join(map(str, av.library_versions["libavcodec"])),
        },
        "clip": {"scene": "walk", "fps": FPS, "seconds": SECONDS, "sample_fps": SAMPLE_FPS, "repeat": REPEAT},
    }


CHOICE = """**The choice: PyAV** (app/video.py). Speed is not what decides: both run the same FFmpeg
decoders, and on the report's path (4 frames a second analysed) they are within this 2-core machine's
run-to-run noise of each other, a few ms per frame of video against the 20-60 ms each analysed frame
costs in detection and classification. Seeking lands on the same frame in both, and both give a
variable frame rate clip's true timestamps. What decides is what the server can check and say before
any frame is decoded: PyAV shows the container's streams, so an audio-only file is a clear 422
`no_video_stream` where OpenCV only says it could not open; the codec and the declared duration and
size are read from the header (an 8K or hour-long clip is refused before decoding); the demuxer is
forced to the sniffed container. OpenCV can read from memory too (4.14), but it keeps no reference to
the file object it reads: drop it and the next `grab()` is a segmentation fault (this benchmark hit
it). Two things measured here changed app/video.py: PyAV's obvious `frame.to_ndarray(format="rgb24")`
builds a new scaler every frame (the figure in brackets), so the clip keeps one; and frames over
1280 px are shrunk by that scaler before analysis."""


def markdown(res: dict) -> str:
    v = res["versions"]
    lines = [
        f"PyAV {v['pyav']} and OpenCV {v['opencv']} (both on FFmpeg's libavcodec {v['ffmpeg_libavcodec']}), "
        f"2 decoder threads each, from memory; {res['clip']['seconds']} s clips of benchmarks/clips.py's "
        f"`walk` at {res['clip']['fps']} frames/s; ms per frame of the clip (median of "
        f"{res['clip']['repeat']}). *Sampled* is the report's path: {res['clip']['sample_fps']} analysed "
        "frames a second converted to RGB, the rest decoded only.",
        "",
        "| clip | KB | PyAV decode | PyAV decode+RGB (new scaler a frame) | **PyAV sampled** | OpenCV grab | "
        "OpenCV read (BGR) | **OpenCV sampled** | seek 3 s: PyAV / OpenCV |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in res["rows"]:
        lines.append(
            f"| {r['size']} {r['encoding']} | {r['bytes'] // 1024} | {r['pyav_decode_ms_per_frame']:.2f} | "
            f"{r['pyav_decode_rgb_ms_per_frame']:.2f} ({r['pyav_decode_rgb_new_scaler_ms_per_frame']:.2f}) | **{r['pyav_sampled_ms_per_frame']:.2f}** | "
            f"{r['cv_grab_ms_per_frame']:.2f} | {r['cv_read_ms_per_frame']:.2f} | "
            f"**{r['cv_sampled_ms_per_frame']:.2f}** | {r['pyav_seek_ms']:.1f} / {r['cv_seek_ms']:.1f} ms |"
        )
    lines += [
        "",
        "Seeking to 3.0 s, the true time of the frame each hands back (480p): "
        + "; ".join(
            f"{enc}: PyAV {s['pyav']:.3f} s, OpenCV {s['opencv'] if s['opencv'] is None else format(s['opencv'], '.3f')} s"
            for enc, s in res["seek_to_3s_true_time"].items()
        )
        + ".",
    ]
    vfr = res["vfr"]
    lines += [
        "",
        f"Variable frame rate (10 frames at {vfr['truth']} s): PyAV's timestamps {vfr['pyav']} "
        f"(largest error {vfr['pyav_max_error_s']} s); OpenCV's `CAP_PROP_POS_MSEC` {vfr['opencv']} "
        f"(largest error {vfr['opencv_max_error_s']} s; it reports {vfr['opencv_fps']} frames/s).",
    ]
    lines += [
        "",
        "Refusals: "
        + "; ".join(
            f"{name}: PyAV (app/video.py) {r['pyav']}, OpenCV {r['opencv']}" for name, r in res["refusals"].items()
        )
        + ".",
    ]
    lines += ["", CHOICE]
    return "\n".join(lines)

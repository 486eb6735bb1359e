"""Video files -> the frames to analyse, at a chosen rate, with limits that bound their cost (issue 25).

Decoding is PyAV (FFmpeg's libraries inside its wheel), chosen over OpenCV's VideoCapture by
`python -m benchmarks video` (docs/BENCHMARKS.md): the same FFmpeg decoders and speed, but PyAV reads
from memory (an upload is never written to disk, as photos are not), tells an audio-only file from a
video before decoding anything, and gives each frame its own timestamp (variable frame rate clips are
sampled at their true times, where OpenCV counts frames at an average rate).

What reaches FFmpeg is checked first: the container is sniffed from its first bytes (MP4 / MOV / 3GP,
WebM / Matroska, AVI) and opened as that format only, so FFmpeg's other demuxers (playlists that name
other files or URLs, image sequences, raw streams) never see user bytes; the video codec must be one of
VIDEO_CODECS. Then `VideoLimits` bounds the work whatever the header claims:

- size (`max_bytes`), resolution (`max_pixels`, `max_side`: from the stream's header before decoding,
  and again for every decoded frame, since a stream may change size midway);
- the analysed duration (`max_seconds`: frames after it are not decoded; a longer clip is analysed up to
  it and the report says `truncated: "max_seconds"`, or is refused up front when its declared duration
  is over `refuse_seconds`);
- decoded frames (`max_decoded_frames`: a tiny file can hold a huge number of tiny or empty frames) and
  analysed frames (`max_frames`);
- frames are shrunk to `analysis_side` before they are converted to RGB, so an analysed frame costs
  about what a 720p frame does.

`open_video(source, limits)` checks and probes (raising VideoError with an HTTP status and code, like
app/imaging.py's errors); `Video.sampled(fps)` yields the frames to analyse.
"""

from __future__ import annotations

import io
import logging
import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .imaging import ImageError

log = logging.getLogger(__name__)

# Sniffed container -> the FFmpeg demuxer it is opened with (and nothing else).
CONTAINERS = {"mp4": "mov", "webm": "matroska", "avi": "avi"}
# FFmpeg decoder names accepted: what phones, cameras, browsers (MediaRecorder) and screen recorders write.
VIDEO_CODECS = frozenset(
    {"h264", "hevc", "vp8", "vp9", "av1", "libdav1d", "mpeg4", "mjpeg", "mpeg2video", "mpeg1video", "h263"}
)
ACCEPTED = "an MP4, MOV, WebM, MKV or AVI video (H.264, H.265, VP8, VP9, AV1, MPEG-4 or MJPEG)"
# ISO base media (MP4, MOV, 3GP) files start with one of these boxes (QuickTime's older files with
# `moov`/`mdat`/`wide`/`free`/`skip`).
_ISO_BOXES = {b"ftyp", b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"}


class VideoError(ImageError):
    """A video the app refuses; `status` and `code` go into the JSON error (app/errors.py)."""

    status = 400
    code = "bad_video"


class UnsupportedVideo(VideoError):
    status = 415
    code = "unsupported_type"


class NoVideoStream(VideoError):
    status = 422
    code = "no_video_stream"


class VideoTooLarge(VideoError):
    status = 413
    code = "video_too_large"


class VideoTooLong(VideoError):
    status = 422
    code = "video_too_long"


@dataclass(frozen=True)
class VideoLimits:
    """What analysing one clip may cost. The defaults are the library's and the command's (a local file,
    the user's own machine); the server's are tighter (app/api.py, docs/API.md)."""

    max_bytes: int | None = None  # an in-memory clip; a file on disk is read by FFmpeg as it goes
    max_pixels: int = 3840 * 2160  # 4K UHD; an 8K frame (33 MP, 50 MB as RGB) is refused
    max_side: int = 4096
    max_seconds: float = 600.0  # analysed: frames after this are not decoded (report: truncated)
    refuse_seconds: float | None = None  # a declared duration over this is refused up front (the server)
    max_decoded_frames: int = 600 * 60  # decoded, analysed or not: max_seconds at 60 frames a second
    max_frames: int = 600 * 8  # analysed frames: max_seconds at 8 a second
    analysis_side: int = 1280  # sampled frames are shrunk to this long side before RGB conversion
    threads: int = 2  # FFmpeg decoder threads

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class VideoInfo:
    """What the container says of a clip, before anything is decoded."""

    format: str  # "mp4" | "webm" | "avi" (the sniffed container)
    codec: str
    width: int
    height: int
    duration: float | None  # seconds, as declared (None: the container does not say)
    frame_rate: float | None  # the stream's average rate, as declared
    frames: int | None  # the stream's frame count, as declared (WebM does not say)
    has_audio: bool

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Sampled:
    """One frame to analyse: its RGB pixels (shrunk to the analysis side) and where it is in the clip."""

    index: int  # the decoded frame's number in the stream (0-based)
    time: float  # seconds from the start of the stream
    rgb: np.ndarray
    scale: tuple[float, float]  # (x, y) video pixels per pixel of `rgb`
    width: int  # of the video frame
    height: int


def sniff(head: bytes) -> str | None:
    """The container of a file from its first bytes: "mp4" (MP4, MOV, 3GP), "webm" (WebM, Matroska),
    "avi", or None."""
    if head[:4] == b"\x1aE\xdf\xa3":
        return "webm"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "avi"
    if len(head) >= 8 and head[4:8] in _ISO_BOXES:
        return "mp4"
    return None


class Video:
    """An opened, checked clip. Use as a context manager (or call `close`); `sampled(fps)` decodes."""

    def __init__(self, container, info: VideoInfo, limits: VideoLimits):
        self._container = container
        self.info = info
        self.limits = limits
        self.truncated: str | None = None  # why decoding stopped early, once `sampled` has run
        self.decoded = 0  # frames decoded so far
        # one scaler for the whole clip: FFmpeg's conversion context is built once, not per frame (a
        # 480p frame to RGB: 6.4 ms with a new one each time, 1.3 ms reused; docs/BENCHMARKS.md)
        from av.video.reformatter import VideoReformatter

        self._reformatter = VideoReformatter()

    def __enter__(self) -> Video:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None

    def expected_frames(self, fps: float) -> int:
        """About how many frames `sampled(fps)` yields (for progress), from the declared duration."""
        duration = self.info.duration
        if not duration:
            return 0
        return min(self.limits.max_frames, max(1, math.ceil(min(duration, self.limits.max_seconds) * fps)))

    def sampled(self, fps: float) -> Iterator[Sampled]:
        """The frames closest after each multiple of 1/fps seconds, by their own timestamps (a variable
        frame rate clip is sampled at its true times), within the limits; `truncated` says why it
        stopped early. Raises VideoError when not one frame decodes, VideoTooLarge for a frame over the
        resolution limits."""
        import av

        if not fps > 0 or not math.isfinite(fps):
            raise ValueError(f"fps must be a positive number, got {fps}")
        if self._container is None:
            raise ValueError("the video is closed")
        limits = self.limits
        stream = self._container.streams.video[0]
        start = float(stream.start_time * stream.time_base) if stream.start_time is not None else None
        step = 1.0 / fps
        next_time = 0.0
        sampled = 0
        rate = self.info.frame_rate or 30.0
        frames = self._container.decode(stream)
        while True:
            try:
                frame = next(frames)
            except StopIteration:
                break
            except (av.FFmpegError, ValueError, OSError) as exc:  # truncated or corrupt from here on
                if self.decoded == 0:
                    raise VideoError(f"the video could not be decoded ({_reason(exc)})") from None
                log.info("video decoding stopped after %d frames: %s", self.decoded, _reason(exc))
                self.truncated = "decode_error"
                break
            index = self.decoded
            self.decoded += 1
            if self.decoded > limits.max_decoded_frames:
                self.truncated = "max_decoded_frames"
                break
            _check_size(frame.width, frame.height, limits)
            t = frame.time
            if t is None:
                t = index / rate
            else:
                if start is None:
                    start = t
                t = max(0.0, t - start)
            if t > limits.max_seconds:
                self.truncated = "max_seconds"
                break
            if t + 1e-6 < next_time:
                continue
            rgb, scale = _to_rgb(frame, limits.analysis_side, self._reformatter)
            yield Sampled(index=index, time=round(t, 4), rgb=rgb, scale=scale, width=frame.width, height=frame.height)
            sampled += 1
            if sampled >= limits.max_frames:
                self.truncated = "max_frames"
                break
            # the next sample is the first frame at or after the next multiple of the step (a frame
            # that came late does not shift the grid)
            next_time = (math.floor(t / step + 1e-6) + 1) * step
        if self.decoded == 0:
            raise VideoError("the video has no frame that could be decoded")


def _reason(exc: Exception) -> str:
    return f"{type(exc).__name__}: {str(exc)[:120]}"


def _check_size(width: int, height: int, limits: VideoLimits) -> None:
    if width < 1 or height < 1:
        raise VideoError("the video has frames without pixels")
    if width * height > limits.max_pixels or max(width, height) > limits.max_side:
        raise VideoTooLarge(
            f"video of {width}x{height} pixels; the limit is {limits.max_pixels:,} pixels a frame "
            f"and {limits.max_side} a side (re-encode it smaller, e.g. 1080p)"
        )


def _to_rgb(frame, side: int, reformatter) -> tuple[np.ndarray, tuple[float, float]]:
    """The frame as RGB, shrunk (by FFmpeg's scaler, before conversion) so its long side is at most
    `side`, and turned upright when the stream says it was filmed turned (a phone held upright)."""
    w, h = frame.width, frame.height
    k = min(1.0, side / max(w, h)) if side else 1.0
    tw, th = max(2, int(round(w * k))), max(2, int(round(h * k)))
    if (tw, th) != (w, h):
        rgb = reformatter.reformat(frame, width=tw, height=th, format="rgb24", interpolation="AREA").to_ndarray()
    else:
        rgb = reformatter.reformat(frame, format="rgb24").to_ndarray()
    scale = (w / rgb.shape[1], h / rgb.shape[0])
    rotation = int(getattr(frame, "rotation", 0) or 0) % 360
    if rotation in (90, 180, 270):
        # FFmpeg's display matrix turns counter-clockwise by `rotation` degrees to show the frame upright
        rgb = np.ascontiguousarray(np.rot90(rgb, k=rotation // 90))
        if rotation != 180:
            scale = (scale[1], scale[0])
    return rgb, scale


def open_video(source: str | Path | bytes, limits: VideoLimits | None = None) -> Video:
    """Check and open a clip (a path or the bytes of an upload, read from memory): the container by
    its first bytes, then the header: a video stream of an accepted codec, the resolution, and the
    declared duration against `refuse_seconds`. Raises VideoError (4xx status and code) otherwise."""
    import av

    limits = limits or VideoLimits()
    if isinstance(source, bytes | bytearray | memoryview):
        data = bytes(source)
        if not data:
            raise VideoError("the video is empty (0 bytes)", code="empty_video")
        if limits.max_bytes is not None and len(data) > limits.max_bytes:
            raise VideoTooLarge(f"video of {len(data)} bytes; the limit is {limits.max_bytes}")
        head = data[:16]
        target: Any = io.BytesIO(data)
    else:
        path = Path(source)
        try:
            with path.open("rb") as f:
                head = f.read(16)
            size = path.stat().st_size
        except OSError as exc:
            raise VideoError(f"cannot read {path}: {exc.strerror or exc}", code="unreadable") from None
        if size == 0:
            raise VideoError("the video is empty (0 bytes)", code="empty_video")
        if limits.max_bytes is not None and size > limits.max_bytes:
            raise VideoTooLarge(f"video of {size} bytes; the limit is {limits.max_bytes}")
        target = str(path)
    kind = sniff(head)
    if kind is None:
        raise UnsupportedVideo(f"not a video this app reads; send {ACCEPTED}")
    try:
        container = av.open(target, mode="r", format=CONTAINERS[kind], options={"probesize": "5000000"})
    except (av.FFmpegError, ValueError, OSError) as exc:
        raise VideoError(f"the video could not be opened ({_reason(exc)})") from None
    try:
        info = _probe(container, kind, limits)
    except BaseException:
        container.close()
        raise
    return Video(container, info, limits)


def _probe(container, kind: str, limits: VideoLimits) -> VideoInfo:
    if not container.streams.video:
        what = "audio only" if container.streams.audio else "no video stream"
        raise NoVideoStream(f"the file has no video to analyse ({what})")
    stream = container.streams.video[0]
    ctx = stream.codec_context
    codec = ctx.name if ctx is not None else "unknown"
    if codec not in VIDEO_CODECS:
        raise UnsupportedVideo(f"video codec {codec!r} is not accepted; send {ACCEPTED}", code="unsupported_codec")
    width, height = int(ctx.width or 0), int(ctx.height or 0)
    if width and height:
        _check_size(width, height, limits)
    duration = None
    if stream.duration is not None and stream.time_base is not None:
        duration = float(stream.duration * stream.time_base)
    elif container.duration is not None:
        duration = container.duration / 1_000_000  # AV_TIME_BASE
    if duration is not None and (not math.isfinite(duration) or duration < 0):
        duration = None
    rate = stream.average_rate or stream.guessed_rate
    frame_rate = float(rate) if rate else None
    if frame_rate is not None and not (0 < frame_rate < 100_000):
        frame_rate = None
    if limits.refuse_seconds is not None and duration is not None and duration > limits.refuse_seconds:
        raise VideoTooLong(
            f"video of {duration:.0f} s; the limit is {limits.refuse_seconds:.0f} s (cut the part to analyse)"
        )
    stream.thread_type = "AUTO"
    stream.codec_context.thread_count = max(1, int(limits.threads))
    return VideoInfo(
        format=kind,
        codec=codec,
        width=width,
        height=height,
        duration=round(duration, 3) if duration is not None else None,
        frame_rate=round(frame_rate, 3) if frame_rate else None,
        frames=int(stream.frames) if stream.frames else None,
        has_audio=bool(container.streams.audio),
    )

"""The emotion assistant's web app: `create_app()` builds it the way Flask's tutorial (flaskr) does.

Configuration comes from DEFAULTS, then `EMOTION_*` environment variables (e.g. EMOTION_MODELS_DIR,
EMOTION_DEFAULT_MODEL, EMOTION_SPEECH_ENGINE=espeak|gtts; values are parsed as JSON when they can be),
then `test_config`. The detector, models and TTS engine are built once per process; with
WARMUP="background" (the default) they load in a thread right after start-up so that a gunicorn
worker answers its heartbeat while they load, and the first request waits for them.
"""

from __future__ import annotations

import io
import logging
import mimetypes
import os
import threading
import time
from pathlib import Path

from flask import Flask, Request
from flask.json.provider import DefaultJSONProvider
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.routing import Map

ROOT = Path(__file__).resolve().parent.parent


def data_dir(name: str) -> Path:
    """The shipped `models`, `templates` or `static` folder: inside the package once it is installed
    (`pip install .` maps them to app/_data/, pyproject.toml), else the repository's own folder."""
    packaged = Path(__file__).resolve().parent / "_data" / name
    return packaged if packaged.is_dir() else ROOT / name


# The on-device runtime's files (static/vendor/onnxruntime-web): a module script must be served as
# JavaScript (the page sends nosniff), and WebAssembly as application/wasm to compile while streaming.
mimetypes.add_type("text/javascript", ".mjs")
mimetypes.add_type("application/wasm", ".wasm")

# TensorFlow's C++ start-up chatter is not useful in a web server's log (set it to 0 to see it).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

DEFAULTS = {
    "MODELS_DIR": str(data_dir("models")),
    "DEFAULT_MODEL": None,  # None: the card marked "default": true, else the first single model
    "STRICT_CARDS": False,  # True: a bad card stops start-up instead of being skipped with a log line
    "SPEECH_ENGINE": "espeak",  # offline; "gtts" = online MP3 with fallback to espeak
    "AUDIO_CACHE_SIZE": 128,  # synthesised replies kept per process
    "MAX_IMAGE_BYTES": 10 * 1024 * 1024,
    "MAX_CONTENT_LENGTH": 16 * 1024 * 1024,  # a whole request, base64 JSON included
    "MAX_FORM_MEMORY_SIZE": 16 * 1024 * 1024,  # a data URL may come as a form text field
    "MAX_PIXELS": 40_000_000,  # checked from the header before decoding
    "MAX_JPEG_SCANS": 100,  # a progressive JPEG's scans, counted from the bytes before decoding
    "MAX_JPEG_SCAN_PIXELS": 1_000_000_000,  # scans x pixels: 25 scans at 40 MP (~0.8 s of CPU)
    "MAX_IMAGE_SIDE": 16384,  # pixels, either side, from the header (413)
    "MAX_ASPECT_RATIO": 20,  # long side / short side, from the header (422 bad_aspect_ratio)
    "MAX_DECODE_BYTES": 300_000_000,  # memory a decode may hold, estimated from the header (413)
    "DECODE_SIDE": 2048,  # images over twice this are analysed at 1/2, 1/3, ... scale (0: never)
    "DETECT_MAX_SIDE": 1024,  # photos are shrunk to this for detection
    "MIN_FACE_SIZE": 20,  # pixels, at detection scale
    "DETECT_SCALE_FACTOR": 0.6,  # MTCNN pyramid step: 0.6 finds the same faces as 0.709, ~25% faster
    "MIN_FACE_CONFIDENCE": 0.9,
    "DETECTOR_BACKEND": "onnx",  # MTCNN on ONNX Runtime (the only backend since TensorFlow left, issue 17)
    "DETECT_THREADS": 2,  # ONNX Runtime threads for the detector's networks
    "MAX_FACES": 20,  # faces classified per image
    "TRACK_FULL_EVERY": 8,  # live frames (a `track` hint): a full detection at least every N frames
    "TRACK_MAX_AGE_MS": 1000,  # a hint older than this is stale: full detection
    # POST /api/video (issue 25; docs/API.md says why these): a clip is a request like any other, so it
    # fits the request cap (16 MB, held in memory by nginx and the app, never on disk); a minute of it is
    # analysed at most (a longer declared duration is refused, and decoding stops there whatever the
    # header says); frames up to 1080p (4K and 8K are refused from the header: re-encode), shrunk to
    # 1280 px before analysis; 4 frames a second by default, 8 at most; one clip at a time per worker.
    "VIDEO_MAX_BYTES": 16 * 1024 * 1024,
    "VIDEO_MAX_SECONDS": 60,
    "VIDEO_MAX_PIXELS": 1920 * 1080,
    "VIDEO_MAX_SIDE": 1920,
    "VIDEO_FPS": 4,
    "VIDEO_MAX_FPS": 8,
    "VIDEO_ANALYSIS_SIDE": 1280,
    "VIDEO_DECODE_THREADS": 1,
    "VIDEO_CONCURRENCY": 1,
    "WARMUP": "background",  # "sync": load everything in create_app; "background"; "lazy": on first use
    "JSON_SORT_KEYS": False,
}


class InMemoryRequest(Request):
    """Uploads stay in memory (bounded by MAX_CONTENT_LENGTH): Werkzeug would spool files over 500 KB
    to a temporary file, and the app promises never to write a user's photo to disk."""

    def _get_file_stream(self, total_content_length, content_type, filename=None, content_length=None):
        return io.BytesIO()

    # Werkzeug answers 413 both for a body over MAX_CONTENT_LENGTH and for a form of more than
    # MAX_FORM_PARTS parts (1 000). The API keeps `request_entity_too_large` for the first (docs/API.md);
    # a small request with too many parts is a malformed one: 400 `too_many_parts`.
    def _get_stream_for_parsing(self):
        self._form_stream = _CountingStream(super()._get_stream_for_parsing())
        return self._form_stream

    def _load_form_data(self) -> None:
        try:
            super()._load_form_data()
        except RequestEntityTooLarge as exc:
            if getattr(exc, "chunk_over_cap", False):  # app.serving: a chunk declared over the cap
                raise
            counted = getattr(self, "_form_stream", None)
            limit = self.max_content_length
            # A chunked body has no Content-Length: Werkzeug's stream stops it at the limit, having
            # read exactly `limit` bytes, so reaching the limit means "too large" (issue 16: a chunked
            # 17 MB form was answered 400 too_many_parts).
            within = (
                counted is not None
                and (limit is None or counted.count < limit)
                and (self.content_length is None or limit is None or self.content_length <= limit)
            )
            if not within:
                raise
            from .errors import ApiError

            raise ApiError(
                400, "too_many_parts", f"a form may have at most {self.max_form_parts} parts; the page sends 4"
            ) from None


class _CountingStream:
    """A read-only stream that counts what was read through it."""

    def __init__(self, stream):
        self._stream, self.count = stream, 0

    def read(self, *args):
        data = self._stream.read(*args)
        self.count += len(data)
        return data

    def __getattr__(self, name):
        return getattr(self._stream, name)


class _NoMergeMap(Map):
    """Werkzeug answers a path with "//" by a 308 to the merged path on the request's own Host header,
    so `GET //api/health` with `Host: evil.example` redirected there (issue 16). No route has "//":
    such a path is a 404 instead. (A map setting, not a rule's: Flask adds its static rule before
    create_app could change the map.)"""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("merge_slashes", False)
        super().__init__(*args, **kwargs)


class _UnsortedJSON(DefaultJSONProvider):
    sort_keys = False  # the API's keys in the order the code writes them (docs/API.md)


class _Flask(Flask):
    url_map_class = _NoMergeMap
    json_provider_class = _UnsortedJSON

    def send_static_file(self, filename: str):
        response = super().send_static_file(filename)
        from .ondevice import runtime_cache_control

        cache_control = runtime_cache_control(filename)
        if cache_control is not None and response.status_code in (200, 206, 304):
            response.headers["Cache-Control"] = cache_control
        return response


def create_app(test_config: dict | None = None) -> Flask:
    app = _Flask(
        __name__,
        template_folder=str(data_dir("templates")),
        static_folder=str(data_dir("static")),
        static_url_path="/static",
    )
    app.config.from_mapping(DEFAULTS)
    app.config.from_prefixed_env("EMOTION")
    if test_config is not None:
        app.config.from_mapping(test_config)
    app.request_class = InMemoryRequest
    from .serving import CloseUnreadBody

    # Flask's documented way to add WSGI middleware; mypy sees a method being replaced.
    app.wsgi_app = CloseUnreadBody(app.wsgi_app)  # type: ignore[method-assign]  # a no-op unless gunicorn.conf.py's hooks run
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    from . import api, cli, emotion, errors, faces, logs, metrics, ondevice, pages, speech, videoapi

    logs.init_app(app)  # request ids, LOG_FORMAT=json (issue 24)
    metrics.init_app(app)  # Prometheus counters; served by gunicorn's master (gunicorn.conf.py)
    errors.init_app(app)
    faces.init_app(app)
    emotion.init_app(app)
    speech.init_app(app)
    app.register_blueprint(pages.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(ondevice.bp)
    app.register_blueprint(videoapi.bp)
    cli.init_app(app)
    _start_warmup(app)
    return app


def warming_up(app: Flask) -> bool:
    """True while the background warm-up is still loading the detector and models (/api/health then
    answers 503, so that a load balancer or Kubernetes sends no traffic to this worker yet)."""
    done = app.extensions.get("emotion.warmup")
    return done is not None and not done.is_set()


def _warm_up(app: Flask) -> None:
    try:
        _load_all(app)
    finally:
        done = app.extensions.get("emotion.warmup")
        if done is not None:
            done.set()


def _load_all(app: Flask) -> None:
    t0 = time.perf_counter()
    from .emotion import get_models
    from .faces import get_detector
    from .speech import get_speech

    try:
        with app.app_context():
            get_speech().warm_up()
            get_detector().load()
            get_models().load_all()
    except Exception:
        app.logger.exception("warm-up failed; models load on first use instead")
    app.logger.info("warm-up done in %.1f s (pid %d)", time.perf_counter() - t0, os.getpid())


def _start_warmup(app: Flask) -> None:
    mode = app.config["WARMUP"]
    if mode == "sync":
        _warm_up(app)
    elif mode == "background":
        app.extensions["emotion.warmup"] = threading.Event()
        threading.Thread(target=_warm_up, args=(app,), name="warmup", daemon=True).start()
    elif mode != "lazy":
        raise ValueError(f"WARMUP must be 'sync', 'background' or 'lazy', got {mode!r}")

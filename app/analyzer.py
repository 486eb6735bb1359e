"""The assistant as a library (issue 25): photos, arrays and videos in, the server's own objects out.

    from app.analyzer import Analyzer

    analyzer = Analyzer()                        # the default model, English; Analyzer("ferplus_cnn", lang="vi")
    faces = analyzer.analyze("group.jpg")        # [FaceResult], largest face first (also bytes or an RGB array)
    faces[0].emotion, faces[0].scores, faces[0].face.box, analyzer.confident(faces[0])
    reply = analyzer.reply(faces)                # the assistant's answer (app/assistant.Reply)
    wav = analyzer.speak(reply)                  # its voice as WAV bytes (espeak-ng, offline)
    report = analyzer.video("clip.mp4", fps=4)   # VideoReport: tracks, segments, timeline
    report.write("out/")                         # timeline.csv, report.json, chart.png

The same code paths as `POST /api/predict` and `POST /api/video`: photos are decoded by
app/imaging.py (EXIF rotation, the same caps), faces found and classified by app/pipeline.py, videos
decoded by app/video.py and followed by app/tracking.py's tracker (app/videoreport.py). Nothing here
needs Flask's app context; the detector and the models load on first use, once per Analyzer.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from . import DEFAULTS, assistant
from .emotion import ModelRegistry
from .faces import FaceDetector
from .imaging import Decoded, decode_with_config
from .pipeline import FaceResult, analyze, rescale
from .speech import EspeakEngine
from .tracking import full_every_at
from .video import VideoLimits, open_video
from .videoreport import FrameResult, VideoReport, analyze_video

# A local file may be larger than an upload (the server's 10 MB); the pixel and memory caps stay.
MAX_FILE_BYTES = 64 * 1024 * 1024


class Analyzer:
    """Faces and their expressions in photos and videos, with the app's detector, models and replies.

    `model` names a card of `models_dir` (default: the shipped models, and their default model);
    `lang` is the replies' language ("en", "vi"); `config` overrides app/__init__.py's DEFAULTS
    (e.g. {"MIN_FACE_CONFIDENCE": 0.95}). Raises ValueError for an unknown model or language."""

    def __init__(
        self,
        model: str | None = None,
        lang: str = assistant.DEFAULT_LANG,
        *,
        models_dir: str | Path | None = None,
        config: dict[str, Any] | None = None,
    ):
        cfg = {**DEFAULTS, **(config or {})}
        self.config = cfg
        if lang not in assistant.LANGUAGES:
            raise ValueError(f"unknown language {lang!r}; use one of {list(assistant.LANGUAGES)}")
        self.lang = lang
        self.models = ModelRegistry(models_dir or cfg["MODELS_DIR"], default=cfg.get("DEFAULT_MODEL"))
        if model is not None and model not in self.models.cards:
            raise ValueError(f"no model {model!r}; choose from {', '.join(self.models.names) or 'none (no cards)'}")
        chosen = model or self.models.default
        if chosen is None:
            raise ValueError(f"no model card in {self.models.models_dir}")
        self.model: str = chosen
        self.detector = FaceDetector(
            min_confidence=cfg["MIN_FACE_CONFIDENCE"],
            max_faces=cfg["MAX_FACES"],
            max_side=cfg["DETECT_MAX_SIDE"],
            min_face_size=cfg["MIN_FACE_SIZE"],
            scale_factor=cfg["DETECT_SCALE_FACTOR"],
            threads=cfg["DETECT_THREADS"],
        )
        self._speech: EspeakEngine | None = None

    @property
    def labels(self) -> list[str]:
        return list(self.models.cards[self.model].classes)

    def read(self, image: str | Path | bytes) -> Decoded:
        """A photo file or its bytes decoded as the server decodes an upload (app/imaging.py's caps and
        errors: `app.imaging.ImageError` with `.status`, `.code` and `.message`)."""
        data = image if isinstance(image, bytes) else Path(image).read_bytes()
        cfg = self.config
        return decode_with_config(data, cfg, MAX_FILE_BYTES)

    def analyze(self, image: str | Path | bytes | np.ndarray, min_face: int | None = None) -> list[FaceResult]:
        """The faces of a photo (a path, its bytes, or an RGB uint8 array H x W x 3), largest first, each
        with its emotion and scores; boxes in pixels of the photo. [] when there is no face."""
        if isinstance(image, np.ndarray):
            rgb = _as_rgb(image)
            return analyze(rgb, detector=self.detector, models=self.models, model=self.model, min_face=min_face)
        decoded = self.read(image)
        results = analyze(
            decoded.rgb,
            detector=self.detector,
            models=self.models,
            model=self.model,
            min_face=int(min_face / max(decoded.scale)) if min_face else None,
        )
        return rescale(results, decoded.scale, decoded.width, decoded.height)

    def confident(self, result: FaceResult) -> bool:
        """Whether a face's scores clear the model card's confidence rule (the API's `confident`)."""
        return self.models.cards[self.model].confident(result.scores)

    def reply(self, results: list[FaceResult], lang: str | None = None) -> assistant.Reply:
        """The assistant's answer to a photo's faces, as /api/predict chooses it (hedged when the
        largest face is not confident; the no-face reply for [])."""
        first = results[0] if results else None
        return assistant.choose_reply(
            first.emotion if first else None,
            lang or self.lang,
            seed=f"{first.score:.2f}" if first else 0,
            confident=first is None or self.confident(first),
        )

    def video_reply(self, report: VideoReport, lang: str | None = None) -> assistant.Reply:
        """The assistant's spoken summary of a clip: its answer to the dominant expression of the face
        seen longest (the no-face reply when there was none)."""
        main = report.main_track
        top = main.mean_scores[main.dominant] if main else 0.0
        return assistant.choose_reply(
            main.dominant if main else None,
            lang or self.lang,
            seed=f"{top:.2f}",
            confident=main is None or self.models.cards[report.model].confident(main.mean_scores),
        )

    def speak(self, reply: assistant.Reply) -> bytes:
        """The reply's voice as WAV bytes, made offline by espeak-ng (app/speech.py)."""
        if self._speech is None:
            self._speech = EspeakEngine.shared()
        return self._speech.synthesize(reply.text, reply.lang)

    def video(
        self,
        path: str | Path | bytes,
        fps: float = 4.0,
        *,
        limits: VideoLimits | None = None,
        on_frame: Callable[[FrameResult], None] | None = None,
    ) -> VideoReport:
        """A clip's faces tracked over time, sampled `fps` times a second (app/video.py's limits:
        by default at most 10 minutes are analysed; `report.truncated` says when the clip was cut).
        Raises `app.video.VideoError` (`.status`, `.code`, `.message`) for what is not a readable video."""
        with open_video(path, limits) as clip:
            return analyze_video(
                clip,
                detector=self.detector,
                models=self.models,
                model=self.model,
                fps=fps,
                full_every=full_every_at(fps, int(self.config["TRACK_FULL_EVERY"])),
                source=None if isinstance(path, bytes) else str(path),
                on_frame=on_frame,
            )


def _as_rgb(image: np.ndarray) -> np.ndarray:
    """An array as the pipeline takes it: uint8 RGB, H x W x 3 (grey and RGBA are converted)."""
    a = np.asarray(image)
    if a.dtype != np.uint8:
        if np.issubdtype(a.dtype, np.floating) and a.size and float(np.nanmax(a)) <= 1.0:
            a = a * 255.0
        a = np.clip(np.nan_to_num(a), 0, 255).astype(np.uint8)
    if a.ndim == 2:
        a = np.repeat(a[..., None], 3, axis=2)
    if a.ndim != 3 or a.shape[2] not in (1, 3, 4):
        raise ValueError(f"expected an RGB image of shape (H, W, 3), got {image.shape}")
    if a.shape[2] == 1:
        a = np.repeat(a, 3, axis=2)
    return np.ascontiguousarray(a[..., :3])

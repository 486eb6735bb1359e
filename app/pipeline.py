"""Where a face becomes a label: an RGB image -> its faces, each with the emotion a model reads in it.

`analyze` is the one place the steps meet: detect the faces (app/faces.py), then classify all of them
in one batch (app/emotion.py: crop, preprocess, model, test-time augmentation). It knows nothing of
Flask or HTTP, so the route (app/api.py), the benchmarks and any script call the same function:

    from app.emotion import ModelRegistry
    from app.faces import FaceDetector
    from app.pipeline import analyze

    results = analyze(rgb, detector=FaceDetector(), models=ModelRegistry("models"))
    results[0].emotion, results[0].scores, results[0].face.box
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import numpy as np

from .emotion import ModelRegistry
from .faces import FaceDetector
from .tracking import Located, TrackHint, locate


@dataclass(frozen=True)
class Face:
    """A face the detector found, in pixels of the analysed image."""

    box: list[int]  # [x, y, w, h], clipped to the image
    confidence: float  # the detector's, rounded to 4 places
    keypoints: dict[str, list[int]]  # left_eye, right_eye, nose, mouth_left, mouth_right -> [x, y]
    track: int | None = None  # live frames: the face's track id (app/tracking.py), kept across frames


@dataclass(frozen=True)
class FaceResult:
    """One face and what the model reads in it."""

    face: Face
    emotion: str  # the top label
    scores: dict[str, float]  # every class of the model's card, in card order, summing to 1

    @property
    def score(self) -> float:
        """The top label's score."""
        return self.scores[self.emotion]


def analyze(
    image: np.ndarray,
    *,
    detector: FaceDetector,
    models: ModelRegistry,
    model: str | None = None,
    min_face: int | None = None,
    timings: dict[str, float] | None = None,
) -> list[FaceResult]:
    """The faces of `image` (RGB, uint8, H x W x 3), largest first, each with its emotion.

    `model` names a card of `models` (None: its default). `min_face` raises the smallest face looked
    for, in pixels of `image` (faster on webcam frames, where faces are large). When `timings` is given
    it receives the seconds spent in "detect" and "classify". Raises KeyError for a model without a
    card and `app.emotion.ModelUnavailable` for one whose file would not load. No face: [] (and no
    model is run)."""
    t0 = time.perf_counter()
    found = detector.detect(image, min_face=min_face)
    t1 = time.perf_counter()
    if timings is not None:
        timings["detect"] = t1 - t0
    return classify(image, found, models=models, model=model, timings=timings)


def analyze_live(
    image: np.ndarray,
    hint: TrackHint | None,
    *,
    detector: FaceDetector,
    models: ModelRegistry,
    model: str | None = None,
    min_face: int | None = None,
    full_every: int = 8,
    max_age_ms: float = 1000.0,
    timings: dict[str, float] | None = None,
) -> tuple[list[FaceResult], Located]:
    """`analyze` for a frame of a live stream: the faces of the previous frame (`hint`, from the
    client) are re-found around their boxes instead of searched for anew, when app/tracking.py's rules
    allow; every face carries a track id. Returns the results and how the faces were found."""
    t0 = time.perf_counter()
    located = locate(detector, image, hint, min_face=min_face, full_every=full_every, max_age_ms=max_age_ms)
    if timings is not None:
        timings["detect"] = time.perf_counter() - t0
    return classify(image, located.faces, models=models, model=model, timings=timings), located


def classify(
    image: np.ndarray,
    found: list[dict],
    *,
    models: ModelRegistry,
    model: str | None = None,
    timings: dict[str, float] | None = None,
) -> list[FaceResult]:
    """The emotion of each found face (FaceDetector's dicts, largest first) of `image`, in batches; only
    the largest `models.max_faces(model)` are kept (issue 24: an image's classification is bounded)."""
    t0 = time.perf_counter()
    found = found[: models.max_faces(model)]
    scored = models.classify(image, found, model) if found else []
    if timings is not None:
        timings["classify"] = time.perf_counter() - t0
    return [
        FaceResult(
            face=Face(box=f["box"], confidence=f["confidence"], keypoints=f["keypoints"], track=f.get("track")),
            emotion=r["emotion"],
            scores=r["scores"],
        )
        for f, r in zip(found, scored, strict=True)
    ]


def rescale(results: list[FaceResult], scale: tuple[float, float], width: int, height: int) -> list[FaceResult]:
    """Boxes and landmarks found on a reduced decode (a large JPEG, app/imaging.py) in pixels of the
    uploaded image: `scale` is (x, y) uploaded pixels per analysed pixel, the box is clipped to
    `width` x `height`."""
    sx, sy = scale
    if (sx, sy) == (1.0, 1.0):
        return results
    out = []
    for r in results:
        x, y, w, h = r.face.box
        x0, y0 = min(width - 1, int(round(x * sx))), min(height - 1, int(round(y * sy)))
        x1, y1 = min(width, int(round((x + w) * sx))), min(height, int(round((y + h) * sy)))
        keypoints = {
            name: [min(width - 1, int(round(px * sx))), min(height - 1, int(round(py * sy)))]
            for name, (px, py) in r.face.keypoints.items()
        }
        out.append(
            replace(r, face=replace(r.face, box=[x0, y0, max(1, x1 - x0), max(1, y1 - y0)], keypoints=keypoints))
        )
    return out

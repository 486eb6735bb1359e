"""Face detection with MTCNN: an RGB image -> boxes, confidences and five landmarks per face.

The detector is built once per process (its weights ship inside the mtcnn wheel). Large photos are
shrunk for detection and the boxes mapped back to the original pixels, so a 12-megapixel phone photo
costs about what a 1024-pixel one does.

The networks run on ONNX Runtime (app/mtcnn_ort.py), 3-5x faster than the mtcnn package's own
TensorFlow detector, whose outputs on the test photos are kept as golden files
(tests/app/mtcnn_golden.json, checked by tests/app/test_mtcnn_ort.py); TensorFlow left the project
in issue 17.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

import numpy as np
from flask import current_app

from .imaging import downscale

if TYPE_CHECKING:
    from .mtcnn_ort import MtcnnOrt

log = logging.getLogger(__name__)

MIN_SIDE = 20  # MTCNN's smallest face; a smaller image cannot hold one

# mtcnn 1.0 sizes its image pyramid as if it started at scale 1, whatever min_face_size says: with
# min_face_size above ~22 its last levels fall under PNet's 12 pixels, TensorFlow raises, and
# detect_faces answers "no face" for the whole image. So MTCNN always gets at most this, and a larger
# minimum face is had by shrinking the image instead (same pyramid, fewer pixels).
MTCNN_MIN_FACE = 20

# Pyramid step between scales (MTCNN's paper: 0.709). 0.6 finds the same faces on our test photos
# (tests/app/test_faces.py) with fewer levels: about 25% less detection time on a 640x480 webcam frame
# (docs/ROBUSTNESS.md).
DEFAULT_SCALE_FACTOR = 0.6


BACKENDS = ("onnx",)  # the mtcnn package's TensorFlow detector left with TensorFlow (issue 17)


def box_iou(a, b) -> float:
    """Intersection over union of two [x, y, w, h] boxes (0 when they do not touch)."""
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    inter = max(0, min(ax + aw, bx + bw) - max(ax, bx)) * max(0, min(ay + ah, by + bh) - max(ay, by))
    union = aw * ah + bw * bh - inter
    return inter / float(union) if union > 0 else 0.0


class FaceDetector:
    def __init__(
        self,
        min_confidence: float = 0.9,
        max_faces: int = 20,
        max_side: int = 1024,
        min_face_size: int = 20,
        scale_factor: float = DEFAULT_SCALE_FACTOR,
        backend: str = "onnx",
        threads: int = 2,
    ):
        self.min_confidence = float(min_confidence)
        self.max_faces = int(max_faces)
        self.max_side = int(max_side)
        self.min_face_size = int(min_face_size)
        self.scale_factor = float(scale_factor)
        if not 0.3 <= self.scale_factor <= 0.85:
            raise ValueError(f"DETECT_SCALE_FACTOR must be in [0.3, 0.85], got {scale_factor}")
        if backend not in BACKENDS:
            raise ValueError(f"DETECTOR_BACKEND must be one of {BACKENDS}, got {backend!r}")
        self.backend = backend
        self.threads = int(threads)
        self._mtcnn: MtcnnOrt | None = None
        self._lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        return self._mtcnn is not None

    def load(self):
        with self._lock:
            if self._mtcnn is None:
                from .mtcnn_ort import MtcnnOrt

                mtcnn = MtcnnOrt(threads=self.threads)
                # The first call builds the sessions' buffers; pay for it at start-up, not in a request.
                mtcnn.detect_faces(np.zeros((64, 64, 3), np.uint8))
                self._mtcnn = mtcnn
        return self._mtcnn

    def detect(self, rgb: np.ndarray, min_face: int | None = None) -> list[dict]:
        """Faces as `{"box": [x, y, w, h], "confidence": p, "keypoints": {name: [x, y]}}`, in original
        image pixels, clipped to the image, largest first, at most `max_faces`.

        `min_face` (pixels of `rgb`) raises the smallest face looked for above the configured one: a
        live webcam frame, where a face is large, detects several times faster that way."""
        h, w = rgb.shape[:2]
        if min(h, w) < MIN_SIDE:
            return []
        small, scale = downscale(rgb, self.max_side)
        wanted = max(self.min_face_size, int(min_face or 0) * scale)  # in pixels of `small`
        if wanted > MTCNN_MIN_FACE:  # a face of `wanted` pixels becomes MTCNN_MIN_FACE
            longest = max(small.shape[:2])
            small, extra = downscale(small, max(1, int(longest * MTCNN_MIN_FACE / wanted)))
            scale *= extra
        if min(small.shape[:2]) < MIN_SIDE:
            return []
        raw = self.load().detect_faces(small, min_face_size=min(wanted, MTCNN_MIN_FACE), scale_factor=self.scale_factor)
        faces = [f for f in (self._to_image(face, scale, w, h) for face in raw or []) if f is not None]
        faces.sort(key=lambda f: f["box"][2] * f["box"][3], reverse=True)
        return faces[: self.max_faces]

    def refind(self, rgb: np.ndarray, boxes: list[list[float]], passes: int = 2) -> list[dict | None]:
        """Faces known from an earlier frame, found again around their boxes by MTCNN's last network
        alone (app/tracking.py decides when): one entry per box, in order, in `detect`'s shape, or None
        where no face at least `min_confidence` sure is there any more. Boxes are [x, y, w, h] in pixels
        of `rgb`; the image is shrunk as `detect` shrinks it, so both see the same pixels."""
        h, w = rgb.shape[:2]
        if not boxes or min(h, w) < MIN_SIDE:
            return [None] * len(boxes)
        small, scale = downscale(rgb, self.max_side)
        found = self.load().refind(small, [[v * scale for v in b] for b in boxes], passes=passes)
        return [self._to_image(face, scale, w, h) for face in found]

    def _to_image(self, face: dict, scale: float, w: int, h: int) -> dict | None:
        """A raw MTCNN face in pixels of the analysed image, clipped; None under `min_confidence` or
        when less than 2 pixels of it are inside the image."""
        conf = float(face.get("confidence", 0.0))
        if conf < self.min_confidence:
            return None
        bx, by, bw, bh = (float(v) / scale for v in face["box"])
        x0, y0 = max(0, int(round(bx))), max(0, int(round(by)))
        x1, y1 = min(w, int(round(bx + bw))), min(h, int(round(by + bh)))
        if x1 - x0 < 2 or y1 - y0 < 2:
            return None
        keypoints = {
            name: [
                int(round(min(max(float(p[0]) / scale, 0), w - 1))),
                int(round(min(max(float(p[1]) / scale, 0), h - 1))),
            ]
            for name, p in (face.get("keypoints") or {}).items()
        }
        return {"box": [x0, y0, x1 - x0, y1 - y0], "confidence": round(conf, 4), "keypoints": keypoints}


def init_app(app) -> FaceDetector:
    detector = FaceDetector(
        min_confidence=app.config["MIN_FACE_CONFIDENCE"],
        max_faces=app.config["MAX_FACES"],
        max_side=app.config["DETECT_MAX_SIDE"],
        min_face_size=app.config["MIN_FACE_SIZE"],
        scale_factor=app.config.get("DETECT_SCALE_FACTOR", DEFAULT_SCALE_FACTOR),
        backend=app.config.get("DETECTOR_BACKEND", "onnx"),
        threads=app.config.get("DETECT_THREADS", 2),
    )
    app.extensions["faces"] = detector
    return detector


def get_detector() -> FaceDetector:
    """The app's face detector (built by `init_app`)."""
    return current_app.extensions["faces"]

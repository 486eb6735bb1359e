"""The benchmark photos, made from scikit-image's bundled astronaut photo (a real face)."""
from __future__ import annotations

import io

import numpy as np
from PIL import Image


def _astronaut() -> np.ndarray:
    from skimage import data
    return data.astronaut()


def webcam_640x480() -> np.ndarray:
    """One face in a 640x480 frame, framed like a laptop webcam (head and shoulders)."""
    a = _astronaut()[0:384, 40:552]                  # 512x384 around the face
    return np.asarray(Image.fromarray(a).resize((640, 480), Image.BILINEAR))


def photo_1280x960_three_faces() -> np.ndarray:
    """Three faces of different sizes and sides on a 1280x960 canvas."""
    a = _astronaut()
    canvas = np.full((960, 1280, 3), 235, np.uint8)
    canvas[40:552, 20:532] = a
    canvas[40:552, 560:1072] = a[:, ::-1]
    small = np.asarray(Image.fromarray(a).resize((320, 320), Image.BILINEAR))
    canvas[600:920, 900:1220] = small
    return canvas


def jpeg(rgb: np.ndarray, quality: int = 85) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=quality)
    return buf.getvalue()


CASES = {
    "a_webcam_640x480_1face": (webcam_640x480, 1),
    "b_photo_1280x960_3faces": (photo_1280x960_three_faces, 3),
}

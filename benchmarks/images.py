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
    a = _astronaut()[0:384, 40:552]  # 512x384 around the face
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


def ondevice_parity_set(n_lfw: int = 90) -> dict[str, np.ndarray]:
    """Photos for comparing the server pipeline with the browser's (issue 18): real faces of other
    people (scikit-image's LFW crops, upscaled and pasted into photos without faces, turned by 0-30
    degrees like a tilted head, as benchmarks/tilt.py makes them), the astronaut photo alone, tilted,
    several times in one photo, and in a webcam frame. Named, RGB uint8."""
    import cv2
    from skimage import data

    from benchmarks.calm import lfw_faces
    from benchmarks.tilt import make_frame

    rng = np.random.default_rng(18)
    backgrounds = [data.coffee(), data.chelsea(), data.rocket(), data.immunohistochemistry()]
    angles = (0, 10, -15, 20, -25, 30)
    out = {}
    for i, face in enumerate(lfw_faces()[:n_lfw]):
        face48 = cv2.resize(face, (48, 48), interpolation=cv2.INTER_CUBIC)
        frame, _ = make_frame(face48, backgrounds[i % len(backgrounds)], angles[i % len(angles)], rng)
        out[f"lfw{i:03d}"] = np.repeat(frame[..., None], 3, axis=2) if frame.ndim == 2 else frame
    a = _astronaut()
    out["astronaut"] = np.ascontiguousarray(a)
    for angle in (-20, 15, 35):
        m = cv2.getRotationMatrix2D((230.0, 120.0), angle, 1.0)
        out[f"astronaut_tilt{angle}"] = cv2.warpAffine(
            a, m, (512, 512), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT
        )
    out["three_faces"] = photo_1280x960_three_faces()
    out["webcam"] = webcam_640x480()
    return out

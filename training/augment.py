"""Train-time augmentation on uint8 faces, in numpy/OpenCV inside the input pipeline.

Random affine warps as in-model Keras layers (RandomRotation/Zoom/Translation) cost as much as a
small CNN's whole step on CPU; one cv2.warpAffine per 48x48 face costs microseconds, and the same
code serves every Keras backend.
"""
from __future__ import annotations

import cv2
import numpy as np


def random_affine(face: np.ndarray, rng: np.random.Generator, max_rotate=12.0, max_zoom=0.12,
                  max_shift=0.10) -> np.ndarray:
    h, w = face.shape[:2]
    angle = rng.uniform(-max_rotate, max_rotate)
    scale = 1.0 + rng.uniform(-max_zoom, max_zoom)
    m = cv2.getRotationMatrix2D((w / 2.0, h / 2.0), angle, scale)
    m[:, 2] += rng.uniform(-max_shift, max_shift, size=2) * (w, h)
    return cv2.warpAffine(face, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def random_erase(face: np.ndarray, rng: np.random.Generator, max_frac=0.25) -> np.ndarray:
    """Blank a random rectangle, so the net cannot rely on one facial region (occlusion robustness)."""
    h, w = face.shape[:2]
    eh, ew = int(h * rng.uniform(0.1, max_frac)), int(w * rng.uniform(0.1, max_frac))
    y, x = rng.integers(0, h - eh + 1), rng.integers(0, w - ew + 1)
    face = face.copy()
    face[y:y + eh, x:x + ew] = rng.integers(0, 256)
    return face


def augment_batch(faces: np.ndarray, rng: np.random.Generator, erase_prob=0.25) -> np.ndarray:
    """Flip, affine-warp, jitter brightness/contrast and sometimes erase a patch, per face."""
    out = np.empty_like(faces)
    for i, face in enumerate(faces):
        if rng.random() < 0.5:
            face = face[:, ::-1]
        face = random_affine(np.ascontiguousarray(face), rng)
        alpha, beta = rng.uniform(0.8, 1.2), rng.uniform(-20, 20)
        face = cv2.convertScaleAbs(face, alpha=alpha, beta=beta)
        if rng.random() < erase_prob:
            face = random_erase(face, rng)
        out[i] = face
    return out

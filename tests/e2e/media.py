"""Test media made at test time from scikit-image's astronaut photo (a real, public-domain face).

- `write_face_jpeg`: the photo as a JPEG, for the upload tests.
- `write_face_y4m`: a short YUV4MPEG2 (4:2:0) clip of the same face moving slightly, for Chromium's
  fake camera (`--use-file-for-fake-video-capture=<file>.y4m`).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from PIL import Image

FRAME_W, FRAME_H = 640, 480
# Where the face is in the astronaut photo (x, y, w, h), from a Haar cascade run: for sanity checks.
ASTRONAUT_FACE_BOX = (177, 66, 95, 95)


def astronaut() -> np.ndarray:
    try:
        from skimage import data
    except ImportError as exc:  # pragma: no cover - a set-up problem, say how to fix it
        raise RuntimeError("scikit-image is needed for the e2e media: .venv/bin/pip install scikit-image") from exc
    return np.ascontiguousarray(data.astronaut()[..., :3])


def write_face_jpeg(path: Path) -> Path:
    Image.fromarray(astronaut()).save(path, "JPEG", quality=92)
    return path


def _frames(n: int) -> list[np.ndarray]:
    """640x480 RGB frames: the 512x512 photo padded left/right, cropped at the bottom, drifting a little."""
    src = astronaut()
    margin = 16
    canvas = np.empty((FRAME_H + 2 * margin, FRAME_W + 2 * margin, 3), np.uint8)
    canvas[:] = (60, 62, 70)
    x0 = margin + (FRAME_W - src.shape[1]) // 2
    canvas[margin : margin + FRAME_H, x0 : x0 + src.shape[1]] = src[:FRAME_H]
    frames = []
    for i in range(n):
        a = 2 * math.pi * i / n
        dx, dy = int(round(8 * math.sin(a))), int(round(5 * math.cos(a)))
        frames.append(canvas[margin + dy : margin + dy + FRAME_H, margin + dx : margin + dx + FRAME_W])
    return frames


def _rgb_to_yuv420(rgb: np.ndarray) -> bytes:
    """BT.601 limited range, chroma averaged over 2x2 blocks (what 4:2:0 y4m readers expect)."""
    f = rgb.astype(np.float32)
    r, g, b = f[..., 0], f[..., 1], f[..., 2]
    y = 16 + 0.257 * r + 0.504 * g + 0.098 * b
    u = 128 - 0.148 * r - 0.291 * g + 0.439 * b
    v = 128 + 0.439 * r - 0.368 * g - 0.071 * b

    def sub(c: np.ndarray) -> np.ndarray:
        return c.reshape(c.shape[0] // 2, 2, c.shape[1] // 2, 2).mean(axis=(1, 3))

    planes = [y, sub(u), sub(v)]
    return b"".join(np.clip(np.round(p), 0, 255).astype(np.uint8).tobytes() for p in planes)


def write_face_y4m(path: Path, n_frames: int = 30, fps: int = 15) -> Path:
    with open(path, "wb") as fh:
        fh.write(f"YUV4MPEG2 W{FRAME_W} H{FRAME_H} F{fps}:1 Ip A1:1 C420jpeg\n".encode("ascii"))
        for frame in _frames(n_frames):
            fh.write(b"FRAME\n")
            fh.write(_rgb_to_yuv420(frame))
    return path

"""The one definition of how a face becomes model input (docs/ARCHITECTURE.md, contract 1).

Training applies it to FER images (already 48x48 grey face crops); the app applies it to faces that
MTCNN found in a full photo. Both go through `crop_face` (app only) and `preprocess_faces` (both), and
both predict through `predict_with_tta`, so a model is served with the same test-time procedure it
was measured with. Only numpy and OpenCV here: the app imports this module and must not pull in the
rest of `training/`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import cv2
import numpy as np

# The input spec a model card carries under "input". FER faces are 48x48 grey, scaled to [0, 1].
DEFAULT_INPUT = {"size": 48, "channels": 1, "scale": "unit"}

# FER-2013 crops are tight: the face fills the frame, chin near the bottom edge. An MTCNN box grown
# by 10% around its centre frames a face the same way (checked side by side with FER images, at
# margins 0.9-1.25); wider crops show hair and shoulders the model never saw in training.
FACE_MARGIN = 1.1

SCALES = ("unit", "centered", "caffe_bgr")
# 0-255 minus these per-channel means (B, G, R order): how VGGFace-family and FaceRes networks take input.
CAFFE_BGR_MEANS = (103.939, 116.779, 123.68)


def input_spec(spec: Mapping | None = None) -> dict:
    """Fill in defaults and validate an input spec from a model card."""
    merged: dict[str, Any] = dict(DEFAULT_INPUT)
    merged.update(spec or {})
    if merged["channels"] not in (1, 3):
        raise ValueError(f"input channels must be 1 or 3, got {merged['channels']!r}")
    if merged["scale"] not in SCALES:
        raise ValueError(f"input scale must be one of {SCALES}, got {merged['scale']!r}")
    merged["size"] = int(merged["size"])
    if merged["scale"] == "caffe_bgr" and merged["channels"] != 3:
        raise ValueError("scale 'caffe_bgr' needs 3 channels")
    if merged.get("source_size") is not None:
        merged["source_size"] = int(merged["source_size"])
        if not 8 <= merged["source_size"] <= merged["size"]:
            raise ValueError(f"source_size must lie in [8, size], got {merged['source_size']}")
    return merged


# A tilted head is turned upright before it is cropped (the detector's eye positions give the tilt):
# FER faces are upright, and tilt costs accuracy: fer2013_mobilenet112 on PublicTest faces turned by
# 0 / 10 / 20 / 30 degrees scored 69.9 / 68.4 / 66.1 / 62.8% (benchmarks/tilt.py measures the whole
# path, detector included). Below ALIGN_MIN_DEGREES the crop is left as it is: FER faces are upright
# only roughly (MTCNN reads their eye lines at a median 4 degrees, 90th percentile 14), the models
# learnt those tilts, and levelling them cost accuracy on upright faces (benchmarks/tilt.py frames,
# PublicTest: threshold 3 / 6 / 10 degrees gave 65.9 / 66.3 / 66.7% upright, 65.7 / 65.7 / 65.5% at
# ±10 degrees, 64.4% never aligned). Beyond ALIGN_MAX_DEGREES eye positions are more likely wrong (a
# profile, a mislabelled landmark) than the head that far over.
ALIGN_MIN_DEGREES = 10.0
ALIGN_MAX_DEGREES = 50.0


def eye_roll(keypoints: Mapping | None) -> float | None:
    """Degrees the line through the eyes is turned from level in the image (positive: the eye on the
    image's right is lower), from a detector's `left_eye` / `right_eye` points; None without them."""
    if keypoints is None:
        return None
    try:
        a, b = (tuple(float(v) for v in keypoints[k]) for k in ("left_eye", "right_eye"))
    except (KeyError, TypeError, ValueError):
        return None
    (lx, ly), (rx, ry) = sorted((a[:2], b[:2]))  # by x: whichever the detector called left
    if rx - lx <= 0:
        return None
    return float(np.degrees(np.arctan2(ry - ly, rx - lx)))


def crop_face(
    image: np.ndarray, box: Sequence[float], margin: float = FACE_MARGIN, keypoints: Mapping | None = None
) -> np.ndarray:
    """Cut a square crop around a detected face box `[x, y, w, h]` (pixels).

    The square is `margin * max(w, h)` wide, centred on the box; parts outside the image are filled by
    replicating the border so a face at the edge keeps its proportions. With the detector's
    `keypoints`, a face whose eye line is tilted by ALIGN_MIN_DEGREES..ALIGN_MAX_DEGREES is turned
    upright about the box centre (one affine warp straight into the square).
    """
    x, y, w, h = (float(v) for v in box)
    side = max(w, h) * margin
    cx, cy = x + w / 2.0, y + h / 2.0
    x0, y0 = int(round(cx - side / 2.0)), int(round(cy - side / 2.0))
    s = max(1, int(round(side)))
    ih, iw = image.shape[:2]
    if not (x0 < iw and y0 < ih and x0 + s > 0 and y0 + s > 0):
        raise ValueError(f"face box {list(box)} lies outside the {iw}x{ih} image")
    roll = eye_roll(keypoints) if keypoints else None
    if roll is not None and ALIGN_MIN_DEGREES <= abs(roll) <= ALIGN_MAX_DEGREES:
        m = np.asarray(
            cv2.getRotationMatrix2D((cx, cy), roll, 1.0), np.float64
        )  # counter-clockwise by `roll`: eyes level
        m[:, 2] += (s / 2.0 - cx, s / 2.0 - cy)  # the box centre to the square's centre
        return cv2.warpAffine(
            np.ascontiguousarray(image), m, (s, s), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
        )
    pad_l, pad_t = max(0, -x0), max(0, -y0)
    pad_r, pad_b = max(0, x0 + s - iw), max(0, y0 + s - ih)
    crop = image[max(0, y0) : min(ih, y0 + s), max(0, x0) : min(iw, x0 + s)]
    if pad_l or pad_t or pad_r or pad_b:
        crop = cv2.copyMakeBorder(crop, pad_t, pad_b, pad_l, pad_r, cv2.BORDER_REPLICATE)
    return crop


def to_grey(face: np.ndarray) -> np.ndarray:
    """RGB(A) or grey uint8 -> grey uint8 (H, W)."""
    if face.ndim == 2:
        return face
    if face.ndim == 3 and face.shape[2] == 1:
        return face[:, :, 0]
    if face.ndim == 3 and face.shape[2] == 4:
        face = face[:, :, :3]
    if face.ndim == 3 and face.shape[2] == 3:
        return cv2.cvtColor(np.ascontiguousarray(face), cv2.COLOR_RGB2GRAY)
    raise ValueError(f"a face image must be (H, W), (H, W, 1), (H, W, 3) or (H, W, 4), got {face.shape}")


def preprocess_faces(faces: Sequence[np.ndarray] | np.ndarray, spec: Mapping | None = None) -> np.ndarray:
    """Face crops (uint8, grey or RGB, any size) -> float32 batch `(N, size, size, channels)`.

    Faces are converted to grey first even for 3-channel models: FER is grey, so a colour model
    trained on it sees grey replicated into three channels, here as in training. With `source_size`
    (a model trained on 48x48 FER faces upsampled to `size`) a face is first brought to
    `source_size`, so a sharp webcam face reaches the model as blurred as the faces it learnt from.
    """
    spec = input_spec(spec)
    size = spec["size"]
    source = spec.get("source_size")
    out = np.empty((len(faces), size, size, spec["channels"]), np.float32)
    for i, face in enumerate(faces):
        grey = to_grey(np.asarray(face))
        if grey.dtype != np.uint8:
            raise ValueError(f"face {i} must be uint8, got {grey.dtype}")
        if source and grey.shape != (source, source):
            interp = cv2.INTER_AREA if grey.shape[0] > source else cv2.INTER_LINEAR
            grey = cv2.resize(grey, (source, source), interpolation=interp)
        if grey.shape != (size, size):
            interp = cv2.INTER_AREA if grey.shape[0] > size else cv2.INTER_LINEAR
            grey = cv2.resize(grey, (size, size), interpolation=interp)
        out[i] = grey[:, :, None]  # broadcasts into 1 or 3 channels
    out /= 255.0
    if spec["scale"] == "centered":
        out = (out - 0.5) * 2.0
    elif spec["scale"] == "caffe_bgr":
        out *= 255.0
        out -= np.asarray(CAFFE_BGR_MEANS, np.float32)
    return out


def tta_views(batch: np.ndarray, tta: Sequence[str] = ()) -> list[np.ndarray]:
    """The views a test-time procedure looks at: the batch itself, plus its mirror for "flip"."""
    unknown = set(tta) - {"flip"}
    if unknown:
        raise ValueError(f"unknown test-time augmentation {sorted(unknown)}; known: ['flip']")
    views = [batch]
    if "flip" in tta:
        views.append(batch[:, :, ::-1, :])
    return views


def predict_with_tta(
    predict: Callable[[np.ndarray], np.ndarray], batch: np.ndarray, tta: Sequence[str] = ()
) -> np.ndarray:
    """Class probabilities averaged over the test-time views, in one call to `predict`."""
    views = tta_views(batch, tta)
    n = len(batch)
    probs = np.asarray(predict(np.concatenate(views, axis=0)), np.float64)
    return np.mean([probs[i * n : (i + 1) * n] for i in range(len(views))], axis=0)


def combine_members(
    member_probs: Sequence[np.ndarray],
    member_classes: Sequence[Sequence[str]],
    weights: Sequence[float],
    classes: Sequence[str],
) -> np.ndarray:
    """An ensemble's probabilities: the weighted mean of its members' probabilities.

    Members are matched to the ensemble's `classes` by label name, so a FER+ member (8 classes) can
    vote in a FER-2013 ensemble (7 classes): its probability for a label the ensemble lacks
    (contempt) is dropped and the rest renormalised.
    """
    if not member_probs:
        raise ValueError("an ensemble needs at least one member")
    total = np.zeros((len(member_probs[0]), len(classes)), np.float64)
    for probs, names, w in zip(member_probs, member_classes, weights, strict=True):
        probs = np.asarray(probs, np.float64)
        mapped = np.zeros_like(total)
        for j, label in enumerate(classes):
            if label in names:
                mapped[:, j] = probs[:, list(names).index(label)]
        mapped /= np.maximum(mapped.sum(axis=1, keepdims=True), 1e-12)
        total += float(w) * mapped
    return total / max(float(sum(weights)), 1e-12)

"""Tilted heads: the whole served path (detector -> crop -> default model) on faces turned by 0-30 degrees,
with the crop turned upright from the detector's eye positions (what the app does) and without.

Each of the first N FER-2013 PublicTest faces with contrast is upscaled to 150 px and pasted on a
320x320 crop of a scikit-image photo (no human faces); the whole frame is then turned about the face
centre, as a head or camera roll turns a face and its surroundings together, by +angle or -angle
(alternating). A face counts as found when a detection overlaps the turned face's bounding box with
IoU >= 0.3; accuracy is over the faces found at that angle, the same detections scored both ways.
PublicTest is the validation split: alignment is a choice, made here, not on the test split.
"""

from __future__ import annotations

import numpy as np

from app.faces import box_iou as iou

ANGLES = (0, 10, 20, 30)
FACE = 150
FRAME = 320


def make_frame(face48: np.ndarray, background: np.ndarray, angle: float, rng) -> tuple[np.ndarray, tuple]:
    """(frame, the turned face's bounding box [x, y, w, h])."""
    import cv2

    h, w = background.shape[:2]
    side = int(min(h, w) * rng.uniform(0.5, 1.0))
    y0, x0 = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
    frame = cv2.resize(background[y0 : y0 + side, x0 : x0 + side], (FRAME, FRAME), interpolation=cv2.INTER_AREA)
    x, y = (FRAME - FACE) // 2 + int(rng.integers(-30, 31)), (FRAME - FACE) // 2 + int(rng.integers(-30, 31))
    frame[y : y + FACE, x : x + FACE] = cv2.resize(face48, (FACE, FACE), interpolation=cv2.INTER_CUBIC)[..., None]
    cx, cy = x + FACE / 2.0, y + FACE / 2.0
    m = cv2.getRotationMatrix2D((cx, cy), angle, 1.0)
    frame = cv2.warpAffine(frame, m, (FRAME, FRAME), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    a = np.radians(angle)
    span = FACE * (abs(np.cos(a)) + abs(np.sin(a)))
    return np.ascontiguousarray(frame), (cx - span / 2, cy - span / 2, span, span)


def run(args) -> dict:
    from app.emotion import ModelRegistry
    from app.faces import FaceDetector
    from training.data import default_data_dir, fer2013_csv, read_fer2013_csv

    from .detector import _backgrounds

    data = read_fer2013_csv(fer2013_csv(default_data_dir()), cache_dir="cache")
    pub = data.usage == "PublicTest"
    faces, labels = data.images[pub], data.labels[pub]
    keep = faces.reshape(len(faces), -1).std(axis=1) > 20  # no blank or washed-out images
    faces, labels = faces[keep][: args.tilt_faces], labels[keep][: args.tilt_faces]
    backgrounds = _backgrounds()
    det = FaceDetector()
    det.load()
    models = ModelRegistry("models")
    classes = list(models.get().classes)
    rows = []
    for angle in ANGLES:
        rng = np.random.default_rng(angle)
        found, right = 0, {"aligned": 0, "not_aligned": 0}
        for i, (face, label) in enumerate(zip(faces, labels, strict=True)):
            signed = angle if i % 2 == 0 else -angle
            frame, truth = make_frame(face, backgrounds[i % len(backgrounds)], signed, rng)
            dets = [d for d in det.detect(frame) if iou(d["box"], truth) >= 0.3]
            if not dets:
                continue
            d = max(dets, key=lambda d: iou(d["box"], truth))
            found += 1
            for how, dd in (("aligned", d), ("not_aligned", {**d, "keypoints": None})):
                right[how] += int(classes.index(models.classify(frame, [dd])[0]["emotion"]) == label)
        rows.append(
            {
                "angle": angle,
                "faces": len(faces),
                "found": found,
                **{f"accuracy_{k}": round(v / max(found, 1), 4) for k, v in right.items()},
            }
        )
    return {"model": models.default, "faces": len(faces), "face_px": FACE, "frame_px": FRAME, "rows": rows}


def markdown(res: dict) -> str:
    lines = [
        f"The app's detector and default model (`{res['model']}`) on {res['faces']} FER-2013 PublicTest "
        f"faces, each upscaled to {res['face_px']} px in a {res['frame_px']}x{res['frame_px']} photo "
        "and turned with it by ±angle. Accuracy over the faces found, the same detections scored "
        "with the crop turned upright from the eye positions (the app) and without.",
        "",
        "| angle | found | accuracy, aligned (served) | accuracy, not aligned | gain |",
        "|---|---|---|---|---|",
    ]
    for r in res["rows"]:
        gain = (r["accuracy_aligned"] - r["accuracy_not_aligned"]) * 100
        lines.append(
            f"| ±{r['angle']}° | {r['found']} / {r['faces']} | {r['accuracy_aligned'] * 100:.2f}% | "
            f"{r['accuracy_not_aligned'] * 100:.2f}% | {gain:+.2f} |"
        )
    return "\n".join(lines)

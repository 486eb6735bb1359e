"""Face detection quality and speed of the app's MTCNN on ONNX Runtime.

Until issue 17 it was measured against the mtcnn package's own TensorFlow detector; TensorFlow has left
the project, so the run measures the one backend (app.faces.BACKENDS), and the comparison recorded in
docs/BENCHMARKS.md stays as it was measured. The detector runs the same MTCNN weights through the app's own `FaceDetector` (same settings as the
served app: pyramid step 0.6, confidence >= 0.9). The test frames are 640x480 scenes from
scikit-image's bundled photos (coffee, cat, rocket, ... : no human faces) with 1-3 real faces from
FER-2013 PublicTest pasted in at random sizes (56-220 pixels) and places, so every face has a known box.
Reported per backend: recall (a pasted face is found when a box overlaps it with IoU >= 0.3), false
detections per frame, median time per frame; and how well the two backends agree with each other
(the same faces, boxes with IoU >= 0.5).
"""

from __future__ import annotations

import numpy as np

from app.faces import box_iou as iou

from .common import percentiles, timed


def _backgrounds() -> list[np.ndarray]:
    from skimage import color, data

    out = []
    for name in (
        "coffee",
        "chelsea",
        "rocket",
        "immunohistochemistry",
        "hubble_deep_field",
        "cat",
        "retina",
        "colorwheel",
        "brick",
        "grass",
        "gravel",
        "page",
    ):
        img = getattr(data, name)()
        img = color.gray2rgb(img) if img.ndim == 2 else img[..., :3]
        out.append(np.ascontiguousarray(img.astype(np.uint8)))
    return out


def make_frames(faces: np.ndarray, n_frames: int, seed: int = 0):
    """(frame, [boxes]) pairs: FER faces (48x48 grey) pasted onto 640x480 crops of real photos."""
    import cv2

    rng = np.random.default_rng(seed)
    backgrounds = _backgrounds()
    frames, k = [], 0
    for _ in range(n_frames):
        bg = backgrounds[rng.integers(len(backgrounds))]
        h, w = bg.shape[:2]
        side = int(min(h, w * 0.75) * rng.uniform(0.6, 1.0))
        y0, x0 = rng.integers(0, h - side + 1), rng.integers(0, w - int(side / 0.75) + 1)
        frame = cv2.resize(bg[y0 : y0 + side, x0 : x0 + int(side / 0.75)], (640, 480), interpolation=cv2.INTER_AREA)
        boxes = []
        for _ in range(int(rng.integers(1, 4))):
            size = int(rng.integers(56, 221))
            for _try in range(20):
                x, y = int(rng.integers(0, 640 - size)), int(rng.integers(0, 480 - size))
                if all(iou((x, y, size, size), b) == 0 for b in boxes):
                    break
            else:
                continue
            face = cv2.resize(faces[k % len(faces)], (size, size), interpolation=cv2.INTER_CUBIC)
            k += 1
            frame[y : y + size, x : x + size] = face[..., None]
            boxes.append((x, y, size, size))
        frames.append((np.ascontiguousarray(frame), boxes))
    return frames


def _match(found: list, truth: list, threshold: float) -> tuple[int, int]:
    """(true positives, false detections), each truth box matched at most once."""
    used, tp = set(), 0
    for f in found:
        best = max(range(len(truth)), key=lambda i: iou(f, truth[i]), default=None)
        if best is not None and best not in used and iou(f, truth[best]) >= threshold:
            used.add(best)
            tp += 1
    return tp, len(found) - tp


def run(args) -> dict:
    from app.faces import FaceDetector
    from training.data import default_data_dir, fer2013_csv, read_fer2013_csv

    data = read_fer2013_csv(fer2013_csv(default_data_dir()), cache_dir="cache")
    faces = data.images[data.usage == "PublicTest"]
    faces = faces[faces.reshape(len(faces), -1).std(axis=1) > 20]  # no blank or washed-out images
    faces = faces.reshape(len(faces), 48, 48).astype(np.uint8)
    frames = make_frames(faces, args.frames)
    n_truth = sum(len(b) for _, b in frames)
    out = {"frames": len(frames), "faces": n_truth, "backends": {}}
    found = {}
    from app.faces import BACKENDS

    for backend in BACKENDS:
        det = FaceDetector(backend=backend)
        det.load()
        boxes, tp, fp = [], 0, 0
        for frame, truth in frames:
            got = [f["box"] for f in det.detect(frame)]
            boxes.append(got)
            a, b = _match(got, truth, 0.3)
            tp, fp = tp + a, fp + b
        found[backend] = boxes
        sample = [f for f, _ in frames[:20]]
        it = iter(range(10**9))
        wall, cpu = timed(lambda det=det, sample=sample, it=it: det.detect(sample[next(it) % len(sample)]), repeat=60)
        out["backends"][backend] = {
            "recall": round(tp / n_truth, 4),
            "found": tp,
            "false_per_frame": round(fp / len(frames), 3),
            "false": fp,
            "ms_per_frame": percentiles(wall),
            "cpu_ms_per_frame": percentiles(cpu),
        }
    if "mtcnn" not in found:  # the TensorFlow reference left with TensorFlow (issue 17)
        return out
    same, ious, only = 0, [], {"onnx": 0, "mtcnn": 0}
    for a, b in zip(found["onnx"], found["mtcnn"], strict=True):
        for box in b:
            best = max((iou(box, x) for x in a), default=0.0)
            if best >= 0.5:
                same += 1
                ious.append(best)
            else:
                only["mtcnn"] += 1
        only["onnx"] += sum(1 for box in a if max((iou(box, x) for x in b), default=0.0) < 0.5)
    out["agreement"] = {
        "same_faces": same,
        "only_onnx": only["onnx"],
        "only_mtcnn": only["mtcnn"],
        "mean_iou_same": round(float(np.mean(ious)), 3) if ious else None,
    }
    return out


def markdown(res: dict) -> str:
    lines = [
        f"{res['frames']} frames of 640x480 with {res['faces']} pasted FER-2013 PublicTest faces "
        "(56-220 px) on scikit-image photos; the app's settings (pyramid step 0.6, confidence >= 0.9), "
        "no `min_face` hint.",
        "",
        "| backend | recall | false detections / frame | median ms / frame | p95 ms | CPU ms / frame |",
        "|---|---|---|---|---|---|",
    ]
    names = {"onnx": "`onnx` (app/mtcnn_ort.py, default)", "mtcnn": "`mtcnn` package 1.0 (TensorFlow)"}
    for name, r in res["backends"].items():
        lines.append(
            f"| {names.get(name, name)} | {r['recall']:.1%} ({r['found']}/{res['faces']}) | "
            f"{r['false_per_frame']} | **{r['ms_per_frame']['median']}** | {r['ms_per_frame']['p95']} | "
            f"{r['cpu_ms_per_frame']['median']} |"
        )
    a = res.get("agreement")
    if a is None:
        return "\n".join(lines)
    lines += [
        "",
        f"Agreement: {a['same_faces']} faces found by both with box IoU >= 0.5 (mean IoU "
        f"{a['mean_iou_same']}); {a['only_onnx']} only by `onnx`, {a['only_mtcnn']} only by `mtcnn`.",
    ]
    return "\n".join(lines)

"""MTCNN on ONNX Runtime: the mtcnn wheel's own trained weights, run without TensorFlow.

Why this exists: mtcnn 1.0 runs its three small networks (PNet, RNet, ONet) as eager Keras layers.
Profiled on a 640x480 webcam frame, most of its ~120 ms is Python and TensorFlow dispatch, not
arithmetic (RNet and ONet each cost ~25 ms for a handful of 24x24 / 48x48 crops). The same weights as
ONNX graphs on ONNX Runtime, with the cascade written in numpy and OpenCV, find the same faces
(tests/app/test_mtcnn_ort.py compares both on real photos) several times faster, and a serving process
that uses only ONNX models never has to import TensorFlow at all.

The graphs are built in memory from the weight files inside the installed mtcnn wheel (the wheel is
MIT-licensed and already a dependency), so nothing is downloaded, nothing new is shipped, and the
weights can never drift from the package's.

The cascade follows the MTCNN paper (Zhang et al., 2016) with the conventions of mtcnn 1.0, so its
boxes line up with that package's: images scaled to [-1, 1]; PNet's regression applied to its 12x12
windows at once; boxes made square before each refinement stage; crops sampled bilinearly with
out-of-image pixels mid-grey; NMS per pyramid level (IoU 0.5), across levels (0.7), after RNet
(0.7) and after ONet (0.7 over the smaller box).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import cv2
import numpy as np

KEYPOINTS = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")  # ONet's landmark order

# Keras layer layouts of mtcnn 1.0's networks, in the order their weights are stored:
# ("conv", filters, kernel) | ("prelu",) | ("pool", size, stride, "same"/"valid") | ("flatten",) |
# ("dense", units) | ("heads", (units, activation), ...)
_PNET = [
    ("conv", 3),
    ("prelu",),
    ("pool", 2, 2, "same"),
    ("conv", 3),
    ("prelu",),
    ("conv", 3),
    ("prelu",),
    ("heads", (4, None), (2, "softmax")),
]
_RNET = [
    ("conv", 3),
    ("prelu",),
    ("pool", 3, 2, "same"),
    ("conv", 3),
    ("prelu",),
    ("pool", 3, 2, "valid"),
    ("conv", 2),
    ("prelu",),
    ("flatten",),
    ("dense",),
    ("prelu",),
    ("heads", (4, None), (2, "softmax")),
]
_ONET = [
    ("conv", 3),
    ("prelu",),
    ("pool", 3, 2, "same"),
    ("conv", 3),
    ("prelu",),
    ("pool", 3, 2, "valid"),
    ("conv", 3),
    ("prelu",),
    ("pool", 2, 2, "same"),
    ("conv", 2),
    ("prelu",),
    ("flatten",),
    ("dense",),
    ("prelu",),
    ("heads", (4, None), (10, None), (2, "softmax")),
]
NETWORKS: dict[str, tuple[list[tuple[Any, ...]], int | None]] = {
    "pnet": (_PNET, None),
    "rnet": (_RNET, 24),
    "onet": (_ONET, 48),
}


def weights_dir() -> Path:
    """The mtcnn wheel's weight folder, found without importing mtcnn (which imports TensorFlow)."""
    spec = importlib.util.find_spec("mtcnn")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("the mtcnn package is not installed (pip install -r requirements.txt)")
    return Path(list(spec.submodule_search_locations)[0]) / "assets" / "weights"


def load_weights(name: str) -> list[np.ndarray]:
    import joblib  # an mtcnn dependency; its weight files are joblib dumps (lz4)

    return [np.asarray(w, np.float32) for w in joblib.load(weights_dir() / f"{name}.lz4")]


def build_graph(name: str, weights: list[np.ndarray] | None = None, raw_pixels: bool = True):
    """One of mtcnn's networks as an ONNX model (NCHW float input "x"), from the Keras weight list.

    mtcnn feeds its networks (pixel - 127.5) / 128. With `raw_pixels` that scaling is folded into the
    first convolution's weights (exact: the convolution is linear and unpadded), so the graph takes
    pixels in [0, 255] and the detector never makes a normalised copy of a large photo (~5 ms saved
    on a 1024x768 one)."""
    from onnx import TensorProto, helper, numpy_helper

    layers, side = NETWORKS[name]
    weights = list(load_weights(name) if weights is None else weights)
    if raw_pixels and weights and weights[0].ndim == 4 and len(weights) > 1:
        kernel, bias = weights[0], weights[1]
        weights[0] = kernel / 128.0
        weights[1] = bias - (127.5 / 128.0) * kernel.sum(axis=(0, 1, 2))
    nodes, inits, outputs = [], [], []
    counter = iter(range(1000))

    def const(array) -> str:
        key = f"w{next(counter)}"
        inits.append(numpy_helper.from_array(np.ascontiguousarray(array, np.float32), key))
        return key

    def node(op, inputs, **attrs) -> str:
        out = f"{op.lower()}{next(counter)}"
        nodes.append(helper.make_node(op, inputs, [out], **attrs))
        return out

    def take(ndim: int) -> np.ndarray:
        if not weights or weights[0].ndim != ndim:
            got = weights[0].shape if weights else "nothing"
            raise ValueError(f"{name}: expected a {ndim}-D weight array, got {got}; the layer layout does not match")
        return weights.pop(0)

    x, flat = "x", False
    for layer in layers:
        kind = layer[0]
        if kind == "conv":
            kernel, bias = take(4), take(1)  # Keras (kh, kw, in, out)
            x = node("Conv", [x, const(kernel.transpose(3, 2, 0, 1)), const(bias)])
        elif kind == "prelu":
            alpha = take(1 if flat else 3)  # (1, 1, C) after a conv, (C,) after a dense
            x = node("PRelu", [x, const(alpha.reshape(-1) if flat else alpha.reshape(-1, 1, 1))])
        elif kind == "pool":
            _, size, stride, padding = layer
            x = node(
                "MaxPool",
                [x],
                kernel_shape=[size, size],
                strides=[stride, stride],
                auto_pad="SAME_UPPER" if padding == "same" else "VALID",
            )
        elif kind == "flatten":
            # mtcnn permutes (H, W) before flattening (its weights came from column-major Caffe):
            # NCHW -> N, W, H, C reproduces the order the dense weights expect.
            x = node("Flatten", [node("Transpose", [x], perm=[0, 3, 2, 1])], axis=1)
            flat = True
        elif kind == "dense":
            kernel, bias = take(2), take(1)
            x = node("Gemm", [x, const(kernel), const(bias)])
        elif kind == "heads":
            for _units, activation in layer[1:]:
                kernel, bias = take(2 if flat else 4), take(1)
                if flat:
                    out = node("Gemm", [x, const(kernel), const(bias)])
                else:
                    out = node("Conv", [x, const(kernel.transpose(3, 2, 0, 1)), const(bias)])
                if activation == "softmax":
                    out = node("Softmax", [out], axis=1)
                outputs.append(out)
    if weights:
        raise ValueError(f"{name}: {len(weights)} weight arrays left over; the layer layout does not match")
    shape: list[str | int] = ["n", 3, side, side] if side else [1, 3, "h", "w"]
    graph = helper.make_graph(
        nodes,
        name,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
        [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outputs],
        inits,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="emotion-assistant app.mtcnn_ort"
    )
    # The IR version of opset 13's time, not this onnx package's newest (14): the browser's runtime
    # (onnxruntime-web, private mode) reads up to IR 13 and runs these very graphs.
    model.ir_version = 8
    return model


def nms(boxes: np.ndarray, threshold: float, over: str = "union") -> np.ndarray:
    """Greedy non-maximum suppression: indices of the kept rows of `boxes` (x1, y1, x2, y2, score, ...),
    best first. `over="min"` measures overlap against the smaller box (mtcnn's last stage)."""
    if len(boxes) == 0:
        return np.zeros(0, np.int64)
    if over == "union":  # OpenCV's C++ loop: PNet can propose thousands of windows on a large photo
        xywh = np.stack([boxes[:, 0], boxes[:, 1], boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]], 1)
        # OpenCV's stubs say Sequence; the binding takes arrays as they are (a list would cost a copy)
        kept = cv2.dnn.NMSBoxes(xywh.astype(np.float64), boxes[:, 4].astype(np.float32), 0.0, float(threshold))  # type: ignore[arg-type]
        return np.asarray(kept, np.int64).reshape(-1)
    x1, y1, x2, y2 = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    area = np.maximum(x2 - x1, 0) * np.maximum(y2 - y1, 0)
    order = np.argsort(-boxes[:, 4], kind="stable")
    keep = []
    while order.size:
        i, rest = order[0], order[1:]
        keep.append(i)
        w = np.maximum(0.0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]))
        h = np.maximum(0.0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]))
        inter = w * h
        denom = np.minimum(area[i], area[rest])
        overlap = np.divide(inter, denom, out=np.zeros_like(inter), where=denom > 0)
        order = rest[overlap <= threshold]
    return np.asarray(keep, np.int64)


def square(boxes: np.ndarray) -> np.ndarray:
    """Boxes grown to squares about their centres (the side is the longer side)."""
    out = boxes.copy()
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    side = np.maximum(w, h)
    out[:, 0] = boxes[:, 0] + (w - side) / 2
    out[:, 1] = boxes[:, 1] + (h - side) / 2
    out[:, 2] = out[:, 0] + side
    out[:, 3] = out[:, 1] + side
    return out


def crops(
    image: np.ndarray,
    boxes: np.ndarray,
    side: int,
    origin: tuple[int, int] = (0, 0),
    full_size: tuple[int, int] | None = None,
) -> np.ndarray:
    """`side` x `side` bilinear crops of `boxes` from a float image (pixels 0-255), NCHW, mid-grey
    (127.5, what mtcnn's zero padding of the normalised image is) outside the image.

    Sampling positions follow tf.image.crop_and_resize on boxes normalised by the image size (what
    mtcnn 1.0 feeds RNet and ONet), so both see the same pixels. `image` may be a window of a larger
    picture (`full_size` = its width and height) whose top-left corner is at `origin` of it: the crops
    are the same as from the whole picture wherever they fall inside the window."""
    h, w = image.shape[:2] if full_size is None else (full_size[1], full_size[0])
    ox, oy = origin
    out = np.zeros((len(boxes), side, side, 3), np.float32)
    sx, sy = (w - 1) / w, (h - 1) / h
    for k, (x1, y1, x2, y2) in enumerate(boxes[:, :4]):
        m = np.array(
            [[(x2 - x1) * sx / (side - 1), 0.0, x1 * sx - ox], [0.0, (y2 - y1) * sy / (side - 1), y1 * sy - oy]],
            np.float64,
        )
        cv2.warpAffine(
            image,
            m,
            (side, side),
            dst=out[k],
            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=(127.5, 127.5, 127.5),
        )
    return out.transpose(0, 3, 1, 2)


# Issue 16: how many candidates each stage may pass on, best-scored first. On photos PNet proposes
# ~80-170 windows for RNet and RNet ~1-10 for ONet (astronaut, three faces); a grid of ~1 000 small
# faces made 3 500 and 1 100, 1.3 CPU-s of detection. Only the MAX_FACES (20) largest are kept anyway.
PNET_MAX_PER_LEVEL = 2000  # windows over the threshold, per pyramid level, before its NMS
RNET_MAX_CANDIDATES = 1000
ONET_MAX_CANDIDATES = 100


def best(boxes: np.ndarray, k: int) -> np.ndarray:
    """The `k` rows of `boxes` with the highest score (column 4), in no particular order."""
    if len(boxes) <= k:
        return boxes
    return boxes[np.argpartition(-boxes[:, 4], k)[:k]]


def _settled(before: np.ndarray, after: np.ndarray, tolerance: float = 0.02) -> bool:
    """Whether every box moved and resized by less than `tolerance` of its size in the last pass."""
    size = np.maximum(before[:, 2:4] - before[:, 0:2], 1.0)
    moved = np.abs(after[:, :4] - before[:, :4]) / np.concatenate([size, size], axis=1)
    return bool(np.all(moved < tolerance))


def pyramid(height: int, width: int, min_face_size: float, scale_factor: float) -> list[float]:
    """Scales at which PNet's 12-pixel window covers faces from `min_face_size` pixels up."""
    scales, scale = [], 12.0 / max(float(min_face_size), 12.0)
    while min(height, width) * scale >= 12:
        scales.append(scale)
        scale *= scale_factor
    return scales


class MtcnnOrt:
    """Drop-in for `mtcnn.MTCNN().detect_faces` on one RGB image (the subset this app uses)."""

    def __init__(self, threads: int = 2):
        import onnxruntime as ort

        options = ort.SessionOptions()
        # PNet's first pyramid level is most of the work and splits well over two cores (45 -> 30 ms on
        # a 1024x768 photo); with spinning off, idle pool threads do not steal the other worker's core.
        options.intra_op_num_threads = int(threads)
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        # No memory arena: every photo gives PNet other shapes, and the arena kept the largest for good
        # (issue 16: +280 MB per worker after a grid of small faces; without it the worker returns to
        # its size after malloc_trim). A webcam frame detects as fast; a face grid ~15% slower.
        options.enable_cpu_mem_arena = False
        self._sessions = {
            name: ort.InferenceSession(
                build_graph(name).SerializeToString(), options, providers=["CPUExecutionProvider"]
            )
            for name in NETWORKS
        }

    def _run(self, name: str, x: np.ndarray, batch: int = 256) -> list[np.ndarray]:
        session = self._sessions[name]
        if name == "pnet" or len(x) <= batch:
            return session.run(None, {"x": x})
        parts = [session.run(None, {"x": x[i : i + batch]}) for i in range(0, len(x), batch)]
        return [np.concatenate(p) for p in zip(*parts, strict=True)]

    def detect_faces(
        self,
        rgb: np.ndarray,
        min_face_size: float = 20,
        scale_factor: float = 0.709,
        thresholds: tuple[float, float, float] = (0.6, 0.7, 0.8),
    ) -> list[dict]:
        image = np.asarray(rgb)[..., :3].astype(np.float32)  # the graphs take raw pixels
        height, width = image.shape[:2]

        # Stage 1, PNet: a fully convolutional 12x12 window over an image pyramid.
        found = []
        for scale in pyramid(height, width, min_face_size, scale_factor):
            h, w = int(height * scale), int(width * scale)
            # Every level is area-averaged from the full image, as mtcnn does. Resizing each level from
            # the one above is 3x cheaper but blurs more, and that lifted a borderline non-face (the
            # astronaut's suit badge) over the threshold: the cascade is sensitive to its input.
            level = cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA)
            reg, prob = self._run("pnet", level.transpose(2, 0, 1)[None])
            ys, xs = np.nonzero(prob[0, 1] > thresholds[0])
            if len(ys) == 0:
                continue
            d = reg[0][:, ys, xs] * 12.0  # regression is in units of the window
            boxes = np.stack(
                [
                    (xs * 2 + d[0]) / scale,
                    (ys * 2 + d[1]) / scale,
                    (xs * 2 + 12 + d[2]) / scale,
                    (ys * 2 + 12 + d[3]) / scale,
                    prob[0, 1, ys, xs],
                ],
                axis=1,
            )
            boxes = best(boxes, PNET_MAX_PER_LEVEL)
            found.append(boxes[nms(boxes, 0.5)])
        if not found:
            return []
        boxes = np.concatenate(found)
        boxes = square(best(boxes[nms(boxes, 0.7)], RNET_MAX_CANDIDATES))

        # Stage 2, RNet: rescore and refine each candidate on a 24x24 crop.
        reg, prob = self._run("rnet", crops(image, boxes, 24))
        boxes = self._refine(boxes, reg, prob[:, 1], thresholds[1])
        boxes = square(best(boxes[nms(boxes, 0.7)], ONET_MAX_CANDIDATES))
        if len(boxes) == 0:
            return []

        # Stage 3, ONet: final score, box and five landmarks on a 48x48 crop.
        boxes = self._onet(image, boxes)
        boxes = boxes[boxes[:, 4] > thresholds[2]]
        boxes = boxes[nms(boxes, 0.7, over="min")]
        return self._faces(boxes, width, height)

    def refind(self, rgb: np.ndarray, boxes, passes: int = 2) -> list[dict]:
        """Faces known from an earlier frame found again with ONet alone (issue 23): each box (x, y, w, h)
        is made square and ONet rescores it, regresses it onto the face and places the landmarks; with
        `passes=2` the refined box is fed back once more, which follows a face that moved by up to about
        a third of its size; a pass that moved no box by 2% of its size or more ends the loop early. One
        dict per box, in the input order, in `detect_faces`' shape, with ONet's score as
        `confidence` and no threshold applied (the caller decides what is lost).

        The cost is `passes` batched ONet runs on 48x48 crops (about a millisecond for a few faces),
        against 7-40 ms for the whole cascade on a webcam frame."""
        rgb = np.asarray(rgb)
        height, width = rgb.shape[:2]
        rows = np.asarray(boxes, np.float64).reshape(-1, 4)
        if len(rows) == 0:
            return []
        rows = np.concatenate([rows[:, :2], rows[:, :2] + rows[:, 2:4], np.zeros((len(rows), 1))], axis=1)
        # Only the window the passes can reach is converted to float (the whole 480x360 frame would
        # cost as much as ONet itself): the squared boxes grown by their side on every edge.
        sq = square(rows)
        grow = (sq[:, 2] - sq[:, 0])[:, None] * np.array([[-1.0, -1.0, 1.0, 1.0]])
        x0, y0 = (int(max(0, np.floor(v))) for v in (sq[:, :4] + grow)[:, :2].min(axis=0))
        x1, y1 = (
            int(min(lim, np.ceil(v)))
            for v, lim in zip((sq[:, :4] + grow)[:, 2:4].max(axis=0), (width, height), strict=True)
        )
        if x1 - x0 < 1 or y1 - y0 < 1:
            x0, y0, x1, y1 = 0, 0, width, height
        window = rgb[y0:y1, x0:x1, :3].astype(np.float32)
        for _ in range(max(1, int(passes))):
            before = rows
            rows = self._onet(window, square(rows[:, :5]), origin=(x0, y0), full_size=(width, height))
            if _settled(before, rows):  # the faces did not move: another pass would find the same boxes
                break
        return self._faces(rows, width, height)

    def _onet(
        self,
        image: np.ndarray,
        boxes: np.ndarray,
        origin: tuple[int, int] = (0, 0),
        full_size: tuple[int, int] | None = None,
    ) -> np.ndarray:
        """ONet on square `boxes` (x1, y1, x2, y2, ...): rows (x1, y1, x2, y2, score, 5 landmark xs,
        5 landmark ys), the box regressed, in the input order, no threshold."""
        reg, marks, prob = self._run("onet", crops(image, boxes, 48, origin, full_size))
        size = boxes[:, 2:4] - boxes[:, 0:2] + 1
        xs = marks[:, 0:5] * size[:, :1] + boxes[:, :1] - 1
        ys = marks[:, 5:10] * size[:, 1:2] + boxes[:, 1:2] - 1
        rows = np.concatenate([boxes[:, :5], xs, ys], axis=1)
        return self._refine(rows, reg, prob[:, 1], -1.0)

    @staticmethod
    def _faces(boxes: np.ndarray, width: int, height: int) -> list[dict]:
        faces = []
        for row in boxes:
            x1, y1, x2, y2, score = (float(v) for v in row[:5])
            x1, y1 = max(x1, 0.0), max(y1, 0.0)
            x2, y2 = min(x2, float(width)), min(y2, float(height))
            faces.append(
                {
                    "box": [int(round(x1)), int(round(y1)), int(round(x2 - x1)), int(round(y2 - y1))],
                    "confidence": score,
                    "keypoints": {
                        name: [int(round(row[5 + i])), int(round(row[10 + i]))] for i, name in enumerate(KEYPOINTS)
                    },
                }
            )
        return faces

    @staticmethod
    def _refine(boxes: np.ndarray, reg: np.ndarray, score: np.ndarray, threshold: float) -> np.ndarray:
        out = boxes.copy()
        size = boxes[:, 2:4] - boxes[:, 0:2] + 1
        out[:, 0:4] += reg * np.concatenate([size, size], axis=1)
        out[:, 4] = score
        return out[score > threshold]

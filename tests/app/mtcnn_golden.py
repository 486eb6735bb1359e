"""The mtcnn package's own detector (TensorFlow), frozen as golden outputs for app/mtcnn_ort.py's tests.

TensorFlow left the project (issue 17); before it did, this script ran the mtcnn wheel's TensorFlow
networks and its whole detector on the inputs tests/app/test_mtcnn_ort.py uses and wrote what they
answered to `mtcnn_golden.json` beside it:

- `networks`: PNet, RNet and ONet outputs for seeded random inputs (the inputs are regenerated from
  the seeds by the test, so only the outputs are stored);
- `faces`: `FaceDetector(backend="mtcnn", max_faces=100).detect(image)` (boxes, confidences,
  keypoints) on each photo of `tests.app.test_faces.TUNING_IMAGES` (skimage's astronaut and the
  synthetic scenes built from it).

Rerunning it needs `pip install tensorflow-cpu==2.21.0` and the old `mtcnn` backend of app/faces.py
(git history before issue 17); it is kept as the record of how the file was made.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

GOLDEN = Path(__file__).with_name("mtcnn_golden.json")

# (name, stage index in mtcnn's MTCNN.stages, input shape NHWC); the input is
# np.random.default_rng(stage).uniform(-1, 1, shape) in float32, in mtcnn's (pixel - 127.5) / 128 scaling.
NETWORK_INPUTS = [("pnet", 0, (1, 37, 53, 3)), ("rnet", 1, (7, 24, 24, 3)), ("onet", 2, (7, 48, 48, 3))]


def network_input(stage: int, shape) -> np.ndarray:
    return np.random.default_rng(stage).uniform(-1, 1, shape).astype(np.float32)


def freeze() -> dict:  # pragma: no cover (needs TensorFlow)
    import importlib.metadata as md

    from mtcnn import MTCNN

    from app.faces import FaceDetector
    from tests.app.test_faces import TUNING_IMAGES

    reference = MTCNN(device="CPU:0")
    networks = {}
    for name, stage, shape in NETWORK_INPUTS:
        out = [np.asarray(t) for t in reference.stages[stage]._model(network_input(stage, shape))]
        networks[name] = [
            {"shape": list(a.shape), "values": np.round(a.astype(np.float64), 7).ravel().tolist()} for a in out
        ]
    det = FaceDetector(backend="mtcnn", max_faces=100)
    det._mtcnn = reference
    faces = {image: det.detect(make()) for image, make in TUNING_IMAGES.items()}
    return {
        "made_with": {"mtcnn": md.version("mtcnn"), "tensorflow": md.version("tensorflow-cpu")},
        "detector": {
            "backend": "mtcnn",
            "max_faces": 100,
            "scale_factor": det.scale_factor,
            "min_face_size": det.min_face_size,
            "max_side": det.max_side,
            "min_confidence": det.min_confidence,
        },
        "networks": networks,
        "faces": faces,
    }


def load() -> dict:
    return json.loads(GOLDEN.read_text())


if __name__ == "__main__":  # pragma: no cover
    GOLDEN.write_text(json.dumps(freeze(), indent=1) + "\n")
    print(f"wrote {GOLDEN} ({GOLDEN.stat().st_size} bytes)", file=sys.stderr)

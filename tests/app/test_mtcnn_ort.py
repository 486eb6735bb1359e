"""app.mtcnn_ort: the mtcnn wheel's networks on ONNX Runtime must be MTCNN, only faster.

Checked against the mtcnn package's own TensorFlow detector, frozen before TensorFlow left the project
(issue 17) as tests/app/mtcnn_golden.json (tests/app/mtcnn_golden.py says how): the three networks give
the same outputs, and the whole detector finds the same faces on real photos.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from app import mtcnn_ort
from app.faces import FaceDetector, box_iou as iou
from tests.app import imagegen as g
from tests.app.mtcnn_golden import NETWORK_INPUTS, load, network_input
from tests.app.test_faces import TUNING_IMAGES


@pytest.fixture(scope="module")
def golden():
    return load()


@pytest.fixture(scope="module")
def ours():
    return mtcnn_ort.MtcnnOrt(threads=1)


@pytest.mark.parametrize("name,stage,shape", NETWORK_INPUTS)
def test_networks_match_the_mtcnn_package(golden, ours, name, stage, shape):
    x = network_input(stage, shape)
    expected = [np.asarray(t["values"], np.float32).reshape(t["shape"]) for t in golden["networks"][name]]
    raw = x * 128.0 + 127.5  # our graphs take pixels; mtcnn's networks take (pixel - 127.5) / 128
    got = ours._sessions[name].run(None, {"x": raw.transpose(0, 3, 1, 2)})
    if name == "pnet":
        got = [a.transpose(0, 2, 3, 1) for a in got]
    assert len(got) == len(expected)
    for a, b in zip(got, expected, strict=True):
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, atol=2e-5)


def test_a_wrong_weight_list_is_refused():
    with pytest.raises(ValueError, match="does not match"):
        mtcnn_ort.build_graph("pnet", mtcnn_ort.load_weights("rnet"))
    with pytest.raises(ValueError, match="left over"):
        mtcnn_ort.build_graph("pnet", mtcnn_ort.load_weights("pnet") + [np.zeros(3)])


def test_the_golden_file_was_made_with_the_detector_settings_tested(golden):
    d = golden["detector"]
    det = FaceDetector(max_faces=100)
    assert golden["made_with"]["mtcnn"] == "1.0.0" and d["backend"] == "mtcnn"
    assert (d["scale_factor"], d["min_face_size"], d["max_side"], d["min_confidence"]) == (
        det.scale_factor,
        det.min_face_size,
        det.max_side,
        det.min_confidence,
    )
    assert set(golden["faces"]) == set(TUNING_IMAGES)


@pytest.mark.parametrize("image", list(TUNING_IMAGES))
def test_same_faces_as_the_mtcnn_package(golden, ours, image):
    rgb = TUNING_IMAGES[image]()
    expected = golden["faces"][image]
    det = FaceDetector(max_faces=100)
    det._mtcnn = ours
    got = det.detect(rgb)
    assert len(expected) >= 1
    assert len(got) == len(expected), ([f["box"] for f in got], [f["box"] for f in expected])
    for face in expected:
        best = max(got, key=lambda f: iou(face["box"], f["box"]))
        assert iou(face["box"], best["box"]) > 0.8, (face["box"], best["box"])
        for name, (x, y) in face["keypoints"].items():  # landmarks within a few pixels
            bx, by = best["keypoints"][name]
            assert abs(bx - x) <= 0.08 * face["box"][2] and abs(by - y) <= 0.08 * face["box"][3], name
        assert best["confidence"] == pytest.approx(face["confidence"], abs=0.03)  # measured: <= 0.012


def test_no_face_in_a_photo_without_one(ours):
    assert ours.detect_faces(g.no_face(), scale_factor=0.6) == []
    assert ours.detect_faces(np.full((240, 320, 3), 128, np.uint8)) == []


def test_keypoints_sit_where_a_face_has_them(ours):
    face = max(ours.detect_faces(g.astronaut()), key=lambda f: f["confidence"])
    k = face["keypoints"]
    assert k["left_eye"][0] < k["nose"][0] < k["right_eye"][0]  # the image's left eye is on the left
    assert max(k["left_eye"][1], k["right_eye"][1]) < k["nose"][1] < min(k["mouth_left"][1], k["mouth_right"][1])
    x, y, w, h = face["box"]
    assert all(x <= px <= x + w and y <= py <= y + h for px, py in k.values())


def test_pyramid_covers_min_face_to_the_whole_image():
    scales = mtcnn_ort.pyramid(480, 640, min_face_size=20, scale_factor=0.5)
    assert scales[0] == pytest.approx(12 / 20)
    assert np.allclose(np.diff(np.log(scales)), np.log(0.5))
    assert 480 * scales[-1] >= 12 > 480 * scales[-1] * 0.5  # stops at PNet's 12-pixel window
    assert mtcnn_ort.pyramid(480, 640, min_face_size=600, scale_factor=0.5) == []


def test_nms_greedy_union_and_min():
    boxes = np.array(
        [
            [0, 0, 10, 10, 0.9],  # best
            [1, 1, 11, 11, 0.8],  # IoU 0.68 with the best: suppressed at 0.5
            [20, 20, 30, 30, 0.7],  # elsewhere: kept
            [2, 2, 8, 8, 0.95],
        ],
        float,
    )  # inside the first: IoU 0.36, "min" overlap 1.0
    assert mtcnn_ort.nms(boxes, 0.5).tolist() == [3, 0, 2]
    assert mtcnn_ort.nms(boxes, 0.7, over="min").tolist() == [3, 2]
    assert mtcnn_ort.nms(np.zeros((0, 5)), 0.5).size == 0


def test_square_keeps_the_centre():
    sq = mtcnn_ort.square(np.array([[10.0, 20.0, 30.0, 60.0, 1.0]]))
    assert sq[0].tolist() == [0.0, 20.0, 40.0, 60.0, 1.0]


def test_crops_sample_the_box_and_pad_with_grey():
    image = np.random.default_rng(0).uniform(0, 255, (40, 60, 3)).astype(np.float32)
    whole = mtcnn_ort.crops(image, np.array([[0.0, 0.0, 60.0, 40.0]]), 24)
    assert whole.shape == (1, 3, 24, 24)
    assert abs(whole.mean() - image.mean()) < 5
    assert np.allclose(whole[0, :, 0, 0], image[0, 0])  # corners land on corner pixels
    outside = mtcnn_ort.crops(image, np.array([[100.0, 100.0, 140.0, 140.0]]), 24)
    assert np.all(outside == 127.5)  # beyond the image: mid-grey


def test_serving_works_without_tensorflow_installed(models_dir):
    """requirements-serve.txt (the Dockerfile's) has no TensorFlow or Keras. With the ONNX detector and
    ONNX models a worker must answer every shipped model without them: here they are made
    unimportable, as in that install (~200 MB of RSS instead of ~900, and a start in about a second).
    The image copies model_core/ but not training/, so training is made unimportable too."""
    code = f"""
import io, sys
sys.modules["tensorflow"] = None   # import tensorflow -> ImportError, as if not installed
sys.modules["keras"] = None
sys.modules["training"] = None     # the Dockerfile does not copy training/
from app import create_app
from app.faces import get_detector
from app.emotion import get_models
from tests.app import imagegen as g
app = create_app({{"TESTING": True, "WARMUP": "sync", "MODELS_DIR": {str(models_dir)!r}}})
client = app.test_client()
with app.app_context():
    names, backend = get_models().names, get_detector().backend
for name in names:
    r = client.post("/api/predict", data={{"model": name, "speak": "true",
                                           "image": (io.BytesIO(g.jpeg(g.astronaut())), "a.jpg")}})
    body = r.get_json()
    assert r.status_code == 200 and len(body["faces"]) == 1 and body["reply"]["audio_url"], (name, r.get_data())
print(len(names), backend)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    n_models, backend = out.stdout.strip().splitlines()[-1].split()
    assert int(n_models) >= 1 and backend == "onnx"


def test_the_tensorflow_backend_is_gone():
    """Issue 17: TensorFlow left the project, and with it the mtcnn package's own detector as a backend."""
    assert FaceDetector().backend == "onnx"
    with pytest.raises(ValueError, match="DETECTOR_BACKEND"):
        FaceDetector(backend="mtcnn")


def face_grid(side: int = 30, n: int = 34) -> np.ndarray:
    """~1 100 small faces (the astronaut's head, `side` pixels wide) in a grid of about 1000x1150."""
    from PIL import Image

    head = g.astronaut()[20:240, 130:320]
    small = np.asarray(Image.fromarray(head).resize((side, int(side * 220 / 190)), Image.BILINEAR))
    return np.vstack([np.hstack([small] * n)] * n)


def test_a_face_grid_cannot_flood_the_refinement_stages(ours, monkeypatch):
    detector = FaceDetector()
    detector._mtcnn = ours
    """Issue 16: on a grid of ~1 100 faces RNet saw 3 488 crops and ONet 1 116 (1.3 CPU-s of detection);
    each stage now passes on at most its best-scored RNET/ONET_MAX_CANDIDATES."""
    seen: dict[str, int] = {}
    real_run = mtcnn_ort.MtcnnOrt._run

    def counting_run(self, name, x, batch=256):
        seen[name] = seen.get(name, 0) + len(x)
        return real_run(self, name, x, batch)

    monkeypatch.setattr(mtcnn_ort.MtcnnOrt, "_run", counting_run)
    faces = detector.detect(face_grid())
    assert seen["rnet"] <= mtcnn_ort.RNET_MAX_CANDIDATES and seen["onet"] <= mtcnn_ort.ONET_MAX_CANDIDATES
    assert len(faces) == detector.max_faces  # still a full set of faces


def test_best_keeps_the_highest_scores():
    boxes = np.zeros((10, 5), np.float32)
    boxes[:, 4] = np.arange(10)[::-1]
    assert sorted(mtcnn_ort.best(boxes, 3)[:, 4].tolist()) == [7, 8, 9]
    assert len(mtcnn_ort.best(boxes, 20)) == 10

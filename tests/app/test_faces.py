"""app.faces: MTCNN boxes in original pixels, clipped, largest first, capped."""

from __future__ import annotations

import numpy as np
import pytest

from app.faces import FaceDetector, box_iou as iou
from tests.app import imagegen as g


def test_astronaut(detector):
    faces = detector.detect(g.astronaut())
    assert len(faces) == 1 and iou(faces[0]["box"], g.ASTRONAUT_FACE) > 0.6
    assert all(isinstance(v, int) for v in faces[0]["box"])


def test_cap_keeps_the_largest(detector):
    capped = FaceDetector(max_faces=2)
    capped._mtcnn = detector.load()  # share the loaded networks
    faces = capped.detect(g.several_faces())
    assert len(faces) == 2
    assert all(f["box"][2] > 70 for f in faces)  # the two full-size faces, not the small copy


def test_face_cut_by_the_edge_is_clipped(detector):
    photo = g.astronaut()[90:, 200:]  # the face's top-left is outside
    faces = detector.detect(photo)
    for f in faces:
        x, y, w, h = f["box"]
        assert x >= 0 and y >= 0 and x + w <= photo.shape[1] and y + h <= photo.shape[0]


@pytest.mark.parametrize("shape", [(1, 1), (13, 13), (25, 1024), (1024, 25), (30000, 40), (48, 48)])
def test_odd_shapes_have_no_faces(detector, shape):
    rng = np.random.default_rng(0)
    assert detector.detect(rng.integers(0, 255, shape + (3,), dtype=np.uint8)) == []


# --- Issue 5: detection tuned for speed must find the same faces ------------------------------------


def _webcam_frame() -> np.ndarray:
    from app.imaging import decode_image
    from tests.app.test_load import webcam_frame

    return decode_image(webcam_frame(), 1 << 30, 10**9).rgb


def _many_faces() -> np.ndarray:
    from tests.app.test_robustness import many_faces

    return many_faces()


TUNING_IMAGES = {
    "astronaut": g.astronaut,
    "several-faces": g.several_faces,
    "webcam-640x480": _webcam_frame,
    "many-faces-25": _many_faces,
}


def _sharing(detector, **kw) -> FaceDetector:
    other = FaceDetector(max_faces=100, max_side=detector.max_side, **kw)
    other._mtcnn = detector.load()
    return other


@pytest.mark.parametrize("image", list(TUNING_IMAGES))
def test_tuned_settings_find_the_same_faces_as_mtcnns_defaults(detector, image):
    """The app's detector settings (DETECT_SCALE_FACTOR 0.6) against MTCNN's own (0.709, min face 20)."""
    rgb = TUNING_IMAGES[image]()
    reference = _sharing(detector, scale_factor=0.709, min_face_size=20).detect(rgb)
    tuned = _sharing(detector, scale_factor=detector.scale_factor, min_face_size=detector.min_face_size).detect(rgb)
    assert len(reference) >= 1
    assert len(tuned) == len(reference), ([f["box"] for f in tuned], [f["box"] for f in reference])
    for face in reference:
        best = max(iou(face["box"], t["box"]) for t in tuned)
        assert best > 0.8, (face["box"], [t["box"] for t in tuned])


def test_app_detector_uses_the_config(app, detector):
    from app import create_app
    from app.faces import get_detector

    assert detector.scale_factor == app.config.get("DETECT_SCALE_FACTOR", 0.6)
    other = create_app(
        {
            "TESTING": True,
            "WARMUP": "lazy",
            "MODELS_DIR": app.config["MODELS_DIR"],
            "DETECT_SCALE_FACTOR": 0.709,
            "MIN_FACE_SIZE": 32,
        }
    )
    with other.app_context():
        assert get_detector().scale_factor == 0.709 and get_detector().min_face_size == 32
    with pytest.raises(ValueError):
        FaceDetector(scale_factor=0.95)


@pytest.mark.parametrize("min_face_size", [24, 30, 40])
def test_a_larger_min_face_size_still_finds_large_faces(detector, min_face_size):
    """mtcnn 1.0 answers "no face" for any image when min_face_size > ~22 (its pyramid runs below
    PNet's 12 pixels); FaceDetector shrinks the image instead, so MIN_FACE_SIZE means what it says."""
    big = _sharing(detector, min_face_size=min_face_size)
    faces = big.detect(g.astronaut())  # one face about 83 x 107
    assert len(faces) == 1 and iou(faces[0]["box"], g.ASTRONAUT_FACE) > 0.6
    faces = big.detect(_webcam_frame())
    assert len(faces) == 1


def test_min_face_size_drops_smaller_faces(detector):
    tiled = _many_faces()  # 25 faces about 80 px wide at detection scale (1100 px -> 1024)
    assert len(_sharing(detector, min_face_size=20).detect(tiled)) == 25
    assert _sharing(detector, min_face_size=200).detect(tiled) == []


def test_box_iou():
    from app.faces import box_iou

    assert box_iou([0, 0, 10, 10], [0, 0, 10, 10]) == 1.0
    assert box_iou([0, 0, 10, 10], [5, 0, 10, 10]) == pytest.approx(50 / 150)
    assert box_iou([0, 0, 10, 10], [20, 20, 5, 5]) == 0.0
    assert box_iou([0, 0, 0, 0], [0, 0, 0, 0]) == 0.0

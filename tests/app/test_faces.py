"""app.faces: MTCNN boxes in original pixels, clipped, largest first, capped."""
from __future__ import annotations

import numpy as np
import pytest

from app.faces import FaceDetector
from tests.app import imagegen as g
from tests.app.test_api import iou


@pytest.fixture(scope="module")
def detector(app):
    return app.extensions["faces"]


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

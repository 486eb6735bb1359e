"""app.pipeline.analyze: the face-to-label path without Flask, and the same answer as the API's."""

from __future__ import annotations

import io

import pytest

from app.faces import box_iou as iou
from app.pipeline import Face, FaceResult, analyze
from tests.app import imagegen as g


@pytest.fixture(autouse=True)
def _need_model(has_model):
    if not has_model:
        pytest.skip("no model card to serve (models/ is empty)")


def test_analyze_outside_flask_gives_faces_and_labels(detector, models):
    timings = {}
    results = analyze(g.astronaut(), detector=detector, models=models, timings=timings)
    assert len(results) == 1 and isinstance(results[0], FaceResult) and isinstance(results[0].face, Face)
    result = results[0]
    assert iou(result.face.box, g.ASTRONAUT_FACE) > 0.5
    assert list(result.scores) == models.cards[models.default].classes
    assert result.emotion == max(result.scores, key=result.scores.get) and result.score == result.scores[result.emotion]
    assert set(timings) == {"detect", "classify"} and all(v >= 0 for v in timings.values())


def test_no_face_runs_no_model(detector, models, monkeypatch):
    monkeypatch.setattr(models, "classify", lambda *a, **k: pytest.fail("classified an image without faces"))
    assert analyze(g.astronaut()[:15, :15], detector=detector, models=models) == []


def test_the_route_answers_what_analyze_finds(client, detector, models):
    photo = g.several_faces()
    for name in models.names:
        expected = analyze(photo, detector=detector, models=models, model=name)
        form = {"image": (io.BytesIO(g.png(photo)), "faces.png"), "model": name}
        body = client.post("/api/predict", data=form, content_type="multipart/form-data").get_json()
        assert [f["box"] for f in body["faces"]] == [r.face.box for r in expected]
        assert [f["emotion"] for f in body["faces"]] == [r.emotion for r in expected]
        assert [f["scores"] for f in body["faces"]] == [r.scores for r in expected]
        assert [f["keypoints"] for f in body["faces"]] == [r.face.keypoints for r in expected]


@pytest.mark.parametrize("angle", [-25, 25])
def test_a_tilted_real_face_is_read_upright(detector, models, angle):
    """The astronaut turned by ±25° (the whole photo, as a head or camera roll): MTCNN's eyes give the
    tilt, the crop the model sees is turned back upright, and the label is the upright photo's."""
    import cv2
    import numpy as np

    from model_core.preprocess import crop_face, eye_roll

    rgb = g.astronaut()
    x, y, w, h = g.ASTRONAUT_FACE
    centre = (x + w / 2.0, y + h / 2.0)
    m = cv2.getRotationMatrix2D(centre, angle, 1.0)
    tilted = cv2.warpAffine(rgb, m, rgb.shape[1::-1], flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    upright = analyze(rgb, detector=detector, models=models)
    found = analyze(tilted, detector=detector, models=models)
    assert len(upright) == 1 and len(found) >= 1
    face = max(found, key=lambda r: iou(r.face.box, g.ASTRONAUT_FACE)).face
    assert eye_roll(face.keypoints) == pytest.approx(eye_roll(upright[0].face.keypoints) - angle, abs=6)
    # what the model is given: close to the upright face's crop, far closer than the tilted crop
    size = (96, 96)
    ref = cv2.resize(crop_face(rgb, upright[0].face.box, keypoints=upright[0].face.keypoints), size).astype(float)
    served = cv2.resize(crop_face(tilted, face.box, keypoints=face.keypoints), size).astype(float)
    plain = cv2.resize(crop_face(tilted, face.box), size).astype(float)
    inner = (slice(16, 80), slice(16, 80))
    assert np.abs(served[inner] - ref[inner]).mean() < 0.7 * np.abs(plain[inner] - ref[inner]).mean()  # 0.46-0.58 seen
    assert [r.emotion for r in found if r.face == face] == [upright[0].emotion]

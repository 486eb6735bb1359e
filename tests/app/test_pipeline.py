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

"""Live tracking (issue 23): the hint a live client sends back, what the server does with it, and the
moving clips of benchmarks/clips.py through the real detector and the default model."""

from __future__ import annotations

import io
import json

import pytest

from app.faces import box_iou
from app.tracking import BadHint, TrackHint, box_fits, locate, parse_hint
from benchmarks.clips import SCENES, follow, make_clip, summary
from tests.app import imagegen as g


@pytest.fixture(autouse=True)
def _need_model(request, has_model):
    if "no_model_needed" not in request.keywords and not has_model:
        pytest.skip("no model card to serve (models/ is empty)")


def post(client, rgb, track=None, **fields):
    form = {"image": (io.BytesIO(g.jpeg(rgb)), "frame.jpg"), **{k: str(v) for k, v in fields.items()}}
    if track is not None:
        form["track"] = track if isinstance(track, str) else json.dumps(track)
    return client.post("/api/predict", data=form, content_type="multipart/form-data")


def hint_from(body, age_ms=80):
    return {
        "faces": [{"id": f["track"], "box": f["box"]} for f in body["faces"]],
        "since_full": body["track"]["since_full"],
        "age_ms": age_ms,
    }


# -- the hint as input -------------------------------------------------------------------------------


@pytest.mark.no_model_needed
def test_parse_hint_reads_a_well_formed_hint():
    hint = parse_hint('{"faces": [{"id": 3, "box": [10, 20, 30.5, 40]}], "since_full": 2, "age_ms": 90}', 20)
    assert hint == TrackHint(faces=[(3, [10.0, 20.0, 30.5, 40.0])], since_full=2, age_ms=90.0)
    assert parse_hint("", 20) == TrackHint(faces=[])
    assert parse_hint("{}", 20) == TrackHint(faces=[])


@pytest.mark.no_model_needed
@pytest.mark.parametrize(
    "value",
    [
        "not json",
        "[1, 2]",
        '"a string"',
        '{"faces": {}}',
        '{"faces": [1]}',
        '{"faces": [{"id": 0, "box": [1, 2, 3, 4]}]}',
        '{"faces": [{"id": true, "box": [1, 2, 3, 4]}]}',
        '{"faces": [{"id": 1, "box": [1, 2, 3]}]}',
        '{"faces": [{"id": 1, "box": [1, 2, "3", 4]}]}',
        '{"faces": [{"id": 1, "box": [NaN, 2, 3, 4]}]}',
        '{"faces": [{"id": 1, "box": [Infinity, 2, 3, 4]}]}',
        '{"since_full": -1}',
        '{"since_full": 1.5}',
        '{"age_ms": -5}',
        "[" * 100_000,
        json.dumps({"faces": [{"id": i, "box": [0, 0, 50, 50]} for i in range(1, 22)]}),
    ],
)
def test_parse_hint_refuses_what_is_not_a_hint(value):
    with pytest.raises(BadHint):
        parse_hint(value, 20)


@pytest.mark.no_model_needed
def test_box_fits_refuses_boxes_that_cannot_be_a_face_in_the_frame():
    assert box_fits([100, 100, 80, 100], 480, 360, 20)
    assert not box_fits([1e308, 0, 1e308, 5], 480, 360, 20)  # absurd
    assert not box_fits([400, 300, 200, 200], 480, 360, 20)  # mostly out of the frame
    assert not box_fits([-500, -500, 60, 60], 480, 360, 20)  # out of the frame
    assert not box_fits([10, 10, 5, 5], 480, 360, 20)  # under the smallest face
    assert not box_fits([10, 10, 300, 30], 480, 360, 20)  # not face-shaped


def test_bad_hints_are_400_with_a_clear_code(client):
    for value in ("not json", '{"faces": [{"id": -1, "box": [0, 0, 9, 9]}]}', "x" * 5000):
        resp = post(client, g.astronaut(), track=value)
        assert resp.status_code == 400, value[:40]
        assert resp.get_json()["error"]["code"] == "bad_track"


# -- what the server does with it --------------------------------------------------------------------


def test_a_live_session_keeps_its_track_ids_and_refinds_known_faces(client):
    photo = g.several_faces()
    first = post(client, photo, track={}).get_json()
    assert first["track"] == {"mode": "full", "reason": "no_faces", "since_full": 0}
    assert [f["track"] for f in first["faces"]] == [1, 2, 3]
    second = post(client, photo, track=hint_from(first)).get_json()
    assert second["track"] == {"mode": "tracked", "reason": "ok", "since_full": 1}
    by_id = {f["track"]: f for f in second["faces"]}
    assert sorted(by_id) == [1, 2, 3]
    for f in first["faces"]:
        assert box_iou(f["box"], by_id[f["track"]]["box"]) >= 0.8
        assert by_id[f["track"]]["emotion"] == f["emotion"]
        assert set(by_id[f["track"]]["keypoints"]) == set(f["keypoints"])


def test_photos_without_a_hint_get_no_track_ids(client):
    body = post(client, g.astronaut()).get_json()
    assert body["faces"] and "track" not in body and all("track" not in f for f in body["faces"])


@pytest.mark.parametrize(
    "change, reason",
    [
        (lambda h: {**h, "since_full": 7}, "periodic"),  # TRACK_FULL_EVERY = 8
        (lambda h: {**h, "age_ms": 5000}, "stale"),
        (lambda h: {**h, "faces": [{"id": 1, "box": [1e308, 0, 1e308, 5]}]}, "bad_box"),
        (lambda h: {**h, "faces": [{"id": 1, "box": [5000, 5000, 90, 110]}]}, "bad_box"),
        (lambda h: {**h, "faces": [{"id": 1, "box": [350, 380, 100, 100]}]}, "lost"),  # no face there
    ],
)
def test_a_hint_that_does_not_fit_the_frame_falls_back_to_full_detection(client, change, reason):
    photo = g.astronaut()
    first = post(client, photo, track={}).get_json()
    resp = post(client, photo, track=change(hint_from(first)))
    assert resp.status_code == 200
    body = resp.get_json()
    assert body["track"]["mode"] == "full" and body["track"]["reason"] == reason
    assert body["track"]["since_full"] == 0
    assert len(body["faces"]) == 1 and box_iou(body["faces"][0]["box"], first["faces"][0]["box"]) > 0.9
    # the same face keeps its id through a full detection; a hinted box elsewhere is not that face
    assert body["faces"][0]["track"] == (1 if reason in ("periodic", "stale") else 2)


def test_a_face_that_leaves_is_dropped_and_a_new_one_gets_a_new_id(client, app):
    photo = g.several_faces()
    first = post(client, photo, track={}).get_json()
    hint = hint_from(first)
    hint["faces"] = hint["faces"][:1] + [{"id": 7, "box": [5, 5, 60, 60]}]  # a face that is not there
    body = post(client, photo, track=hint).get_json()
    assert body["track"]["reason"] == "lost"
    ids = sorted(f["track"] for f in body["faces"])
    assert ids[0] == 1 and 7 not in ids and ids[1:] == [8, 9]  # new ids above every hinted one


def test_two_hints_on_one_face_become_one_track(detector):
    rgb = g.astronaut()
    box = detector.detect(rgb)[0]["box"]
    shifted = [box[0] + 4, box[1] + 3, box[2], box[3]]
    located = locate(detector, rgb, TrackHint(faces=[(2, box), (5, shifted)], since_full=1))
    assert located.mode == "tracked"
    assert [f["track"] for f in located.faces] == [2]


def test_a_wrong_hint_costs_one_face_at_most(detector):
    """A hint over nothing is found out on its first box (then the full pass); a hint of more faces than
    re-finding them is worth goes straight to the full pass."""
    rgb = g.no_face()
    calls = []
    real = detector.refind
    try:
        detector.refind = lambda image, b, passes: calls.append(len(b)) or real(image, b, passes)
        four = [(i + 1, [20.0 + 90 * i, 100.0, 60.0, 60.0]) for i in range(4)]
        located = locate(detector, rgb, TrackHint(faces=four, since_full=1))
        assert calls == [1]
        assert located.mode == "full" and located.reason == "lost" and located.faces == []
        calls.clear()
        twenty = [(i + 1, [20.0 + 20 * (i % 10), 20.0 + 150 * (i // 10), 60.0, 60.0]) for i in range(20)]
        located = locate(detector, rgb, TrackHint(faces=twenty, since_full=1))
        assert calls == []
        assert located.mode == "full" and located.reason == "many_faces"
    finally:
        detector.refind = real


# -- the clips (item 7) ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def clip_summaries(detector, models):
    # 48 frames: each clip's 4 s at the 12 frames/s the page reaches (fewer frames = faster motion)
    return {name: summary(follow(make_clip(name, n_frames=48), detector, models, full_every=8), 8) for name in SCENES}


def test_clips_tracked_frames_agree_with_full_detection(clip_summaries):
    compared = sum(s["faces_compared"] for s in clip_summaries.values())
    agree = sum(s["label_agreement"] * s["faces_compared"] for s in clip_summaries.values())
    iou_ok = sum(s["iou_ge_0_8"] * s["faces_compared"] for s in clip_summaries.values())
    assert compared >= 150
    assert agree / compared >= 0.98, clip_summaries
    assert iou_ok / compared >= 0.98, clip_summaries


def test_clips_lose_no_face_for_longer_than_one_full_detection_period(clip_summaries):
    for name, s in clip_summaries.items():
        assert s["longest_miss_frames"] <= s["full_every"], (name, s)
        assert s["tracked_frames"] >= s["frames"] // 3 or name == "leave_and_return", (name, s)


def test_clips_cut_and_exit_are_noticed(clip_summaries):
    assert clip_summaries["cut"]["full_reasons"].get("lost", 0) >= 1  # the scene changed under a track
    assert clip_summaries["leave_and_return"]["full_reasons"].get("no_faces", 0) >= 2
    assert clip_summaries["walk"]["id_switches"] == 0
    assert clip_summaries["three_people"]["id_switches"] == 0

"""`POST /api/video` (issue 25): the clip checked first (a plain 4xx), then its analysis streamed as NDJSON;
limits, one clip per worker, a client that leaves stops the work, and no clip ever touches the disk."""

from __future__ import annotations

import io
import json
import logging
import tempfile

import numpy as np
import pytest

from benchmarks.clips import audio_only, encode, make_clip


@pytest.fixture(autouse=True)
def _need_model(request, has_model):
    if "no_model_needed" not in request.keywords and not has_model:
        pytest.skip("no model card to serve (models/ is empty)")


@pytest.fixture(scope="module")
def walk_mp4():
    return encode(make_clip("walk", n_frames=24).frames, "mp4-h264")  # 2 s, one smiling face


def post(client, data: bytes, name="clip.mp4", buffered=True, **fields):
    form = {"video": (io.BytesIO(data), name), **{k: str(v) for k, v in fields.items()}}
    return client.post("/api/video", data=form, content_type="multipart/form-data", buffered=buffered)


def lines(response) -> list[dict]:
    return [json.loads(line) for line in response.get_data().splitlines() if line.strip()]


def test_a_clip_streams_start_frames_and_the_report(client, walk_mp4):
    response = post(client, walk_mp4, fps=4, lang="vi", speak="true")
    assert response.status_code == 200 and response.mimetype == "application/x-ndjson"
    assert response.headers["X-Accel-Buffering"] == "no" and response.headers["Cache-Control"] == "no-store"
    events = lines(response)
    assert [e["type"] for e in events] == ["start"] + ["frame"] * 8 + ["report"]
    start, frames, end = events[0], events[1:-1], events[-1]
    assert start["video"]["codec"] == "h264" and start["expected_frames"] == 8 and start["fps"] == 4
    assert [f["done"] for f in frames] == list(range(1, 9)) and all(f["expected"] == 8 for f in frames)
    assert [f["time"] for f in frames] == pytest.approx([0.25 * k for k in range(8)], abs=0.01)
    assert all(len(f["faces"]) == 1 and f["faces"][0]["track"] == 1 for f in frames)
    report = end["report"]
    assert report["emotion"] == "happy" and report["tracks"][0]["dominant"] == "happy"
    assert report["frames"] == [{k: f[k] for k in ("index", "time", "mode", "faces")} for f in frames]
    reply = end["reply"]
    assert (
        reply["lang"] == "vi" and reply["emotion"] == "happy" and reply["audio_url"].startswith("/api/audio/espeak.vi.")
    )
    assert client.get(reply["audio_url"]).status_code == 200


def test_a_raw_video_body_works_too(client, walk_mp4):
    response = client.post("/api/video?fps=2", data=walk_mp4, content_type="video/mp4")
    assert response.status_code == 200 and lines(response)[-1]["report"]["analysed_frames"] == 4


@pytest.mark.parametrize(
    "make, status, code",
    [
        (lambda: b"just some text, not a clip" * 10, 415, "unsupported_type"),
        (lambda: audio_only(1.0), 422, "no_video_stream"),
        (
            lambda: encode([np.zeros((48, 64, 3), np.uint8)] * 3, "mp4-h264", times=[0.0, 1800.0, 3600.0]),
            422,
            "video_too_long",
        ),
        (lambda: encode([np.zeros((1440, 2560, 3), np.uint8)], "mp4-h264", fps=1), 413, "video_too_large"),
        (lambda: b"", 400, "empty_video"),
    ],
)
def test_bad_clips_are_a_clear_4xx_before_any_streaming(client, make, status, code):
    response = post(client, make())
    assert response.status_code == status and response.mimetype == "application/json"
    assert response.get_json()["error"]["code"] == code


def test_a_truncated_clip_is_400(client, walk_mp4):
    response = post(client, walk_mp4[: len(walk_mp4) // 2])
    assert response.status_code == 400 and response.get_json()["error"]["code"] == "bad_video"


@pytest.mark.parametrize(
    "fields, code",
    [
        ({"fps": "0"}, "bad_fps"),
        ({"fps": "9"}, "bad_fps"),
        ({"fps": "x"}, "bad_fps"),
        ({"model": "nope"}, "unknown_model"),
        ({"lang": "xx"}, "bad_lang"),
        ({"speak": "maybe"}, "bad_speak"),
    ],
)
def test_bad_fields_are_400(client, walk_mp4, fields, code):
    response = post(client, walk_mp4, **fields)
    assert response.status_code == 400 and response.get_json()["error"]["code"] == code


def test_missing_field_wrong_type_and_over_the_request_cap(client, walk_mp4):
    response = client.post(
        "/api/video", data={"image": (io.BytesIO(walk_mp4), "a.mp4")}, content_type="multipart/form-data"
    )
    assert response.status_code == 400 and response.get_json()["error"]["code"] == "missing_video"
    response = client.post("/api/video", data=b"{}", content_type="application/json")
    assert response.status_code == 415
    response = post(client, b"\x00\x00\x00\x20ftypisom" + b"\0" * (17 * 1024 * 1024))
    assert response.status_code == 413


def test_a_tiny_clip_of_very_many_frames_stops_at_the_decoded_frames_cap(client, app, monkeypatch):
    monkeypatch.setitem(app.config, "VIDEO_MAX_SECONDS", 5)  # 5 s x 60 + 60 = 360 decoded frames at most
    data = encode([np.zeros((48, 64, 3), np.uint8)] * 1000, "mp4-h264", fps=250)  # 4 s of 1 000 frames
    assert len(data) < 100_000
    events = lines(post(client, data, fps=8))
    report = events[-1]["report"]
    assert report["truncated"] == "max_decoded_frames" and report["decoded_frames"] == 361
    assert report["analysed_frames"] == 12 and report["tracks"] == []  # 1.44 s at 8 a second; no face


def test_one_clip_at_a_time_per_worker_then_503_busy(client, app, walk_mp4):
    from app.videoapi import _slot

    slot = _slot(app)
    assert slot.acquire(blocking=False)
    try:
        response = post(client, walk_mp4)
        assert response.status_code == 503 and response.get_json()["error"]["code"] == "busy"
        assert response.headers["Retry-After"] == "5"
    finally:
        slot.release()
    assert post(client, walk_mp4, fps=1).status_code == 200


def test_a_client_that_leaves_stops_the_analysis_and_frees_the_slot(client, app, caplog):
    long_clip = encode(make_clip("two_people", n_frames=48).frames, "mp4-h264", fps=4)  # 12 s, 48 frames at 4/s
    caplog.set_level(logging.INFO, logger="app.videoapi")
    response = post(client, long_clip, buffered=False, fps=4)
    assert response.status_code == 200
    stream = iter(response.response)
    first, second = json.loads(next(stream)), json.loads(next(stream))
    assert first["type"] == "start" and first["expected_frames"] == 48 and second["type"] == "frame"
    response.close()  # what the server does when writing to a gone client fails
    stopped = [r.getMessage() for r in caplog.records if "client left" in r.getMessage()]
    assert stopped and stopped[0].startswith("video analysis stopped: the client left after 1 of about 48 frames")
    from app.videoapi import _slot

    assert _slot(app).acquire(blocking=False)  # the slot came back
    _slot(app).release()


def test_a_response_closed_before_its_first_line_frees_the_slot_too(app, walk_mp4):
    """A server that closes the response without iterating it (the client left before the first line)
    never starts the generator, and closing an unstarted generator runs none of its code: the slot and
    the decoder are given back by the response's own close."""
    from app.videoapi import _slot, video

    with app.test_request_context(
        "/api/video",
        method="POST",
        content_type="multipart/form-data",
        data={"video": (io.BytesIO(walk_mp4), "clip.mp4")},
    ):
        response = video()
        assert response.status_code == 200 and not _slot(app).acquire(blocking=False)
        response.close()
    assert _slot(app).acquire(blocking=False)
    _slot(app).release()


def test_no_clip_ever_touches_the_disk(client, walk_mp4, tmp_path, monkeypatch):
    """Good, bad and abandoned requests: no temporary file is made (each maker fails the test), and the
    temporary folder stays empty."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))

    def forbidden(*args, **kwargs):
        raise AssertionError("a temporary file was made")

    for name in ("mkstemp", "NamedTemporaryFile", "TemporaryFile", "SpooledTemporaryFile", "mkdtemp"):
        monkeypatch.setattr(tempfile, name, forbidden)
    assert post(client, walk_mp4, fps=2).status_code == 200
    assert post(client, walk_mp4[:5000]).status_code == 400
    assert post(client, audio_only(0.5)).status_code == 422
    response = post(client, walk_mp4, buffered=False, fps=4)
    next(iter(response.response))
    response.close()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.no_model_needed
def test_the_clip_limit_fits_the_request_cap_nginx_and_the_page():
    """A clip is a request like any other: under the 16 MB that nginx (in memory) and Flask hold, and
    the page checks the same number before it sends one."""
    from pathlib import Path

    from app import DEFAULTS

    root = Path(__file__).resolve().parents[2]
    assert DEFAULTS["VIDEO_MAX_BYTES"] <= DEFAULTS["MAX_CONTENT_LENGTH"]
    nginx = (root / "deploy" / "nginx" / "emotion.conf.template").read_text()
    assert f"client_max_body_size {DEFAULTS['MAX_CONTENT_LENGTH'] >> 20}m;" in nginx
    page = (root / "static" / "js" / "video.js").read_text()
    assert f"VIDEO_MAX_BYTES = {DEFAULTS['VIDEO_MAX_BYTES'] >> 20} * 1024 * 1024;" in page

"""The page's video panel (issue 25), end to end in Chromium against the real server: a clip made at test
time from benchmarks/clips.py's moving faces is uploaded, its frames stream in, each face gets its
timeline canvas and segments, the assistant answers, CSV and JSON export; in private mode the browser
analyses the clip itself, sends nothing of it, and reports what the server does."""

from __future__ import annotations

import csv
import io
import json
from urllib.parse import urlsplit

import cv2
import requests

from benchmarks.clips import encode, make_clip

from .test_browser import goto_app
from .test_ondevice import RequestWatch


def test_a_clip_streams_to_a_timeline_per_face_segments_and_a_reply(app_page, server_url, tmp_path):
    page, log = app_page
    clip = tmp_path / "two.webm"
    clip.write_bytes(encode(make_clip("two_people", n_frames=24).frames, "webm-vp8"))
    goto_app(page, server_url)
    page.set_input_files("#video-input", str(clip))
    page.wait_for_function("() => window.emotionApp.video && window.emotionApp.video.report", timeout=90_000)
    video = page.evaluate("window.emotionApp.video")
    assert video["frames"] == video["report"]["analysed_frames"] == 8
    tracks = page.locator("#video-tracks .video-track")
    assert tracks.count() == len(video["report"]["tracks"]) >= 2
    assert page.locator("#video-tracks .video-track h4").first.inner_text().startswith("Face 1: mostly Happy")
    assert page.locator("#video-tracks .segments li[data-emotion]").count() >= 2
    painted = page.evaluate("""() => {
        const c = document.querySelector('#video-tracks canvas');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0; for (let i = 3; i < d.length; i += 4 * 13) if (d[i] > 0) n++;
        return n;
    }""")
    assert painted > 100
    assert page.locator("#reply-text").get_attribute("data-emotion") == video["report"]["emotion"]
    assert "face" in page.locator("#video-status").inner_text().lower()
    rows = list(csv.DictReader(io.StringIO(page.evaluate("window.emotionApp.videoCsv()"))))
    assert len(rows) == sum(t["frames"] for t in video["report"]["tracks"])
    with page.expect_download() as download:
        page.click("#video-json")
    body = json.loads(open(download.value.path()).read())
    assert body["tracks"] == video["report"]["tracks"] and body["reply"]["text"]
    log.assert_clean()


def test_private_mode_analyses_the_clip_here_and_sends_nothing(open_page, server_url, tmp_path):
    """Private mode: the clip is decoded and analysed in this browser and drawn as the server's report
    is (timeline per face, segments, reply); every request is watched (tests/e2e/test_ondevice.py's
    RequestWatch): none is a POST or carries a body, none goes to /api/video, the only API calls are the
    settings, the networks and the reply by id and language. Stop ends an analysis."""
    page, log = open_page(init_script="localStorage.setItem('emotion.private', '1')")
    watch = RequestWatch(page)
    clip = tmp_path / "two.webm"
    clip.write_bytes(encode(make_clip("two_people", n_frames=24).frames, "webm-vp8"))
    goto_app(page, server_url)
    page.set_input_files("#video-input", str(clip))
    page.wait_for_function("() => window.emotionApp.video && window.emotionApp.video.report", timeout=120_000)
    video = page.evaluate("window.emotionApp.video")
    assert video["ondevice"]
    assert video["frames"] == video["report"]["analysed_frames"] == 8
    tracks = page.locator("#video-tracks .video-track")
    assert tracks.count() == len(video["report"]["tracks"]) >= 2
    assert page.locator("#video-tracks .segments li[data-emotion]").count() >= 2
    painted = page.evaluate("""() => {
        const c = document.querySelector('#video-tracks canvas');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0; for (let i = 3; i < d.length; i += 4 * 13) if (d[i] > 0) n++;
        return n;
    }""")
    assert painted > 100
    assert page.locator("#reply-text").get_attribute("data-emotion") == video["report"]["emotion"]
    rows = list(csv.DictReader(io.StringIO(page.evaluate("window.emotionApp.videoCsv()"))))
    assert len(rows) == sum(t["frames"] for t in video["report"]["tracks"])
    # Stop: a second analysis ended after its first frames
    page.set_input_files("#video-input", str(clip))
    page.wait_for_function("() => window.emotionApp.videoRunning && window.emotionApp.video.frames >= 1")
    page.click("#video-cancel")
    page.wait_for_function("() => !window.emotionApp.videoRunning")
    assert page.locator("#video-status").inner_text().strip() == "Stopped."
    assert not page.evaluate("window.emotionApp.video.report")
    assert not any(urlsplit(url).path == "/api/video" for url in log.requests)
    watch.assert_nothing_of_the_image_left()
    assert any(urlsplit(url).path == "/api/reply" for _, url, _ in watch.requests)
    log.assert_clean()


def server_report(server_url: str, data: bytes, name: str) -> dict:
    resp = requests.post(server_url + "/api/video", files={"video": (name, data)}, stream=True, timeout=120)
    assert resp.status_code == 200, resp.text
    lines = [json.loads(line) for line in resp.iter_lines() if line]
    assert lines[-1]["type"] == "report", lines[-1]
    return lines[-1]["report"]


def test_private_mode_and_the_server_report_the_same_faces(open_page, server_url):
    """Parity: the same clips through POST /api/video and through private mode. Compared: the number of
    analysed frames and of tracks, and per track (in order of appearance) its id, its dominant expression
    and its number of frames (within one: the browser samples the frame shown at k / fps, the server the
    first frame at or after it), and the clip's emotion (the reply's). Clips: two people (WebM/VP8), a
    scene cut where the faces change (MP4/H.264: new track ids), one face walking (WebM/VP9); 4 s at 12
    frames/s, 16 frames analysed each."""
    page, log = open_page(init_script="localStorage.setItem('emotion.private', '1')")
    goto_app(page, server_url)
    compared = 0
    for scene, encoding in (("two_people", "webm-vp8"), ("cut", "mp4-h264"), ("walk", "webm-vp9")):
        data = encode(make_clip(scene, n_frames=48).frames, encoding)
        ext = encoding.split("-")[0]
        name = f"{scene}.{ext}"
        server = server_report(server_url, data, name)
        page.set_input_files("#video-input", files=[{"name": name, "mimeType": f"video/{ext}", "buffer": data}])
        page.wait_for_function(
            "() => window.emotionApp.video && window.emotionApp.video.report && !window.emotionApp.videoRunning",
            timeout=120_000,
        )
        browser = page.evaluate("window.emotionApp.video.report")
        assert browser["analysed_frames"] == server["analysed_frames"] == 16, (scene, browser["analysed_frames"])
        got = [(t["id"], t["dominant"], t["frames"]) for t in browser["tracks"]]
        want = [(t["id"], t["dominant"], t["frames"]) for t in server["tracks"]]
        assert len(got) == len(want), (scene, want, got)
        for (i, label, n), (j, label2, m) in zip(want, got, strict=True):
            assert i == j and label == label2 and abs(n - m) <= 1, (scene, want, got)
        assert browser["emotion"] == server["emotion"]
        compared += len(want)
    assert compared >= 5
    log.assert_clean()


def test_private_mode_keeps_the_servers_limits_and_pixels(open_page, server_url):
    """Private mode refuses what the server refuses, in the page's words and without sending anything:
    a frame over 1080p (1920x1088) and a file with no picture (audio only). A 1080p clip is shrunk to the
    analysis side (1280) as on the server, and its boxes come back in the video's pixels: the same boxes
    as the server's (IoU >= 0.8), the same labels."""
    from app.faces import box_iou
    from benchmarks.clips import audio_only

    page, log = open_page(init_script="localStorage.setItem('emotion.private', '1')")
    goto_app(page, server_url)
    frames = make_clip("walk", n_frames=6).frames

    def choose(name, mime, data):
        page.set_input_files("#video-input", files=[{"name": name, "mimeType": mime, "buffer": data}])

    big = [cv2.resize(f, (1920, 1088), interpolation=cv2.INTER_LINEAR) for f in frames]
    choose("big.webm", "video/webm", encode(big, "webm-vp8"))
    page.wait_for_function("() => document.getElementById('video-status').dataset.state === 'error'", timeout=120_000)
    assert "1920x1088" in page.locator("#video-status").inner_text()
    choose("sound.webm", "video/webm", audio_only(fmt="webm"))
    page.wait_for_function("() => document.getElementById('video-status').textContent.includes('no picture')")
    hd = encode([cv2.resize(f, (1920, 1080), interpolation=cv2.INTER_LINEAR) for f in frames], "webm-vp8")
    choose("hd.webm", "video/webm", hd)
    page.wait_for_function(
        "() => window.emotionApp.video && window.emotionApp.video.report && !window.emotionApp.videoRunning",
        timeout=120_000,
    )
    browser = page.evaluate("window.emotionApp.video.report")
    server = server_report(server_url, hd, "hd.webm")
    assert browser["video"]["width"] == 1920 and len(browser["frames"]) == len(server["frames"]) == 2
    for b, s in zip(browser["frames"], server["frames"], strict=True):
        assert len(b["faces"]) == len(s["faces"]) >= 1
        for f, g in zip(b["faces"], s["faces"], strict=True):
            assert box_iou(f["box"], g["box"]) >= 0.8 and f["emotion"] == g["emotion"], (f, g)
    assert not any(urlsplit(url).path == "/api/video" for url in log.requests)
    log.assert_clean()

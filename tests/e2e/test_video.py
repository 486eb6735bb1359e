"""The page's video panel (issue 25), end to end in Chromium against the real server: a clip made at test
time from benchmarks/clips.py's moving faces is uploaded, its frames stream in, each face gets its
timeline canvas and segments, the assistant answers, CSV and JSON export; private mode sends nothing."""

from __future__ import annotations

import csv
import io
import json

from benchmarks.clips import encode, make_clip

from .test_browser import goto_app


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


def test_private_mode_sends_no_clip(open_page, server_url, tmp_path):
    page, log = open_page(init_script="localStorage.setItem('emotion.private', '1')")
    clip = tmp_path / "walk.mp4"
    clip.write_bytes(encode(make_clip("walk", n_frames=6).frames, "mp4-h264"))
    goto_app(page, server_url)
    page.set_input_files("#video-input", str(clip))
    page.wait_for_function("() => document.getElementById('video-status').textContent.includes('Private mode')")
    assert not any("/api/video" in url for url in log.requests)

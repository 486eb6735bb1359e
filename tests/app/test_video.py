"""Video (issue 25): decoding and its limits (app/video.py), the tracked report (app/videoreport.py) and
the library's `Analyzer.video`, on clips made at test time from benchmarks/clips.py's moving real faces
(no video file is committed)."""

from __future__ import annotations

import numpy as np
import pytest

from app.video import (
    NoVideoStream,
    UnsupportedVideo,
    VideoError,
    VideoLimits,
    VideoTooLarge,
    VideoTooLong,
    open_video,
    sniff,
)
from app.videoreport import build_report, segments
from benchmarks.clips import ENCODINGS, WIDTH, audio_only, encode, make_clip


@pytest.fixture(autouse=True)
def _need_model(request, has_model):
    if "no_model_needed" not in request.keywords and not has_model:
        pytest.skip("no model card to serve (models/ is empty)")


@pytest.fixture(scope="module")
def walk():
    return make_clip("walk", n_frames=24)  # 2 s at 12 frames a second


@pytest.fixture(scope="module")
def two():
    return make_clip("two_people", n_frames=24)


@pytest.fixture(scope="module")
def analyzer(models_dir):
    from app.analyzer import Analyzer

    return Analyzer(models_dir=models_dir)


def sampled_times(data: bytes, fps: float, limits: VideoLimits | None = None) -> tuple[list[float], object]:
    with open_video(data, limits) as video:
        times = [s.time for s in video.sampled(fps)]
        return times, video


# -- decoding ----------------------------------------------------------------------------------------


@pytest.mark.no_model_needed
@pytest.mark.parametrize("encoding", sorted(ENCODINGS))
def test_every_accepted_format_decodes_at_the_asked_rate(walk, encoding):
    data = encode(walk.frames, encoding, fps=12)
    with open_video(data) as video:
        frames = list(video.sampled(4))
        assert video.info.codec in {"h264", "vp8", "vp9", "mpeg4", "libvpx", "libvpx-vp9"}
        assert (video.info.width, video.info.height) == (WIDTH, 360)
        assert video.decoded == 24 and video.truncated is None
    assert [f.time for f in frames] == pytest.approx([0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75], abs=0.01)
    assert all(f.rgb.shape == (360, WIDTH, 3) and f.scale == (1.0, 1.0) for f in frames)
    # the pixels are the clip's (lossy codecs: close, not equal)
    assert np.abs(frames[0].rgb.astype(int) - walk.frames[0].astype(int)).mean() < 12


@pytest.mark.no_model_needed
def test_a_variable_frame_rate_clip_is_sampled_at_its_true_times(walk):
    times = [0.0, 0.05, 0.1, 0.5, 0.55, 1.0, 1.6, 1.65, 1.7, 2.5]
    data = encode(walk.frames[:10], "mp4-h264", times=times)
    got, _ = sampled_times(data, 4)
    # the first frame at or after each quarter second: 0, 0.5 (nothing at 0.25), 1.0, 1.6, 2.5
    assert got == pytest.approx([0.0, 0.5, 1.0, 1.6, 2.5], abs=0.002)


@pytest.mark.no_model_needed
def test_large_frames_are_shrunk_before_analysis_and_boxes_map_back():
    frame = np.zeros((1080, 1920, 3), np.uint8)
    data = encode([frame] * 2, "mp4-h264", fps=2)
    with open_video(data) as video:
        first = next(iter(video.sampled(1)))
    assert first.rgb.shape == (720, 1280, 3) and first.scale == pytest.approx((1.5, 1.5))


@pytest.mark.no_model_needed
def test_sniffing_knows_the_containers_and_nothing_else():
    assert sniff(b"\x00\x00\x00\x20ftypisom") == "mp4" and sniff(b"\x00\x00\x00\x14ftypqt  ") == "mp4"
    assert sniff(b"\x1aE\xdf\xa3\x9fB\x86") == "webm" and sniff(b"RIFF\x00\x00\x00\x00AVI LIST") == "avi"
    for other in (
        b"#EXTM3U\n#EXT-X-VERSION:3",
        b"\xff\xd8\xff\xe0\x00\x10JFIF",
        b"RIFF\x00\x00\x00\x00WAVE",
        b"ffconcat version 1.0\nfile /etc/passwd",
        b"",
        b"hello",
    ):
        assert sniff(other) is None


# -- bad input: a clear error and a bounded cost ----------------------------------------------------


@pytest.mark.no_model_needed
@pytest.mark.parametrize(
    "data",
    [
        b"hello, this is not a video" * 10,
        b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\0" * 100,
        b"#EXTM3U\n#EXTINF:10,\nfile:///etc/passwd\n",
        b"ffconcat version 1.0\nfile /etc/passwd\n",
    ],
)
def test_what_is_not_a_video_is_415_and_never_reaches_another_demuxer(data):
    with pytest.raises(UnsupportedVideo) as err:
        open_video(data)
    assert (err.value.status, err.value.code) == (415, "unsupported_type")


@pytest.mark.no_model_needed
def test_an_empty_file_and_an_unreadable_path(tmp_path):
    with pytest.raises(VideoError) as err:
        open_video(b"")
    assert err.value.code == "empty_video"
    with pytest.raises(VideoError) as err:
        open_video(tmp_path / "missing.mp4")
    assert (err.value.status, err.value.code) == (400, "unreadable")


@pytest.mark.no_model_needed
@pytest.mark.parametrize("fmt", ["mp4", "webm"])
def test_audio_only_is_422_no_video_stream(fmt):
    with pytest.raises(NoVideoStream) as err:
        open_video(audio_only(1.0, fmt))
    assert (err.value.status, err.value.code) == (422, "no_video_stream") and "audio only" in err.value.message


@pytest.mark.no_model_needed
def test_a_truncated_mp4_is_400_bad_video(walk):
    data = encode(walk.frames, "mp4-h264")
    with pytest.raises(VideoError) as err:  # the index (moov) is at the end: cut, there is nothing to read
        open_video(data[: len(data) // 2])
    assert (err.value.status, err.value.code) == (400, "bad_video")


@pytest.mark.no_model_needed
def test_a_truncated_webm_gives_the_frames_before_the_cut_or_400_when_there_are_none(walk):
    data = encode(walk.frames, "webm-vp8")
    times, video = sampled_times(data[: len(data) * 4 // 5], 4)
    assert 1 <= len(times) < 8 and 1 <= video.decoded < 24
    with pytest.raises(VideoError) as err:  # cut inside the first (key) frame
        sampled_times(data[: len(data) // 4], 4)
    assert (err.value.status, err.value.code) == (400, "bad_video")


@pytest.mark.no_model_needed
def test_an_8k_clip_is_refused_from_its_header_before_any_frame_is_decoded():
    data = encode([np.zeros((4320, 7680, 3), np.uint8)], "mp4-h264", fps=1)
    assert len(data) < 100_000  # small file, 100 MB of RGB a frame
    with pytest.raises(VideoTooLarge) as err:
        open_video(data)
    assert (err.value.status, err.value.code) == (413, "video_too_large") and "7680x4320" in err.value.message


@pytest.mark.no_model_needed
def test_an_hour_long_clip_is_cut_at_max_seconds_or_refused_when_asked():
    data = encode([np.zeros((48, 64, 3), np.uint8)] * 3, "mp4-h264", times=[0.0, 1800.0, 3600.0])
    assert len(data) < 10_000
    times, video = sampled_times(data, 4)  # the library's default: 600 s analysed at most
    assert times == [0.0] and video.truncated == "max_seconds" and video.info.duration == pytest.approx(3600, abs=1)
    with pytest.raises(VideoTooLong) as err:  # the server's: a declared duration over the cap is refused
        open_video(data, VideoLimits(refuse_seconds=60))
    assert (err.value.status, err.value.code) == (422, "video_too_long")


@pytest.mark.no_model_needed
def test_a_tiny_file_of_very_many_frames_stops_at_the_decoded_frames_cap():
    data = encode([np.zeros((48, 64, 3), np.uint8)] * 3000, "mp4-h264", fps=1000)  # 3 s, 3 000 frames
    assert len(data) < 200_000
    limits = VideoLimits(max_decoded_frames=500)
    times, video = sampled_times(data, 4, limits)
    assert video.truncated == "max_decoded_frames" and video.decoded == 501
    assert times == pytest.approx([0.0, 0.25], abs=0.002)  # 500 frames at 1 000 a second is 0.5 s
    times, video = sampled_times(data, 1000, VideoLimits(max_frames=50))
    assert len(times) == 50 and video.truncated == "max_frames"


@pytest.mark.no_model_needed
def test_fps_must_be_positive(walk):
    with open_video(encode(walk.frames[:2], "mp4-h264")) as video, pytest.raises(ValueError):
        next(iter(video.sampled(0)))


# -- the report ---------------------------------------------------------------------------------------


@pytest.mark.no_model_needed
def test_segments_smooth_flicker_and_fold_short_runs():
    labels = ["neutral", "happy"]
    # 4 s at 4 fps: neutral, one flickering happy frame, then 2 s of happy
    tops = [0, 0, 0, 0, 0, 1, 0, 0] + [1] * 8
    scores = np.array([[0.9, 0.1] if t == 0 else [0.1, 0.9] for t in tops])
    times = [i * 0.25 for i in range(16)]
    segs = segments(times, scores, labels, fps=4, smooth_s=0.0, min_segment_s=1.0)
    assert [(s.emotion, s.start, s.end, s.frames) for s in segs] == [("neutral", 0.0, 2.0, 8), ("happy", 2.0, 4.0, 8)]
    assert segments([], np.zeros((0, 2)), labels, fps=4) == []


def test_the_report_tracks_two_people_with_their_own_ids_and_expressions(analyzer, two):
    data = encode(two.frames, "mp4-h264", fps=12)
    seen = []
    report = analyzer.video(data, fps=4, on_frame=seen.append)
    assert len(report.frames) == len(seen) == 8 and report.truncated is None
    assert report.frames[0].mode == "full" and "tracked" in {f.mode for f in report.frames}
    # both people found in the first frame, each keeps one id while the tracker follows them
    first = {r.face.track for r in report.frames[0].faces}
    assert first == {1, 2}
    for track in report.tracks[:2]:
        boxes = [r.face.box for f in report.frames for r in f.faces if r.face.track == track.id]
        xs = [b[0] + b[2] / 2 for b in boxes]
        assert len(boxes) >= 4 and (xs == sorted(xs) or xs == sorted(xs, reverse=True))  # one walks each way
    main = report.main_track
    assert main is not None and main.dominant in report.labels
    d = report.to_dict()
    assert d["emotion"] == main.dominant and d["analysed_frames"] == 8 and len(d["frames"]) == 8
    assert {t["id"] for t in d["tracks"]} >= {1, 2}
    assert all(abs(sum(t["mean_scores"].values()) - 1) < 0.01 for t in d["tracks"])
    assert all(s["start"] < s["end"] for t in d["tracks"] for s in t["segments"])
    # the astronaut is smiling: the model says so, in the timeline too
    astronaut = next(t for t in report.tracks if t.id == 1)
    assert astronaut.dominant == "happy"
    csv_rows = report.timeline_csv().splitlines()
    assert csv_rows[0].startswith("time,frame,track,x,y,w,h,emotion,confident," + ",".join(report.labels))
    assert len(csv_rows) == 1 + sum(len(f.faces) for f in report.frames)


def test_a_clip_without_faces_is_a_report_with_no_tracks(analyzer):
    from skimage import data

    frame = np.ascontiguousarray(data.coffee()[:360, :480])
    report = analyzer.video(encode([frame] * 8, "webm-vp8", fps=4), fps=4)
    assert len(report.frames) == 8 and report.tracks == [] and report.to_dict()["emotion"] is None
    assert report.timeline_csv().count("\n") == 1  # the header only
    assert analyzer.video_reply(report).id.startswith("noface.")


def test_report_files_csv_json_and_chart(analyzer, walk, tmp_path):
    import json

    report = analyzer.video(encode(walk.frames, "mp4-h264"), fps=4)
    written = report.write(tmp_path / "out")
    assert set(written) == {"timeline", "report", "chart"}
    body = json.loads(written["report"].read_text())
    assert body["tracks"][0]["id"] == 1 and body["video"]["codec"] == "h264"
    png = written["chart"].read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5_000


def test_report_without_matplotlib_has_no_chart(analyzer, walk, tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import -> ImportError, as if not installed
    report = build_report(
        [],
        video=open_video(encode(walk.frames[:2], "mp4-h264")).info,
        model=analyzer.model,
        labels=analyzer.labels,
        fps=4,
    )
    written = report.write(tmp_path)
    assert "chart" not in written and not (tmp_path / "chart.png").exists()

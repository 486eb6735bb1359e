"""benchmarks/videopeers.py's pure parts (issue 25 item 5): the label mapping, recall and agreement
against the clips' true boxes, and the section's markdown. None of it needs fer or .venv-peers."""

from __future__ import annotations

import json

from benchmarks import videopeers as vp


def face(box, label, label7=None):
    return {"box": box, "label": label, "label7": label7 or label}


def test_top7_leaves_contempt_out():
    scores = {"neutral": 0.2, "happy": 0.1, "contempt": 0.6, "sad": 0.05, "angry": 0.05}
    assert vp.top7(scores) == "neutral"
    assert vp.top7({**scores, "happy": 0.3}) == "happy"
    assert set(vp.FER_LABELS) == {"angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"}


def test_match_is_one_to_one_at_the_threshold():
    truth = {1: [0, 0, 100, 100], 2: [200, 0, 100, 100]}
    boxes = [[5, 5, 100, 100], [0, 0, 100, 100], [240, 0, 100, 100], [600, 0, 50, 50]]
    # the exact box wins person 1; [240, 0, ...] overlaps person 2 at 60/140 = 0.43 < 0.5
    assert vp.match_boxes(truth, boxes) == {1: 1}
    assert vp.match_boxes(truth, boxes, min_iou=0.4) == {1: 1, 2: 2}


def scenes():
    truth = [{1: [0, 0, 100, 100], 2: [200, 0, 100, 100]}, {1: [10, 0, 100, 100]}, {}]
    fer = [
        {"index": 0, "faces": [face([0, 0, 100, 100], "happy"), face([200, 0, 100, 100], "angry")]},
        {"index": 1, "faces": [face([300, 200, 50, 50], "sad")]},  # misses person 1, one extra box
    ]
    ours = [
        {
            "index": 0,
            "faces": [face([2, 0, 100, 100], "happy"), face([200, 2, 100, 100], "contempt", label7="neutral")],
        },
        {"index": 1, "faces": [face([10, 0, 100, 100], "surprise")]},
    ]
    return truth, {"fer": fer, "ours": ours}


def test_score_counts_recall_extras_and_agreement():
    truth, systems = scenes()
    c = vp.score(truth, systems)
    assert c["frames"] == 2 and c["truth_faces"] == 3 and c["same_frames"]
    f, o = c["systems"]["fer"], c["systems"]["ours"]
    assert (f["found"], f["extra"], f["missed"]) == (2, 1, [[1, 1]])
    assert "both_found" not in f  # the reference is not compared with itself
    assert (o["found"], o["extra"], o["missed"]) == (3, 0, [])
    # compared where both found the true face: frame 0's two people (frame 1: fer missed person 1)
    assert o["both_found"] == 2
    assert o["agree7"] == 1  # happy/happy; contempt -> neutral over the 7 labels, fer says angry
    assert o["agree_strict"] == 1 and o["contempt"] == 1
    assert dict(o["disagreements"]) == {"neutral/angry": 1}
    assert dict(o["disagree_persons"]) == {"2": 1}
    assert dict(o["labels"]) == {"happy": 1, "contempt": 1, "surprise": 1}

    r = vp.rates(c)
    assert r["systems"]["ours"]["recall"] == 1.0
    assert r["systems"]["fer"]["recall"] == round(2 / 3, 4)
    assert r["systems"]["ours"]["agreement7"] == 0.5
    assert "agreement7" not in r["systems"]["fer"]
    json.dumps(r)  # what run() saves


def test_contempt_counts_against_strict_agreement_only():
    truth = [{1: [0, 0, 100, 100]}]
    systems = {
        "fer": [{"index": 0, "faces": [face([0, 0, 100, 100], "neutral")]}],
        "ours": [{"index": 0, "faces": [face([0, 0, 100, 100], "contempt", label7="neutral")]}],
    }
    o = vp.rates(vp.score(truth, systems))["systems"]["ours"]
    assert (o["agreement7"], o["agreement_strict"]) == (1.0, 0.0)


def test_frames_analysed_by_one_system_only_are_flagged():
    truth, systems = scenes()
    systems["ours"] = systems["ours"][:1]
    c = vp.score(truth, systems)
    assert not c["same_frames"]
    assert c["systems"]["ours"]["missed"] == [[1, 1]]  # a frame it did not analyse: its faces missed


def test_combine_sums_clips():
    truth, systems = scenes()
    one = vp.score(truth, systems)
    both = vp.rates(vp.combine([one, vp.score(truth, systems)]))
    assert both["truth_faces"] == 6 and both["frames"] == 4
    o = both["systems"]["ours"]
    assert (o["found"], o["both_found"], o["agree7"], o["contempt"]) == (6, 4, 2, 2)
    assert o["disagreements"] == {"neutral/angry": 2}
    assert o["recall"] == 1.0 and o["agreement7"] == 0.5
    assert "missed" not in o and "disagree_persons" not in o


def result():
    truth, systems = scenes()
    row = vp.rates(vp.score(truth, systems))
    for name, s in row["systems"].items():
        s["analysed"] = 2
        s["ms_per_frame"] = (
            {"wall": 600.0, "cpu": 610.0, "detect_wall": 590.0} if name == "fer" else {"wall": 20.0, "cpu": 19.0}
        )
        if name != "fer":
            s["tracked_frames"] = 1
    return {
        "clip": {
            "scenes": ["walk"],
            "fps": 12,
            "seconds": 6,
            "encoding": "mp4-h264",
            "size": [480, 360],
            "frequency": 3,
            "analysed_fps": 4.0,
        },
        "repeat": 3,
        "warmup": 1,
        "min_iou": 0.5,
        "load_average": [1.5, 1.7],
        "peer_versions": {"fer": "22.4.0"},
        "our_versions": {"onnxruntime": "1"},
        "our_model": "ferplus_mobilenet_cal",
        "full_every": 8,
        "rows": {"walk": row},
        "overall": row,
    }


def test_markdown_names_both_paths_and_the_numbers():
    text = vp.markdown(result())
    assert "`fer.Video(path).analyze(FER(mtcnn=True)" in text and "`Analyzer().video(path, fps=4)`" in text
    assert (
        "| walk | fer, `Video.analyze(FER(mtcnn=True))` | 2 | **600.0** (590.0 in `detect_emotions`) | 610.0 |" in text
    )
    assert (
        "| **all** | ours, `Analyzer().video()` (tracker) | 2 (1) | **20.0** | 19.0 | 100.0% (3 of 3) | 0 | 2 |" in text
    )
    assert "fer takes **30x** our wall time" in text
    assert "1 of 2 faces compared" in text  # contempt, said
    assert "cv2.waitKey" in text  # what it took to run fer's video path, said


def test_peer_script_compiles():
    compile(vp.PEER_SCRIPT, "peer_script", "exec")
    assert "@@PEERS_JSON@@" in vp.PEER_SCRIPT


def test_run_aggregates_both_sides(monkeypatch):
    """run() end to end with the two measurements faked (fer found every true face and said happy; ours
    the same with one contempt): what it saves is JSON and its markdown renders."""
    from benchmarks import clips as clips_mod

    monkeypatch.setattr(vp, "SCENES", ("walk",))
    monkeypatch.setattr(vp, "SECONDS", 1)
    truth = clips_mod.make_clip("walk", n_frames=vp.CLIP_FPS).truth
    seen = {}

    def frames(label):
        return [
            {"index": i, "faces": [{"box": b, "label": label, "label7": "neutral"} for b in truth[i].values()]}
            for i in range(0, vp.CLIP_FPS, vp.FREQUENCY)
        ]

    def peer(script, *args, **kw):
        seen["clips"] = args[4:]
        assert all(a.endswith(".mp4") for a in seen["clips"])
        fr = [
            {"index": f["index"], "faces": [{"box": x["box"], "label": "happy"} for x in f["faces"]]}
            for f in frames("")
        ]
        return {
            "versions": {"fer": "22.4.0"},
            "clips": {
                "walk.mp4": {
                    "frames": fr,
                    "wall_ms": [2000.0, 2400.0],
                    "cpu_ms": [2100.0, 2200.0],
                    "analysed": 4,
                    "analysed_per_run": [4, 4],
                    "detect_wall_ms": [1900.0, 2300.0],
                    "detect_cpu_ms": [2000.0, 2100.0],
                }
            },
        }

    def ours(paths):
        assert all(p.exists() for p in paths.values())  # the clips are on disk while both run
        run = {"wall_ms": [80.0], "cpu_ms": [76.0], "analysed": 4, "tracked_frames": 3}
        return {
            "versions": {"onnxruntime": "1"},
            "model": "m",
            "full_every": 8,
            "systems": {
                "ours": {"walk": {**run, "frames": frames("contempt")}},
                "ours_full": {"walk": {**run, "frames": frames("happy")}},
            },
        }

    monkeypatch.setattr(vp, "run_peer_script", peer)
    monkeypatch.setattr(vp, "_ours", ours)
    res = vp.run(None)
    json.dumps(res)
    from pathlib import Path

    assert not any(Path(p).exists() for p in seen["clips"])  # the temporary clips are gone
    o = res["overall"]["systems"]
    assert o["fer"]["ms_per_frame"] == {"wall": 550.0, "cpu": 537.5, "detect_wall": 525.0}
    assert o["ours"]["ms_per_frame"] == {"wall": 20.0, "cpu": 19.0}
    assert o["ours"]["recall"] == o["fer"]["recall"] == 1.0
    assert o["ours"]["agreement7"] == 0.0 and o["ours"]["contempt"] == o["ours"]["both_found"] > 0
    assert o["ours_full"]["agreement_strict"] == 1.0
    assert "| **all** | ours, full detection every frame | 4 (3) |" in vp.markdown({**res, "date": "", "command": ""})


def test_runs_and_what_the_tracker_missed():
    assert vp.runs([]) == ""
    assert vp.runs([21, 3, 6, 9]) == "3-9, 21"
    res = {
        "rows": {
            "two_people": {
                "systems": {
                    "ours": {"missed": [[42, 1], [45, 1], [48, 1], [60, 2]]},
                    "ours_full": {"missed": [[60, 2]]},
                }
            },
            "walk": {"systems": {"ours": {"missed": []}, "ours_full": {"missed": []}}},
        }
    }
    assert vp.tracker_misses(res) == ["two_people person 1, frames 42-48 (3 analysed frames)"]

"""Video side by side with `fer` (issue 25, item 5): the same clips through fer's video analysis and ours.

The clips are benchmarks/clips.py's moving real faces with their true face boxes (`walk`: one person
walking closer; `two_people` crossing; `three_people`), SECONDS long at CLIP_FPS frames a second,
encoded here as MP4/H.264 with PyAV into a temporary folder (deleted afterwards; nothing committed).
Both systems read the same files and analyse the same frames: every FREQUENCY-th frame, i.e.
CLIP_FPS / FREQUENCY = 4 frames a second.

- fer 22.4.0, in .venv-peers (benchmarks/setup_peers.sh), a subprocess run first: its documented video
  path, `fer.Video(path).analyze(FER(mtcnn=True), frequency=FREQUENCY, ...)` (OpenCV decodes every
  frame, fer's MTCNN + mini-Xception run on every FREQUENCY-th), with fer's writing of annotated
  frames, a zip of them and an output video turned off (`save_frames`, `save_video`,
  `annotate_frames`, `zip_images` False: ours writes nothing either) and `output="pandas"` (fer's
  "csv" writes data.csv into the working directory). Two things are needed to run it at all and are
  said in the section: `Video.analyze` calls `cv2.waitKey(1)` after every analysed frame (and
  `cv2.destroyAllWindows()` on deletion), which headless OpenCV (the build the peer venv has: fer's
  declared GUI build needs libGL/GTK) refuses with cv2.error, so the peer script replaces those two
  with no-ops, what a headless fer user must do; and fer drops frames without a face from what it
  returns, so the detector it is given is fer's own FER wrapped to record every call (its result
  and the time fer's per-frame `detect_emotions` took, the path a fer user without `Video` writes).
- ours: `Analyzer().video(path, fps=4)` (app/analyzer.py), the served default model and the live
  tracker (full detection every TRACK_FULL_EVERY frames or when a face is lost); and the same with
  TRACK_FULL_EVERY = 1, full detection on every analysed frame as fer does (what the tracker saves,
  and what it misses).

Timed per whole clip (WARMUP untimed runs, then REPEAT timed), divided by the frames analysed: wall
ms (time.perf_counter) and CPU ms of the whole process, all threads (time.process_time); the two never
share the CPU. Faces are matched one to one to the clip's true boxes at IoU >= MIN_IOU (greedy by
overlap); recall = true faces found / true faces; extra = boxes matching no true face. Labels are
compared on faces both systems found: fer has FER-2013's 7 labels, our default model FER+'s 8 (the
same names plus contempt); our label is the top of our scores over the 7 shared labels (contempt's
score dropped), and the strict figure counts our served label, contempt included, against fer's.
"""

from __future__ import annotations

import os
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np

from .common import REPO, machine, timed
from .peers import run_peer_script

SCENES = ("walk", "two_people", "three_people")
CLIP_FPS = 12
SECONDS = 6
FREQUENCY = 3  # fer's `frequency`: every 3rd frame of a 12 frames/s clip is 4 frames/s, our fps=4
FPS = CLIP_FPS / FREQUENCY
REPEAT = int(os.environ.get("BENCH_VIDEOPEERS_REPEAT", "3"))
WARMUP = 1
MIN_IOU = 0.5
FER_LABELS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")

# Runs inside .venv-peers. argv: path of benchmarks/common.py, repeat, warmup, frequency, then clip paths.
PEER_SCRIPT = r"""
import importlib.util, json, os, sys, tempfile, time
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
common_py, repeat, warmup, frequency = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
clips = sys.argv[5:]

spec = importlib.util.spec_from_file_location("bench_common", common_py)
common = importlib.util.module_from_spec(spec)
spec.loader.exec_module(common)  # the same timing loop as every other benchmark

import importlib.metadata as md
import cv2, numpy as np, tensorflow as tf
from fer import FER, Video

# fer.Video.analyze polls the keyboard after every analysed frame (cv2.waitKey(1)) and closes windows
# on deletion; headless OpenCV raises cv2.error for both. No window is ever opened: "no key pressed".
cv2.waitKey = lambda delay=0: -1
cv2.destroyAllWindows = lambda: None

class Recorder:
    # fer's own FER, every call kept in order (fer.Video drops frames without a face from its results)
    def __init__(self, fer):
        self.fer = fer
        self.reset()
    def reset(self):
        self.calls, self.wall, self.cpu = [], 0.0, 0.0
    def _get_labels(self):
        return self.fer._get_labels()
    def detect_emotions(self, frame):
        t, c = time.perf_counter(), time.process_time()
        res = self.fer.detect_emotions(frame)
        self.wall += time.perf_counter() - t
        self.cpu += time.process_time() - c
        self.calls.append(res)
        return res

detector = Recorder(FER(mtcnn=True))
out = {"versions": {"fer": md.version("fer"), "mtcnn": md.version("mtcnn"), "tensorflow": tf.__version__,
                    "opencv": cv2.__version__, "numpy": np.__version__, "python": sys.version.split()[0]},
       "clips": {}}
with tempfile.TemporaryDirectory() as outdir:
    for path in clips:
        detect_wall, detect_cpu, calls = [], [], []
        def once():
            detector.reset()
            video = Video(path, outdir=outdir)
            video.analyze(detector, frequency=frequency, save_frames=False, save_video=False,
                          annotate_frames=False, zip_images=False, output="pandas")
            detect_wall.append(detector.wall * 1e3)
            detect_cpu.append(detector.cpu * 1e3)
            calls.append(len(detector.calls))
        wall, cpu = common.timed(once, repeat, warmup)
        frames = [{"index": k * frequency,
                   "faces": [{"box": [int(v) for v in r["box"]], "scores": r["emotions"],
                              "label": max(r["emotions"], key=r["emotions"].get)} for r in res]}
                  for k, res in enumerate(detector.calls)]
        out["clips"][os.path.basename(path)] = {
            "frames": frames, "wall_ms": wall, "cpu_ms": cpu, "analysed": calls[-1], "analysed_per_run": calls[-repeat:],
            "detect_wall_ms": detect_wall[-repeat:], "detect_cpu_ms": detect_cpu[-repeat:]}
print("@@PEERS_JSON@@" + json.dumps(out), flush=True)
"""


# -- pure helpers (tests/benchmarks/test_videopeers.py) --------------------------------------------------


def top7(scores: dict[str, float]) -> str:
    """Our scores as a fer label: the top of the 7 FER-2013 labels, contempt (FER+ only) left out."""
    return max(FER_LABELS, key=lambda label: scores.get(label, float("-inf")))


def match_boxes(truth: dict, boxes: list, min_iou: float = MIN_IOU) -> dict:
    """True persons -> index of the box over them, one to one, greedily by IoU (at least `min_iou`)."""
    from app.faces import box_iou

    pairs = sorted(
        ((box_iou(box, tbox), person, k) for person, tbox in truth.items() for k, box in enumerate(boxes)),
        key=lambda p: p[0],
        reverse=True,
    )
    out: dict = {}
    used: set[int] = set()
    for overlap, person, k in pairs:
        if overlap < min_iou:
            break
        if person in out or k in used:
            continue
        out[person] = k
        used.add(k)
    return out


def _empty(system: str, reference: str) -> dict:
    c: dict = {"found": 0, "extra": 0, "labels": Counter(), "missed": []}
    if system != reference:
        c.update(
            both_found=0, agree7=0, agree_strict=0, contempt=0, disagreements=Counter(), disagree_persons=Counter()
        )
    return c


def score(truth: list[dict], systems: dict[str, list[dict]], reference: str = "fer", min_iou: float = MIN_IOU) -> dict:
    """Counts for one clip. `truth[i]`: frame i's person -> [x, y, w, h]; `systems`: name -> analysed
    frames, [{"index": i, "faces": [{"box", "label", "label7"}]}] ("label7": the label over fer's 7,
    see `top7`; fer's own label for fer). Per system: true faces found, extra boxes (matching no true
    face), its labels on the faces found, the [frame, person] it missed; for every system but
    `reference`, on the true faces both it and `reference` found: how many, and how many labels agree
    over the 7 labels, strictly (its served label), and how many it called contempt."""
    frames = {name: {f["index"]: f["faces"] for f in fs} for name, fs in systems.items()}
    indices = sorted(set().union(*frames.values())) if frames else []
    out: dict = {
        "frames": len(indices),
        "truth_faces": 0,
        "same_frames": all(set(f) == set(indices) for f in frames.values()),
        "systems": {name: _empty(name, reference) for name in systems},
    }
    for i in indices:
        people = truth[i]
        out["truth_faces"] += len(people)
        matched = {}
        for name, by_index in frames.items():
            faces = by_index.get(i, [])
            m = match_boxes(people, [f["box"] for f in faces], min_iou)
            matched[name] = {person: faces[k] for person, k in m.items()}
            c = out["systems"][name]
            c["found"] += len(m)
            c["extra"] += len(faces) - len(m)
            c["labels"].update(faces[k]["label"] for k in m.values())
            c["missed"] += [[i, person] for person in people if person not in m]
        ref = matched.get(reference, {})
        for name in frames:
            if name == reference:
                continue
            c = out["systems"][name]
            for person, a in matched[name].items():
                b = ref.get(person)
                if b is None:
                    continue
                c["both_found"] += 1
                c["agree7"] += a["label7"] == b["label"]
                c["agree_strict"] += a["label"] == b["label"]
                c["contempt"] += a["label"] == "contempt"
                if a["label7"] != b["label"]:
                    c["disagreements"][f"{a['label7']}/{b['label']}"] += 1
                    c["disagree_persons"][str(person)] += 1
    return out


def combine(counts: list[dict]) -> dict:
    """Clips' counts summed (who was missed or disagreed on is per clip and left out)."""
    out = {"frames": 0, "truth_faces": 0, "same_frames": True, "systems": {}}
    for c in counts:
        out["frames"] += c["frames"]
        out["truth_faces"] += c["truth_faces"]
        out["same_frames"] = out["same_frames"] and c["same_frames"]
        for name, s in c["systems"].items():
            total = out["systems"].setdefault(name, {})
            for key, value in s.items():
                if key in ("missed", "disagree_persons"):
                    continue
                total[key] = (
                    total[key] + value if key in total else (Counter(value) if isinstance(value, Counter) else value)
                )
    return out


def rates(c: dict) -> dict:
    """Per system: recall, and against the reference the agreement over the 7 labels and the strict
    one (None where nothing was compared); Counters as plain dicts, most common first."""

    def ratio(a: int, b: int) -> float | None:
        return round(a / b, 4) if b else None

    out = {k: v for k, v in c.items() if k != "systems"}
    out["systems"] = {}
    for name, s in c["systems"].items():
        r = {k: dict(v.most_common()) if isinstance(v, Counter) else v for k, v in s.items()}
        r["recall"] = ratio(s["found"], c["truth_faces"])
        if "both_found" in s:
            r["agreement7"] = ratio(s["agree7"], s["both_found"])
            r["agreement_strict"] = ratio(s["agree_strict"], s["both_found"])
        out["systems"][name] = r
    return out


# -- the measurement -------------------------------------------------------------------------------------

# Our two rows: the served setting, and full detection on every analysed frame (what the tracker saves).
OURS = {"ours": {}, "ours_full": {"TRACK_FULL_EVERY": 1}}


def _ours(paths: dict[str, Path]) -> dict:
    from importlib.metadata import version

    import onnxruntime

    from app.analyzer import Analyzer
    from app.tracking import full_every_at

    out: dict = {
        "versions": {"onnxruntime": onnxruntime.__version__, "av": version("av"), "numpy": version("numpy")},
        "systems": {},
    }
    for system, config in OURS.items():
        analyzer = Analyzer(config=config)
        out["model"] = analyzer.model
        # the clip's own interval (app/tracking.full_every_at): as often in time as the live page
        out.setdefault("full_every", full_every_at(FPS, int(analyzer.config["TRACK_FULL_EVERY"])))
        clips = out["systems"][system] = {}
        for name, path in paths.items():
            reports: list = []
            wall, cpu = timed(
                lambda a=analyzer, path=path, reports=reports: reports.append(a.video(path, fps=FPS)), REPEAT, WARMUP
            )
            report = reports[-1]
            clips[name] = {
                "frames": [
                    {
                        "index": f.index,
                        "faces": [
                            {
                                "box": [round(float(v), 1) for v in r.face.box],
                                "label": r.emotion,
                                "label7": top7(r.scores),
                            }
                            for r in f.faces
                        ],
                    }
                    for f in report.frames
                ],
                "wall_ms": wall,
                "cpu_ms": cpu,
                "analysed": len(report.frames),
                "tracked_frames": sum(f.mode == "tracked" for f in report.frames),
            }
    return out


def run(args) -> dict:
    from .clips import encode, make_clip

    clips = {name: make_clip(name, n_frames=CLIP_FPS * SECONDS) for name in SCENES}
    with tempfile.TemporaryDirectory(prefix="videopeers-") as tmp:
        paths = {}
        for name, clip in clips.items():
            paths[name] = Path(tmp) / f"{name}.mp4"
            paths[name].write_bytes(encode(clip.frames, "mp4-h264", fps=CLIP_FPS))
        load = [round(os.getloadavg()[0], 2)]
        # first, in its own process: the two never share the CPU
        peers = run_peer_script(
            PEER_SCRIPT,
            str(REPO / "benchmarks" / "common.py"),
            str(REPEAT),
            str(WARMUP),
            str(FREQUENCY),
            *map(str, paths.values()),
        )
        ours = _ours(paths)
        load.append(round(os.getloadavg()[0], 2))
    runs: dict = {"fer": {}}
    for name in SCENES:
        theirs = peers["clips"][f"{name}.mp4"]
        runs["fer"][name] = {
            **theirs,
            "frames": [
                {"index": f["index"], "faces": [{**x, "label7": x["label"]} for x in f["faces"]]}
                for f in theirs["frames"]
            ],
        }
    runs.update(ours["systems"])
    rows, counts = {}, []
    totals = {system: {"wall": 0.0, "cpu": 0.0, "detect_wall": 0.0, "frames": 0} for system in runs}
    for name, clip in clips.items():
        c = score(clip.truth, {system: runs[system][name]["frames"] for system in runs})
        counts.append(c)
        row = rates(c)
        for system, r in runs.items():
            m = r[name]
            n = m["analysed"]
            med = {"wall": float(np.median(m["wall_ms"])), "cpu": float(np.median(m["cpu_ms"]))}
            if "detect_wall_ms" in m:
                med["detect_wall"] = float(np.median(m["detect_wall_ms"]))
            for k, v in med.items():
                totals[system][k] += v
            totals[system]["frames"] += n
            s = row["systems"][system]
            s["analysed"] = n
            s["ms_per_frame"] = {k: round(v / n, 1) for k, v in med.items()}
            s["calls_ms"] = {k: m[k] for k in ("wall_ms", "cpu_ms", "detect_wall_ms", "detect_cpu_ms") if k in m}
            if "tracked_frames" in m:
                s["tracked_frames"] = m["tracked_frames"]
        rows[name] = row
    overall = rates(combine(counts))
    for system, t in totals.items():
        s = overall["systems"][system]
        s["analysed"] = t["frames"]
        s["ms_per_frame"] = {k: round(t[k] / t["frames"], 1) for k in ("wall", "cpu", "detect_wall") if t[k]}
        if system != "fer":
            s["tracked_frames"] = sum(rows[name]["systems"][system]["tracked_frames"] for name in rows)
    size = clips[SCENES[0]].frames[0].shape
    return {
        "machine": machine(),
        "load_average": load,
        "clip": {
            "scenes": list(SCENES),
            "fps": CLIP_FPS,
            "seconds": SECONDS,
            "encoding": "mp4-h264",
            "size": [size[1], size[0]],
            "frequency": FREQUENCY,
            "analysed_fps": FPS,
        },
        "repeat": REPEAT,
        "warmup": WARMUP,
        "min_iou": MIN_IOU,
        "peer_versions": peers["versions"],
        "our_versions": ours["versions"],
        "our_model": ours["model"],
        "full_every": ours["full_every"],
        "rows": rows,
        "overall": overall,
    }


def runs(frames: list[int]) -> str:
    """Frame numbers as ranges: [3, 6, 9, 21] -> "3-9, 21" (consecutive = FREQUENCY apart)."""
    out: list[list[int]] = []
    for i in sorted(frames):
        if out and i - out[-1][1] <= FREQUENCY:
            out[-1][1] = i
        else:
            out.append([i, i])
    return ", ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in out)


def tracker_misses(res: dict, tracked: str = "ours", full: str = "ours_full") -> list[str]:
    """Per clip and person, the frames the tracked row missed and full detection found."""
    out = []
    for clip, row in res["rows"].items():
        systems = row["systems"]
        if tracked not in systems or full not in systems:
            continue
        found_by_full = {tuple(m) for m in systems[tracked].get("missed", [])} - {
            tuple(m) for m in systems[full].get("missed", [])
        }
        for person in sorted({p for _, p in found_by_full}):
            frames = [i for i, p in found_by_full if p == person]
            out.append(f"{clip} person {person}, frames {runs(frames)} ({len(frames)} analysed frames)")
    return out


def _pct(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.1f}%"


NAMES = {
    "fer": "fer, `Video.analyze(FER(mtcnn=True))`",
    "ours": "ours, `Analyzer().video()` (tracker)",
    "ours_full": "ours, full detection every frame",
}


def markdown(res: dict) -> str:
    from app import DEFAULTS
    from app.tracking import LIVE_FPS

    clip = res["clip"]
    pv = ", ".join(f"{k} {v}" for k, v in res["peer_versions"].items())
    ov = ", ".join(f"{k} {v}" for k, v in res["our_versions"].items())
    fps = f"{clip['analysed_fps']:g}"
    lines = [
        f"The same files through both: benchmarks/clips.py's {', '.join(f'`{s}`' for s in clip['scenes'])} "
        f"({clip['size'][0]}x{clip['size'][1]}, {clip['seconds']} s at {clip['fps']} frames/s, "
        f"{clip['encoding']} made with PyAV at run time), one frame in {clip['frequency']} analysed "
        f"({fps} frames/s) by each, the same frames. **fer**: `fer.Video(path).analyze(FER(mtcnn=True), "
        f"frequency={clip['frequency']}, save_frames=False, save_video=False, annotate_frames=False, "
        "zip_images=False, output='pandas')`, its own video path (OpenCV decodes, fer's MTCNN + "
        "mini-Xception on each analysed frame), in `.venv-peers`, run first in its own process. **ours**: "
        f"`Analyzer().video(path, fps={fps})`, default model `{res['our_model']}`, the live tracker (a "
        f"full detection every {res['full_every']} analysed frames or when a face is lost), and the same "
        "with `config={'TRACK_FULL_EVERY': 1}` (full detection on every frame, as fer does). Per clip: "
        f"{res['warmup']} warm-up run, then the median of {res['repeat']} timed runs of the whole clip "
        "(decoding included) divided by the frames analysed; CPU ms is process time over all threads. "
        f"Faces matched one to one to the clip's true boxes at IoU >= {res['min_iou']}; *agreement* is "
        "with fer's label on the true faces both found.",
        "",
        f"Peer stack: {pv}. Ours: {ov}. Load average before / after: "
        f"{' / '.join(map(str, res.get('load_average', [])))} (2 cores, shared with other work).",
        "",
        "| clip | system | frames (tracked) | wall ms/frame | CPU ms/frame | recall | extra boxes | "
        "compared with fer | agreement (7 labels) | agreement (strict) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for clip_name, row in [*res["rows"].items(), ("**all**", res["overall"])]:
        for system, s in row["systems"].items():
            ms = s["ms_per_frame"]
            wall = f"**{ms['wall']}**" + (f" ({ms['detect_wall']} in `detect_emotions`)" if "detect_wall" in ms else "")
            tracked = f" ({s['tracked_frames']})" if "tracked_frames" in s else ""
            lines.append(
                f"| {clip_name} | {NAMES.get(system, system)} | {s['analysed']}{tracked} | {wall} | {ms['cpu']} | "
                f"{_pct(s['recall'])} ({s['found']} of {row['truth_faces']}) | {s['extra']} | "
                f"{s.get('both_found', '-')} | **{_pct(s.get('agreement7'))}** | {_pct(s.get('agreement_strict'))} |"
            )
    o = res["overall"]["systems"]
    fer, ours, full = o["fer"], o["ours"], o.get("ours_full")
    labels = {s: ", ".join(f"{k} {v}" for k, v in o[s]["labels"].items()) or "-" for s in o}
    dis = ", ".join(f"{k} {v}" for k, v in list(ours["disagreements"].items())[:6]) or "none"
    who = (
        ", ".join(
            f"{clip} person {p} {n}"
            for clip, row in res["rows"].items()
            for p, n in row["systems"]["ours"].get("disagree_persons", {}).items()
        )
        if any("disagree_persons" in row["systems"]["ours"] for row in res["rows"].values())
        else None
    ) or "none"
    lines += [
        "",
        f"Per analysed frame, fer takes **{fer['ms_per_frame']['wall'] / ours['ms_per_frame']['wall']:.0f}x** "
        f"our wall time ({fer['ms_per_frame']['cpu'] / ours['ms_per_frame']['cpu']:.0f}x the CPU time)"
        + (
            f", and {fer['ms_per_frame']['wall'] / full['ms_per_frame']['wall']:.0f}x ours with full detection "
            "on every frame"
            if full
            else ""
        )
        + f". Labels on the true faces found: fer {labels['fer']}; ours {labels['ours']}. Where ours and "
        f"fer differ (ours/fer): {dis}" + (f"; by clip and person (the clips' person ids): {who}" if who else "") + ".",
        "",
        f"What the tracker costs in faces: it found {ours['found']} true faces and full detection on every "
        f"frame {full['found'] if full else '-'}; the difference: {'; '.join(tracker_misses(res)) or 'none'}. "
        "A face that appears, or comes out from behind another, between two full detections is not "
        f"looked for until the next one: up to {res['full_every']} analysed frames, "
        f"{res['full_every'] / clip['analysed_fps']:g} s of video at {fps} frames/s (the live page, at "
        f"{LIVE_FPS} frames/s, waits {DEFAULTS['TRACK_FULL_EVERY'] / LIVE_FPS:.2f} s: a clip looks for new faces as "
        "often in time, app/tracking.full_every_at).",
        "",
        "How labels are compared: fer has FER-2013's 7 labels, our FER+ model the same 7 plus contempt. "
        "*Agreement (7 labels)* takes our top label over the 7 shared ones (contempt's score left out), "
        "*strict* our served label as it is (a face we call contempt counts as a disagreement: "
        f"{ours['contempt']} of {ours['both_found']} faces compared). The clips carry true boxes, not "
        "true expressions (pasted photos), so agreement says how often the two tell the same story, not "
        "which one is right; accuracy on labelled test sets is in the sections above.",
        "",
        "To run fer's video path at all, two things: `Video.analyze` calls `cv2.waitKey(1)` after every "
        "analysed frame (and `cv2.destroyAllWindows()` when the Video is deleted), which headless "
        "OpenCV refuses with `cv2.error` (fer declares OpenCV's GUI build, which needs libGL/GTK), so the "
        "peer script makes both no-ops, as a fer user on a server must; and fer's result drops frames "
        "without a face, so the FER it is given is wrapped to record every call, which also times fer's "
        "per-frame `detect_emotions` alone (in brackets: nearly all of fer's time; the rest is OpenCV "
        "decoding every frame and fer's loop).",
    ]
    return "\n".join(lines)

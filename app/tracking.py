"""Live tracking (issue 23): a face found in the last frame is found again around its box, not searched
for from scratch.

A live client sends back what the last answer told it, as the `track` field of /api/predict:

    {"faces": [{"id": 3, "box": [x, y, w, h]}, ...], "since_full": 4, "age_ms": 80}

`faces` are the previous answer's faces (their track ids and boxes, in pixels of the posted frame),
`since_full` the answer's own count of frames since the last full detection, `age_ms` how long ago
that answer came. The server keeps nothing between requests (any worker answers any frame): the hint
is all it knows, and it is untrusted input. `locate` decides, per frame:

- **tracked**: every hinted box is re-found by MTCNN's last network alone (`FaceDetector.refind`, about
  a millisecond) and each face keeps its id;
- **full**: the whole cascade runs (`FaceDetector.detect`), and its faces take the ids of the hinted
  boxes they overlap; new faces get new ids. That happens when there is no usable hint, every
  `full_every` frames (a face that walks in is found within that many frames), when the hint is stale
  (older than `max_age_ms`), when a hinted box is out of the frame or absurd, when it has more than
  `MAX_TRACKED` faces (re-finding many faces costs more than one full detection), or when a tracked
  face was lost (its score fell under the detector's threshold, or it shrank or grew implausibly).

Faces are re-found one at a time and the first one lost ends the attempt, so a bad hint costs at most
two ONet passes on one crop (~1.5 ms) before the full pass it falls back to (~8 ms). A hint that is not shaped as above is a 400
(`bad_track`); one that is shaped right but wrong for this frame is a full detection, never an error.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

from .faces import FaceDetector, box_iou

MAX_TRACK_ID = 2**31 - 1
MAX_HINT_CHARS = 4096  # 20 faces of {"id": 2147483647, "box": [....]} fit with room to spare
TRACK_MATCH_IOU = 0.3  # a full detection's face takes the id of the hinted box it overlaps this much
DUPLICATE_IOU = 0.5  # two tracks that converged on one face: the younger id goes
SIZE_CHANGE = 1.6  # a re-found box more than this times larger or smaller than its hint is "lost"
REFIND_PASSES = 2  # ONet passes per re-found face (MtcnnOrt.refind)
# Re-finding costs ~0.7 ms of CPU a face a pass, a full detection of a 480x360 frame with the page's
# min_face ~8 ms: beyond this many faces a full detection is the cheaper way to find them.
MAX_TRACKED = 4
LIVE_FPS = 12  # the live page's rate (static/js/live.js LIVE_MAX_FPS), for which TRACK_FULL_EVERY is set


def full_every_at(fps: float, full_every: int) -> int:
    """Frames between full detections for frames sampled `fps` times a second, spanning the same time as
    `full_every` frames of the live page: a clip analysed at 4 frames/s looks for new faces every 3
    frames (0.75 s), not every 8 (2 s; a face that came out from behind another was missed for 1.5 s)."""
    return max(1, round(full_every * float(fps) / LIVE_FPS))


def settings(full_every: int, max_age_ms: float) -> dict:
    """The numbers private mode's copy of this module (static/js/ondevice/tracking.js) runs with,
    served by /api/ondevice so the browser keeps none of its own."""
    return {
        "full_every": int(full_every),
        "max_age_ms": float(max_age_ms),
        "match_iou": TRACK_MATCH_IOU,
        "duplicate_iou": DUPLICATE_IOU,
        "size_change": SIZE_CHANGE,
        "passes": REFIND_PASSES,
        "max_tracked": MAX_TRACKED,
        "live_fps": LIVE_FPS,
    }


class BadHint(ValueError):
    """The `track` field is not a hint at all (not JSON, wrong shape, wrong types)."""


@dataclass(frozen=True)
class TrackHint:
    """A parsed, type-checked hint; its boxes are not yet checked against the frame."""

    faces: list[tuple[int, list[float]]]  # (id, [x, y, w, h])
    since_full: int = 0
    age_ms: float = 0.0


@dataclass
class Located:
    """The faces of one frame, each with a track id, and how they were found."""

    faces: list[dict]  # FaceDetector.detect's dicts, each with "track": id
    mode: str  # "tracked" | "full"
    reason: str  # why a full detection ran ("no_faces", "periodic", "stale", "bad_box", "lost"), or "ok"
    since_full: int  # frames since the last full detection, this one included (0 after a full one)


def _number(value, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise BadHint(f"{what} must be a finite number")
    return float(value)


def parse_hint(value, max_faces: int) -> TrackHint:
    """The `track` field (a JSON string from a form, or the object itself from a JSON body) as a
    TrackHint; raises BadHint when it is not one. An empty value is a hint with no faces (the first
    frame of a live session)."""
    if value is None or value == "":
        return TrackHint(faces=[])
    if isinstance(value, str):
        if len(value) > MAX_HINT_CHARS:
            raise BadHint(f"at most {MAX_HINT_CHARS} characters")
        try:
            value = json.loads(value)
        except (ValueError, RecursionError):
            raise BadHint("not JSON") from None
    if not isinstance(value, dict):
        raise BadHint('must be an object like {"faces": [{"id": 1, "box": [x, y, w, h]}], "since_full": 0}')
    faces_in = value.get("faces", [])
    if not isinstance(faces_in, list):
        raise BadHint("'faces' must be a list")
    if len(faces_in) > max_faces:
        raise BadHint(f"at most {max_faces} faces")
    faces: list[tuple[int, list[float]]] = []
    for item in faces_in:
        if not isinstance(item, dict):
            raise BadHint("each face must be an object with 'id' and 'box'")
        track_id, box = item.get("id"), item.get("box")
        if isinstance(track_id, bool) or not isinstance(track_id, int) or not 1 <= track_id <= MAX_TRACK_ID:
            raise BadHint(f"a face's 'id' must be a whole number from 1 to {MAX_TRACK_ID}")
        if not isinstance(box, list) or len(box) != 4:
            raise BadHint("a face's 'box' must be [x, y, w, h]")
        faces.append((track_id, [_number(v, "a box coordinate") for v in box]))
    since_full = value.get("since_full", 0)
    if isinstance(since_full, bool) or not isinstance(since_full, int) or since_full < 0:
        raise BadHint("'since_full' must be a whole number >= 0")
    age_ms = _number(value.get("age_ms", 0), "'age_ms'")
    if age_ms < 0:
        raise BadHint("'age_ms' must be >= 0")
    return TrackHint(faces=faces, since_full=min(since_full, 1_000_000), age_ms=age_ms)


def box_fits(box: list[float], width: int, height: int, min_side: float) -> bool:
    """Whether a hinted box can be a face in a `width` x `height` frame: at least `min_side` pixels,
    no larger than the frame, roughly face-shaped, and mostly inside it."""
    x, y, w, h = box
    if w < min_side or h < min_side or w > width or h > height:
        return False
    if not 0.4 <= w / h <= 2.5:
        return False
    inside_w = min(x + w, width) - max(x, 0)
    inside_h = min(y + h, height) - max(y, 0)
    return inside_w > 0 and inside_h > 0 and inside_w * inside_h >= 0.5 * w * h


def _plausible(found: dict | None, hinted: list[float]) -> bool:
    if found is None:
        return False
    _, _, w, h = found["box"]
    ratio = math.sqrt(max(w * h, 1) / max(hinted[2] * hinted[3], 1))
    return 1 / SIZE_CHANGE <= ratio <= SIZE_CHANGE and box_iou(found["box"], hinted) > 0.1


def assign_ids(faces: list[dict], hint: TrackHint) -> list[dict]:
    """Give each face of a full detection the id of the hinted box it overlaps most (greedy, best
    overlap first, at least TRACK_MATCH_IOU), and the others new ids above every hinted one."""
    pairs = sorted(
        ((box_iou(f["box"], box), fi, tid) for fi, f in enumerate(faces) for tid, box in hint.faces), reverse=True
    )
    ids: dict[int, int] = {}
    used: set[int] = set()
    for overlap, fi, tid in pairs:
        if overlap < TRACK_MATCH_IOU:
            break
        if fi in ids or tid in used:
            continue
        ids[fi] = tid
        used.add(tid)
    return _with_ids(faces, ids, hint)


def _with_ids(faces: list[dict], ids: dict[int, int], hint: TrackHint) -> list[dict]:
    next_id = max([tid for tid, _ in hint.faces] + [0]) + 1
    out = []
    for fi, f in enumerate(faces):
        if fi in ids:
            tid = ids[fi]
        else:
            tid = next_id if next_id <= MAX_TRACK_ID else 1
            next_id += 1
        out.append({**f, "track": tid})
    return out


def locate(
    detector: FaceDetector,
    rgb,
    hint: TrackHint | None,
    *,
    min_face: int | None = None,
    full_every: int = 8,
    max_age_ms: float = 1000.0,
) -> Located:
    """The faces of one live frame with their track ids: re-found from the hint when it allows,
    else a full detection (see the module's docstring for when)."""
    height, width = rgb.shape[:2]
    if hint is None or not hint.faces:
        reason = "no_faces"
    elif hint.since_full + 1 >= full_every:
        reason = "periodic"
    elif hint.age_ms > max_age_ms:
        reason = "stale"
    elif not all(box_fits(box, width, height, detector.min_face_size) for _, box in hint.faces):
        reason = "bad_box"
    elif len(hint.faces) > MAX_TRACKED:
        reason = "many_faces"
    else:
        # One face at a time, so that a hint over nothing (lost, or hostile) costs one ONet pass on
        # one crop before the full detection, not a batch over every hinted box.
        faces = []
        for tid, box in hint.faces:
            found = detector.refind(rgb, [box], passes=REFIND_PASSES)[0]
            if found is None or not _plausible(found, box):
                break
            faces.append({**found, "track": tid})
        else:
            return Located(
                faces=_dedupe(faces),
                mode="tracked",
                reason="ok",
                since_full=hint.since_full + 1,
            )
        reason = "lost"
    faces = detector.detect(rgb, min_face=min_face)
    return Located(
        faces=assign_ids(faces, hint or TrackHint(faces=[])),
        mode="full",
        reason=reason,
        since_full=0,
    )


def _dedupe(faces: list[dict]) -> list[dict]:
    """Tracks that converged on one face (two hinted boxes over the same head) become one: the older
    (smaller) id stays. Largest first, like `FaceDetector.detect`."""
    kept: list[dict] = []
    for f in sorted(faces, key=lambda f: f["track"]):
        if all(box_iou(f["box"], k["box"]) <= DUPLICATE_IOU for k in kept):
            kept.append(f)
    kept.sort(key=lambda f: f["box"][2] * f["box"][3], reverse=True)
    return kept

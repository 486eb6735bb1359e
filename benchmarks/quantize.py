"""int8 against float, and the two FER+ heads on real photos of other people (issue 23, items 2 and 8).

- **Candidates**: the FER+ MobileNet's two heads, each in float (as shipped) and in int8
  (`training.quantize`, QDQ, calibrated on FER+ val): `ferplus_mobilenet` (the first head) with its
  mirror TTA and without it, and `ferplus_mobilenet_cal` (rebalanced, calibrated, no mirror). The int8
  cards are made by `python -m training quantize` (into `cache/quantize/` unless a card of that name
  is already in `models/`); their FER+ val / test metrics and the ship rule's verdict come from there.
- **Latency**: one face per call through `model_core.predictor` (what the app runs), ONNX Runtime on
  one thread, every model in the same run, interleaved round by round so that a busy neighbour slows
  all of them alike; CPU and wall milliseconds per face.
- **Real photos** (the check that chooses the int8 model's head): full-size photos of other people that
  ship in installed packages, through the app's detector (`app.faces.FaceDetector`, MTCNN) and crop
  (`model_core.preprocess.crop_face`): scikit-image's astronaut (Eileen Collins, smiling) and
  cameraman, and matplotlib's Grace Hopper (calm), each as shipped and in five variants (mirrored,
  half size, JPEG quality 40, turned 12 degrees, darker). Labelled by eye: happy, neutral, neutral.
  Then the 100 LFW face crops scikit-image ships (25x25 grey, public figures), pasted into photos
  and found by the same detector: `LFW_SMILES` are the ones labelled happy by eye (broad smiles, teeth
  showing); the others are not labelled, and the share called angry, sad, fear, disgust or contempt
  says how often such a person would be told they look upset. Three people and a hundred small
  crops: a sanity check on faces outside FER, not a measurement of accuracy.
"""

from __future__ import annotations

import time

import numpy as np

from .common import REPO, percentiles

# (int8 name, float source card, TTA served) — the float model is the source served with that TTA.
CANDIDATES = [
    ("ferplus_mobilenet_int8_flip", "ferplus_mobilenet", ["flip"]),
    ("ferplus_mobilenet_int8", "ferplus_mobilenet", []),
    ("ferplus_mobilenet_cal_int8", "ferplus_mobilenet_cal", []),
]
PHOTOS = {"astronaut": "happy", "grace_hopper": "neutral", "cameraman": "neutral"}
# LFW crops (skimage.data.lfw_subset()[:100]) labelled happy by eye: broad smiles, teeth showing.
LFW_SMILES = (1, 18, 19, 22, 31, 37, 52, 53, 74, 79, 81, 85, 91, 93, 94)
NEGATIVE = ("angry", "sad", "fear", "disgust", "contempt")
BUDGET_MS = 3.0


def photos() -> dict[str, np.ndarray]:
    from pathlib import Path

    import matplotlib
    from PIL import Image
    from skimage import data

    hopper = np.asarray(
        Image.open(Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg").convert("RGB")
    )
    return {
        "astronaut": data.astronaut(),
        "grace_hopper": hopper,
        "cameraman": np.repeat(data.camera()[..., None], 3, axis=2),
    }


def variants(rgb: np.ndarray) -> dict[str, np.ndarray]:
    import io

    import cv2
    from PIL import Image

    from .images import jpeg

    h, w = rgb.shape[:2]
    turn = cv2.getRotationMatrix2D((w / 2, h / 2), 12, 1.0)
    dark = np.clip(255 * (rgb / 255.0) ** 1.6, 0, 255).astype(np.uint8)
    return {
        "as shipped": rgb,
        "mirrored": np.ascontiguousarray(rgb[:, ::-1]),
        "half size": cv2.resize(rgb, (w // 2, h // 2), interpolation=cv2.INTER_AREA),
        "jpeg q40": np.asarray(Image.open(io.BytesIO(jpeg(rgb, 40))).convert("RGB")),
        "turned 12 deg": cv2.warpAffine(rgb, turn, (w, h), borderMode=cv2.BORDER_REFLECT),
        "darker": dark,
    }


def lfw_frames() -> list[np.ndarray]:
    """Each LFW crop upright in a photo without faces (benchmarks/tilt.py's frames)."""
    import cv2
    from skimage import data

    from .calm import lfw_faces
    from .tilt import make_frame

    rng = np.random.default_rng(23)
    backgrounds = [data.coffee(), data.chelsea(), data.rocket(), data.immunohistochemistry()]
    out = []
    for i, face in enumerate(lfw_faces()):
        frame, _ = make_frame(cv2.resize(face, (48, 48), interpolation=cv2.INTER_CUBIC), backgrounds[i % 4], 0, rng)
        out.append(np.repeat(frame[..., None], 3, axis=2) if frame.ndim == 2 else frame)
    return out


def detected_faces(detector, images: dict) -> dict:
    """name -> the largest detected face's crop (as the app crops it), or None when no face is found."""
    from model_core.preprocess import crop_face

    out = {}
    for name, rgb in images.items():
        faces = detector.detect(rgb)
        out[name] = crop_face(rgb, faces[0]["box"], keypoints=faces[0]["keypoints"]) if faces else None
    return out


def candidate_cards(data=None, log=print) -> dict:
    """name -> card path of every float and int8 candidate; int8 ones are made when missing."""
    from training.quantize import quantize_card

    out_dir = REPO / "cache" / "quantize"
    cards = {
        "ferplus_mobilenet": REPO / "models" / "ferplus_mobilenet.json",
        "ferplus_mobilenet_cal": REPO / "models" / "ferplus_mobilenet_cal.json",
    }
    splits = None
    for name, src, tta in CANDIDATES:
        for folder in (REPO / "models", out_dir):
            if (folder / f"{name}.json").exists():
                cards[name] = folder / f"{name}.json"
                break
        else:
            if splits is None:
                from training.quantize import load_val_test

                splits = load_val_test(data)
            command = (
                f"python -m training quantize --card models/{src}.json --name {name} --out-dir cache/quantize "
                f"--tta {'+'.join(tta) or 'none'}"
            )
            log(f"[quantize] {command}")
            quantize_card(REPO / "models" / f"{src}.json", name, out_dir, tta, splits=splits, command=command, log=log)
            cards[name] = out_dir / f"{name}.json"
    return cards


def _predictor(cards, name):
    from model_core.predictor import Predictor

    return Predictor.from_card(cards[name], threads=1)


def run(args) -> dict:
    from app.faces import FaceDetector
    from model_core.card import load_card, read_card
    from model_core.predictor import Predictor

    cards = candidate_cards()
    floats = {
        "ferplus_mobilenet_int8_flip": ("ferplus_mobilenet", ["flip"]),
        "ferplus_mobilenet_int8": ("ferplus_mobilenet", []),
        "ferplus_mobilenet_cal_int8": ("ferplus_mobilenet_cal", []),
    }
    models = {}  # label -> predictor
    for name, (src, tta) in floats.items():
        f_label = f"{src} (float, {'mirror' if tta else 'no mirror'})"
        if f_label not in models:
            raw = read_card(cards[src])
            if list(raw.get("tta", [])) != tta:
                q = read_card(cards[name])["quantization"]["float_served"]
                raw = {**raw, "tta": tta, "calibration": {"temperature": q["temperature"], "applied": "at_serving"}}
            models[f_label] = Predictor.from_card(raw, models_dir=cards[src].parent, threads=1)
        models[f"{name} (int8)"] = _predictor(cards, name)

    # latency: one face a call, interleaved
    rng = np.random.default_rng(0)
    face = rng.integers(0, 256, (120, 120, 3), dtype=np.uint8)
    wall = {k: [] for k in models}
    cpu = {k: [] for k in models}
    for p in models.values():
        for _ in range(5):
            p.predict_probs([face])
    for _ in range(args.quant_rounds):
        for k, p in models.items():
            for _ in range(10):
                t, c = time.perf_counter(), time.process_time()
                p.predict_probs([face])
                wall[k].append((time.perf_counter() - t) * 1e3)
                cpu[k].append((time.process_time() - c) * 1e3)

    # real photos
    detector = FaceDetector(threads=1)
    full = {f"{p} / {v}": img for p, rgb in photos().items() for v, img in variants(rgb).items()}
    crops = detected_faces(detector, full)
    lfw = detected_faces(detector, {i: f for i, f in enumerate(lfw_frames())})
    rows = []
    for label, p in models.items():
        classes = list(p.classes)
        found = [k for k, c in crops.items() if c is not None]
        probs = p.predict_probs([crops[k] for k in found])
        per_photo = {}
        for k, pr in zip(found, probs, strict=True):
            person = k.split(" / ")[0]
            want = PHOTOS[person]
            per_photo[k] = {
                "label": classes[int(pr.argmax())],
                "p_true": round(float(pr[classes.index(want)]), 3),
                "right": classes[int(pr.argmax())] == want,
            }
        lfw_found = [i for i, c in lfw.items() if c is not None]
        lp = p.predict_probs([lfw[i] for i in lfw_found])
        lfw_labels = [classes[int(x.argmax())] for x in lp]
        smiles = [lab for i, lab in zip(lfw_found, lfw_labels, strict=True) if i in LFW_SMILES]
        rows.append(
            {
                "model": label,
                "classes": classes,
                "cpu_ms": percentiles(cpu[label]),
                "wall_ms": percentiles(wall[label]),
                "photos": per_photo,
                "photos_right": sum(v["right"] for v in per_photo.values()),
                "photos_found": len(found),
                "photos_total": len(full),
                "photos_p_true": round(float(np.mean([v["p_true"] for v in per_photo.values()])), 3)
                if per_photo
                else 0.0,
                "lfw_found": len(lfw_found),
                "lfw_negative": sum(lab in NEGATIVE for lab in lfw_labels),
                "lfw_happy_neutral": sum(lab in ("happy", "neutral") for lab in lfw_labels),
                "lfw_smiles_found": len(smiles),
                "lfw_smiles_happy": sum(lab == "happy" for lab in smiles),
                "lfw_labels": lfw_labels,
            }
        )
    by = {r["model"]: r for r in rows}
    int8 = []
    for name, (src, tta) in floats.items():
        card = read_card(cards[name])
        q = card["quantization"]
        r = by[f"{name} (int8)"]
        f = by[f"{src} (float, {'mirror' if tta else 'no mirror'})"]
        int8.append(
            {
                "name": name,
                "source": src,
                "tta": tta,
                "card": str(cards[name].relative_to(REPO)),
                "command": card["recipe"]["quantization"]["command"],
                "settings": card["recipe"]["quantization"]["settings"],
                "size_mb": {k: round(v / 1e6, 2) for k, v in q["size_bytes"].items()},
                "float": {k: _brief(m) for k, m in q["float_metrics"].items()},
                "int8": {k: _brief(m) for k, m in card["metrics"].items()},
                "verdict": q["verdict"],
                "agreement": q["agreement_with_float"],
                "temperature": card["calibration"]["temperature"],
                "ms": {"float": f["cpu_ms"]["median"], "int8": r["cpu_ms"]["median"]},
                "photos": {"float": f["photos_right"], "int8": r["photos_right"], "of": r["photos_found"]},
                "lfw": {
                    k: {"negative": x["lfw_negative"], "smiles_happy": x["lfw_smiles_happy"]}
                    for k, x in (("float", f), ("int8", r))
                },
            }
        )
    load_card(cards["ferplus_mobilenet_cal"])  # the cards it read still validate
    import os

    return {
        "rows": rows,
        "int8": int8,
        "choice": choose(int8, by),
        "budget_ms": BUDGET_MS,
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "lfw_smiles": list(LFW_SMILES),
        "rounds": args.quant_rounds,
    }


def _brief(m: dict) -> dict:
    return {
        "accuracy": round(m["accuracy"], 4),
        "macro_f1": round(m["macro_f1"], 4),
        "calm_face_rate": round(m["calm_face_rate"], 4),
        "ece": round(m["ece"], 4),
        "recall": {c: round(v["recall"], 4) for c, v in m["per_class"].items()},
    }


def choose(int8: list[dict], by: dict) -> dict:
    """The int8 head, by a rule fixed before the numbers: among the int8 candidates within the latency
    budget, the most right on the real photos (labelled full-size variants + LFW smiles called happy)
    minus the LFW faces called negative; ties go to FER+ val accuracy (never test)."""

    def real(c):
        r = by[f"{c['name']} (int8)"]
        return r["photos_right"] + r["lfw_smiles_happy"] - r["lfw_negative"]

    within = [c for c in int8 if c["ms"]["int8"] <= BUDGET_MS] or int8
    best = max(within, key=lambda c: (real(c), c["int8"]["ferplus_val"]["accuracy"]))
    return {
        "name": best["name"],
        "real_photo_score": {c["name"]: real(c) for c in int8},
        "within_budget": [c["name"] for c in int8 if c["ms"]["int8"] <= BUDGET_MS],
        "ships_by_rule": bool(best["verdict"]["ferplus_test"]["passes"]),
        "rule": "within the 3 ms budget; most right on the real photos (full-size variants right + LFW smiles "
        "called happy - LFW faces called negative); ties: FER+ val accuracy",
    }


def _qualifies(res: dict) -> str:
    """The ship rule's verdict on the chosen int8 model, in words (test is the issue's split; val selects)."""
    c = next(x for x in res["int8"] if x["name"] == res["choice"]["name"])
    parts = []
    for split in ("ferplus_test", "ferplus_val"):
        v = c["verdict"][split]
        bad = [
            f"{k.replace('_', ' ')} {v[k]['value'] * 100:+.2f} pt"
            + (f" ({v[k]['class']})" if k == "recall_change" else "")
            for k in ("accuracy_drop", "recall_change", "calm_face_rate", "ece")
            if not v[k]["ok"]
        ]
        parts.append(f"{split}: " + ("passes every limit" if not bad else "fails " + ", ".join(bad)))
    return (
        ("no. " if not c["verdict"]["ferplus_test"]["passes"] else "yes on FER+ test. ")
        + "; ".join(parts)
        + (
            '. The recall limit counts a gain as a change (the issue\'s "within 1 point"); on contempt (27 test faces) '
            "and disgust (23) one face is 3.7 and 4.3 points, so there it asks that no face change at all."
        )
    )


def markdown(res: dict) -> str:
    load = (
        (
            f" (load average {res['load_average'][0]} on the box during the run: compare the columns, "
            "absolute times vary)"
        )
        if res.get("load_average")
        else " (absolute times vary on this shared box)"
    )
    lines = [
        "### int8 against float (FER+ val selects, FER+ test reports)",
        "",
        f"CPU ms/face: one face a call through `model_core.predictor`, ONNX Runtime on 1 thread, float and int8 "
        f"interleaved in the same run, {res['rounds'] * 10} calls each{load}.",
        "",
        "| int8 model (float source, TTA) | split | accuracy float / int8 | worst recall change | calm int8 | "
        "ECE int8 | agree | ship rule | CPU ms/face float / int8 | MB float / int8 |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for c in res["int8"]:
        for split in ("ferplus_val", "ferplus_test"):
            v, f, q = c["verdict"][split], c["float"][split], c["int8"][split]
            fails = [k for k in ("accuracy_drop", "recall_change", "calm_face_rate", "ece") if not v[k]["ok"]]
            lines.append(
                f"| {c['name']} ({c['source']}, {'mirror' if c['tta'] else 'no mirror'}) | {split} | "
                f"{f['accuracy']:.2%} / **{q['accuracy']:.2%}** | {v['recall_change']['value'] * 100:+.1f} pt "
                f"({v['recall_change']['class']}) | {q['calm_face_rate']:.1%} | {q['ece']:.1%} | "
                f"{c['agreement'][split]:.1%} | {'passes' if v['passes'] else 'fails: ' + ', '.join(fails)} | "
                f"{c['ms']['float']:.2f} / **{c['ms']['int8']:.2f}** | {c['size_mb']['float']} / {c['size_mb']['int8']} |"
            )
    lines += [
        "",
        "Recall change per class on FER+ test, int8 - float (points; support: neutral 1262, happy 928, "
        "surprise 444, sad 444, angry 325, fear 93, contempt 27, disgust 23 — one face of disgust is 4.3 points):",
        "",
        "| int8 model | " + " | ".join(res["int8"][0]["float"]["ferplus_test"]["recall"]) + " |",
        "|---|" + "---|" * len(res["int8"][0]["float"]["ferplus_test"]["recall"]),
    ]
    for c in res["int8"]:
        per = c["verdict"]["ferplus_test"]["recall_change"]["per_class"]
        lines.append(f"| {c['name']} | " + " | ".join(f"{v * 100:+.1f}" for v in per.values()) + " |")
    lines += [
        "",
        "Commands: "
        + "; ".join(f"`{c['command']}`" for c in res["int8"])
        + ". Settings: "
        + ", ".join(f"{k} {v}" for k, v in res["int8"][0]["settings"].items())
        + ".",
        "",
        "### The two FER+ heads on real photos of other people (float and int8)",
        "",
        "| model | CPU ms/face (median, p95) | full-size photos right | mean p(label) | LFW called negative | "
        "LFW smiles called happy |",
        "|---|---|---|---|---|---|",
    ]
    for r in res["rows"]:
        lines.append(
            f"| {r['model']} | {r['cpu_ms']['median']:.2f}, {r['cpu_ms']['p95']:.2f} | "
            f"{r['photos_right']} of {r['photos_found']} found ({r['photos_total']}) | {r['photos_p_true']:.2f} | "
            f"{r['lfw_negative']} of {r['lfw_found']} | {r['lfw_smiles_happy']} of {r['lfw_smiles_found']} |"
        )
    first = res["rows"][0]
    wrong = {}
    for r in res["rows"]:
        for k, v in r["photos"].items():
            if not v["right"]:
                wrong.setdefault(k, []).append(
                    f"{r['model'].split(' ')[0]}{' int8' if 'int8' in r['model'] else ''}: {v['label']}"
                )
    lines += [
        "",
        f"Full-size photos: {', '.join(f'{k} ({v})' for k, v in PHOTOS.items())}, each in "
        f"{len({k.split(' / ')[1] for k in first['photos']})} variants found by the detector; "
        f"misread: " + ("; ".join(f"{k}: {', '.join(v)}" for k, v in wrong.items()) or "none") + ".",
        f"LFW: {first['lfw_found']} of 100 crops found by the detector; smiles labelled by eye: "
        f"{', '.join(map(str, res['lfw_smiles']))}. Three people and 100 small public-figure crops with no "
        "angry, sad or fearful face among them: this cannot repeat the 5,599-photo finding; it checks that "
        "neither head (nor int8) misreads calm and smiling strangers.",
        "",
        f"**Choice** ({res['choice']['rule']}): **{res['choice']['name']}**; scores "
        + ", ".join(f"{k} {v}" for k, v in res["choice"]["real_photo_score"].items())
        + " (a difference of one or two faces: the real photos barely separate the heads); within "
        f"{res['budget_ms']} ms in this run: {', '.join(res['choice']['within_budget']) or 'none (all were compared)'}.",
        "",
        "**Does it qualify as the default?** " + _qualifies(res),
    ]
    return "\n".join(lines)

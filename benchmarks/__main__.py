"""python -m benchmarks accuracy|calm|balance|members|quantize|ablation|classifier|detector|tilt|api|load|live|video|soak|memory|ondevice|peers|videopeers|all|report ...

Runs the named benchmarks, saves each result under docs/benchmarks/, then rewrites docs/BENCHMARKS.md
from every saved result. With no name it only lists them: running every benchmark (an hour or more) and
rewriting the tracked docs/BENCHMARKS.md takes an explicit `all`; `report` only rewrites the page.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from .common import REPO, load, save

ORDER = [
    ("accuracy", "Accuracy of the shipped models"),
    ("calm", "The model people meet: calm faces, per-class recall, calibration (FER+ test)"),
    ("balance", "Class balancing on the FER+ backbone (heads refitted; selected on FER+ val)"),
    ("members", "Ensemble members for the FER+ model (FER+ val only)"),
    ("quantize", "int8 against float, and the two FER+ heads on real photos (issue 23)"),
    ("ablation", "Ablation on the validation split"),
    ("classifier", "Classifier cost per face"),
    ("detector", "Face detection: ONNX Runtime MTCNN against the mtcnn package"),
    ("tilt", "Tilted heads: the crop turned upright from the eyes"),
    ("api", "End-to-end /api/predict latency"),
    ("load", "Throughput under load (gunicorn)"),
    ("live", "Live streaming: tracked frames against full detection (issue 23)"),
    ("video", "Video decoding: PyAV against OpenCV (issue 25)"),
    ("soak", "Soak test: memory under a long load"),
    ("memory", "Worker memory and CPU under a hostile mix (issue 16)"),
    ("ondevice", "Private mode: the pipeline in the browser (issue 18)"),
    ("peers", "Side by side with the `fer` package"),
    ("videopeers", "Video side by side with `fer` (issue 25)"),
]
INTRO = """# Benchmarks

Written by `python -m benchmarks` (scripts in `benchmarks/`); each section names the machine, the
command and the date it was measured. Accuracy is always given with its split: FER-2013 PrivateTest
(`fer2013_private`, the test split) and PublicTest (`fer2013_public`, validation: used for model
selection and ensemble weights), FER+ test / validation (majority vote, `ferplus_test` / `ferplus_val`).
"""


def report() -> str:
    parts = [INTRO]
    notes = REPO / "docs" / "benchmarks" / "NOTES.md"
    for name, title in ORDER:
        res = load(name)
        if res is None:
            continue
        mod = importlib.import_module(f"benchmarks.{name}")
        m = res["machine"]
        parts.append(
            f"## {title}\n\n`{res['command']}` — {res['date']}, git {res.get('git', '?')}, "
            f"{m['cpu']} ({m['cores']} cores, {m['memory']}), Python {m['python']}\n"
        )
        parts.append(mod.markdown(res) + "\n")
    if notes.exists():
        parts.append(notes.read_text())
    text = "\n".join(parts)
    (REPO / "docs" / "BENCHMARKS.md").write_text(text)
    return text


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "names",
        nargs="*",
        help="accuracy calm balance members quantize ablation classifier detector tilt api load live video soak memory ondevice peers videopeers all report (peers and videopeers need bash benchmarks/setup_peers.sh first)",
    )
    p.add_argument("--frames", type=int, default=200, help="test frames (detector)")
    p.add_argument("--tilt-faces", type=int, default=600, help="faces per angle (tilt)")
    p.add_argument("--requests", type=int, default=60, help="requests per case (api)")
    p.add_argument("--duration", type=int, default=60, help="seconds of load (load)")
    p.add_argument("--soak-duration", type=int, default=600, help="seconds of load (soak)")
    p.add_argument(
        "--memory-duration", type=int, default=40, help="seconds of 4 clients sending the hostile mix (memory)"
    )
    p.add_argument("--member-cards", nargs="*", default=[], help="more candidate cards (members)")
    p.add_argument("--quant-rounds", type=int, default=20, help="latency rounds of 10 faces per model (quantize)")
    p.add_argument("--concurrency", type=int, default=8, help="clients (load)")
    p.add_argument("--live-clients", type=int, default=8, help="live pages streaming at once (live)")
    p.add_argument("--live-duration", type=int, default=40, help="seconds per path, in two phases (live)")
    args = p.parse_args(argv)
    known = {n for n, _ in ORDER} | {"all", "report"}
    unknown = [n for n in args.names if n not in known]
    if unknown:
        p.error(f"unknown benchmark {', '.join(unknown)}; choose from {' '.join(sorted(known))}")
    if not args.names:  # the safe default: say what there is, run nothing, write nothing
        p.print_help()
        print("\nbenchmarks:")
        for name, title in ORDER:
            print(f"  {name:11s} {title}")
        print(
            "  all         every one of them (then `report`)\n  report      rewrite docs/BENCHMARKS.md "
            "from the saved results"
        )
        return 0
    names = [n for n, _ in ORDER] if "all" in args.names else [n for n in args.names if n != "report"]
    for name in names:
        mod = importlib.import_module(f"benchmarks.{name}")
        print(f"== {name}", flush=True)
        save(name, mod.run(args))
    print(report())
    return 0


if __name__ == "__main__":
    sys.exit(main())

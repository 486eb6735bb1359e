"""The `emotion` command (issue 25), installed by `pip install .` (pyproject.toml's [project.scripts]):

    emotion analyze PATH...   photos and folders of photos: one row per face (table, CSV or JSON)
    emotion video CLIP        a clip's faces tracked over time: timeline.csv, report.json, chart.png
    emotion models            the models it can use

Everything runs locally through app/analyzer.py (the server's own pipeline); nothing is downloaded and
nothing is kept but what is written to --out / --speak. A file that cannot be read is one row with its
error, never a crash; the exit status is 1 when any input failed, 2 for a usage error.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

PHOTO_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif"}
COLUMNS = ["file", "face", "x", "y", "w", "h", "emotion", "score", "confident", "error"]


def photo_paths(paths: Sequence[str]) -> Iterator[Path]:
    """Each named file as it is (whatever its suffix), and the photos in each named folder, recursively,
    in sorted order."""
    for name in paths:
        path = Path(name)
        if path.is_dir():
            yield from sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in PHOTO_SUFFIXES)
        else:
            yield path


def _progress(args, **kwargs):
    """A tqdm bar on stderr when it is a terminal (or --progress), else a silent stand-in."""
    show = args.progress if args.progress is not None else sys.stderr.isatty()
    from tqdm import tqdm

    return tqdm(disable=not show, file=sys.stderr, dynamic_ncols=True, **kwargs)


def _analyzer(args):
    from .analyzer import Analyzer

    try:
        return Analyzer(model=args.model, lang=args.lang, models_dir=args.models_dir)
    except ValueError as exc:
        raise SystemExit(_usage(str(exc))) from None


def _usage(message: str) -> int:
    print(f"emotion: error: {message}", file=sys.stderr)
    return 2


def analyze_rows(analyzer, paths: Sequence[str], args) -> tuple[list[dict[str, Any]], list[tuple[Path, Any]]]:
    """One row per face of every photo (a row with no face and no error for a photo without one, a
    row with the error for a file that cannot be read); and each readable photo's reply."""
    from .imaging import ImageError

    rows: list[dict[str, Any]] = []
    replies = []
    files = list(photo_paths(paths))
    with _progress(args, total=len(files), unit="photo") as bar:
        for path in files:
            base = {"file": str(path)}
            try:
                results = analyzer.analyze(path)
            except ImageError as exc:
                rows.append({**base, "error": f"{exc.code}: {exc.message}"})
            except OSError as exc:
                rows.append({**base, "error": f"unreadable: {exc.strerror or exc}"})
            else:
                if not results:
                    rows.append({**base, "face": None, "emotion": None})
                for k, r in enumerate(results, 1):
                    x, y, w, h = r.face.box
                    rows.append(
                        {
                            **base,
                            "face": k,
                            "x": x,
                            "y": y,
                            "w": w,
                            "h": h,
                            "emotion": r.emotion,
                            "score": round(r.score, 4),
                            "confident": analyzer.confident(r),
                            "scores": r.scores,
                        }
                    )
                replies.append((path, analyzer.reply(results)))
            bar.update(1)
    return rows, replies


def write_rows(rows: list[dict[str, Any]], fmt: str, labels: list[str], out: TextIO) -> None:
    if fmt == "json":
        json.dump([{k: row.get(k) for k in [*COLUMNS, "scores"]} for row in rows], out, indent=1, ensure_ascii=False)
        out.write("\n")
    elif fmt == "csv":
        writer = csv.DictWriter(out, [*COLUMNS, *labels], lineterminator="\n", extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow(
                {**{k: "" if row.get(k) is None else row.get(k) for k in COLUMNS}, **(row.get("scores") or {})}
            )
    else:
        table = [["file", "face", "box", "emotion", "score", "confident", "error"]]
        for row in rows:
            box = "" if row.get("x") is None else f"{row['x']},{row['y']},{row['w']},{row['h']}"
            table.append(
                [
                    row["file"],
                    "" if row.get("face") is None else str(row["face"]),
                    box,
                    row.get("emotion") or ("(no face)" if not row.get("error") else ""),
                    "" if row.get("score") is None else f"{row['score']:.2f}",
                    "" if row.get("confident") is None else ("yes" if row["confident"] else "no"),
                    row.get("error") or "",
                ]
            )
        widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
        for r in table:
            out.write("  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() + "\n")


def _write_wav(analyzer, reply, path: Path) -> Path | None:
    from .speech import SpeechError

    try:
        path.write_bytes(analyzer.speak(reply))
    except (SpeechError, OSError) as exc:
        print(f"emotion: no voice for {path.name}: {exc}", file=sys.stderr)
        return None
    return path


def cmd_analyze(args) -> int:
    analyzer = _analyzer(args)
    rows, replies = analyze_rows(analyzer, args.paths, args)
    out = io.StringIO()
    write_rows(rows, args.format, analyzer.labels, out)
    sys.stdout.write(out.getvalue())
    if args.speak:
        folder = Path(args.speak)
        folder.mkdir(parents=True, exist_ok=True)
        used: set[str] = set()
        for k, (path, reply) in enumerate(replies, 1):
            name = f"{path.stem}.wav" if f"{path.stem}.wav" not in used else f"{path.stem}-{k}.wav"
            used.add(name)
            _write_wav(analyzer, reply, folder / name)
    if not rows:
        print("emotion: no photo found in " + " ".join(args.paths), file=sys.stderr)
        return 1
    return 1 if any(row.get("error") for row in rows) else 0


def cmd_video(args) -> int:
    from .video import VideoError, VideoLimits

    if not 0 < args.fps <= 30:
        return _usage("--fps must be above 0 and at most 30")
    analyzer = _analyzer(args)
    limits = VideoLimits(
        max_seconds=args.max_seconds,
        max_decoded_frames=int(args.max_seconds * 60) + 60,
        max_frames=int(args.max_seconds * args.fps) + 1,
    )
    from .video import open_video
    from .videoreport import analyze_video

    try:
        with (
            open_video(args.clip, limits) as clip,
            _progress(args, total=clip.expected_frames(args.fps) or None, unit="frame") as bar,
        ):
            report = analyze_video(
                clip,
                detector=analyzer.detector,
                models=analyzer.models,
                model=analyzer.model,
                fps=args.fps,
                full_every=int(analyzer.config["TRACK_FULL_EVERY"]),
                source=str(args.clip),
                on_frame=lambda _frame: bar.update(1),
            )
    except VideoError as exc:
        print(f"emotion: {args.clip}: {exc.code}: {exc.message}", file=sys.stderr)
        return 1
    out = Path(args.out)
    written = report.write(out)
    reply = analyzer.video_reply(report)
    if args.speak:
        folder = Path(args.speak)
        folder.mkdir(parents=True, exist_ok=True)
        wav = _write_wav(analyzer, reply, folder / "summary.wav")
        if wav is not None:
            written["summary"] = wav
    if report.truncated:
        print(
            f"emotion: analysed the first {report.to_dict(frames=False)['duration_analysed']:.1f} s only "
            f"({report.truncated}; see --max-seconds)",
            file=sys.stderr,
        )
    if "chart" not in written:
        print(
            "emotion: no chart.png: matplotlib is not installed (pip install 'emotion-assistant[chart]')",
            file=sys.stderr,
        )
    for track in report.tracks:
        spans = ", ".join(f"{s.start:.1f}-{s.end:.1f} s {s.emotion}" for s in track.segments)
        print(
            f"face {track.id}: {track.dominant} ({track.start:.1f}-{track.end:.1f} s, {track.frames} frames): {spans}"
        )
    if not report.tracks:
        print("no face found")
    print(f"assistant: {reply.text}")
    print("wrote " + ", ".join(str(p) for p in written.values()))
    return 0


def cmd_models(args) -> int:
    analyzer = _analyzer(args)
    for name, card in analyzer.models.cards.items():
        mark = "*" if name == analyzer.models.default else " "
        print(f"{mark} {name:<24} {card.kind:<8} {', '.join(card.classes)}")
    return 0


def parser() -> argparse.ArgumentParser:
    from . import assistant

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--model", help="a model name (`emotion models`; default: the shipped default)")
    common.add_argument(
        "--lang", default=assistant.DEFAULT_LANG, choices=list(assistant.LANGUAGES), help="the assistant's language"
    )
    common.add_argument("--models-dir", help="a folder of model cards (default: the shipped models)")
    bar = common.add_mutually_exclusive_group()
    bar.add_argument(
        "--progress",
        dest="progress",
        action="store_true",
        default=None,
        help="show a progress bar (default: when stderr is a terminal)",
    )
    bar.add_argument("--no-progress", dest="progress", action="store_false")
    p = argparse.ArgumentParser(
        prog="emotion", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = p.add_subparsers(dest="command", required=True)
    a = sub.add_parser("analyze", parents=[common], help="photos and folders: one row per face")
    a.add_argument("paths", nargs="+", metavar="PATH", help="photo files or folders (searched recursively)")
    a.add_argument("--format", choices=["table", "csv", "json"], default="table")
    a.add_argument("--speak", metavar="DIR", help="write each photo's spoken reply as DIR/<photo>.wav")
    a.set_defaults(run=cmd_analyze)
    v = sub.add_parser("video", parents=[common], help="a clip: faces tracked, timeline, chart, segments")
    v.add_argument("clip", help="an MP4, MOV, WebM, MKV or AVI file")
    v.add_argument("--fps", type=float, default=4.0, help="frames analysed per second of video (default 4)")
    v.add_argument("--out", default="emotion-report", help="folder for timeline.csv, report.json, chart.png")
    v.add_argument(
        "--max-seconds",
        type=float,
        default=600.0,
        help="analyse at most this much of the clip (default 600; the report says when it was cut)",
    )
    v.add_argument("--speak", metavar="DIR", help="write the assistant's spoken summary as DIR/summary.wav")
    v.set_defaults(run=cmd_video)
    m = sub.add_parser("models", parents=[common], help="list the models")
    m.set_defaults(run=cmd_models)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if getattr(args, "max_seconds", 1.0) <= 0:
        return _usage("--max-seconds must be above 0")
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())

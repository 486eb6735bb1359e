"""`python -m training data`: what training data is there, and exactly what is missing.

Looks in the data folder (`--data`, else `$EMOTION_DATA`, else `data/` in the repository, else the
team's `../shared/data`) for the forms people actually have:

- FER-2013 as Kaggle's `fer2013.csv` (plain or .gz; header `emotion,pixels,Usage`), as Kaggle's later
  `icml_face_data.csv` (header `emotion, Usage, pixels`, with leading spaces), or as the widely mirrored
  image folder `train/<label>/*.jpg` + `test/<label>/*.jpg`;
- the FER+ label file `fer2013new.csv` (Microsoft's FERPlus repository), row-aligned with fer2013.csv.

For each it counts rows per split and compares checksums with the known files. `--prepare` writes the
layout the trainer reads (`fer2013/fer2013.csv`) from an icml_face_data.csv or an image folder.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from . import data as fer

FER2013_URL = (
    "https://www.kaggle.com/c/challenges-in-representation-learning-facial-expression-recognition-challenge/data"
)
FERPLUS_URL = (
    "https://github.com/microsoft/FERPlus (file fer2013new.csv; raw: "
    "https://raw.githubusercontent.com/microsoft/FERPlus/master/fer2013new.csv)"
)
EXPECTED_ROWS = {"Training": 28709, "PublicTest": 3589, "PrivateTest": 3589}
# The image-folder mirror (Kaggle "msambare/fer2013"): test/ is PublicTest and PrivateTest together.
EXPECTED_FOLDER = {"train": 28709, "test": 7178}
# md5 of the uncompressed file: Kaggle's fer2013.csv (also torchvision's), icml_face_data.csv, FER+ labels.
KNOWN_MD5 = {
    "f8428a1edbd21e88f42c73edd2a14f95": "Kaggle's fer2013.csv, byte-identical",
    "b114b9e04e6949e5fe8b6a98b3892b1d": "Kaggle's icml_face_data.csv, byte-identical",
    "413eba86d6e454536b99705b8c7fc5c5": "FERPlus fer2013new.csv, byte-identical",
    "3f0dfb3d3fd99c811a1299cb947e3131": "Kaggle's train.csv (Training only)",
    "b02c2298636a634e8c2faabbf3ea9a23": "Kaggle's test.csv (no labels)",
}
PREPARED_NOTE = "PREPARED_FROM.txt"


@dataclass
class Finding:
    dataset: str  # "FER-2013" or "FER+"
    ok: bool
    path: Path | str | None = None  # the file found, or (missing) what is looked for
    form: str = ""
    rows: dict = field(default_factory=dict)
    checksum: str = ""  # what the md5 says, or "" when not checked
    notes: list = field(default_factory=list)


def _open_bytes(path: Path):
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")


def md5_of(path: Path) -> str:
    """md5 of the file's content (uncompressed for .gz: a re-gzipped copy is still the same data)."""
    h = hashlib.md5()
    with _open_bytes(path) as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def count_usage(path: Path, usage_column: str = "usage") -> tuple[Counter, list]:
    """Rows per split of a CSV with a Usage column (header names compared stripped, lower-case)."""
    with io.TextIOWrapper(_open_bytes(path), encoding="utf-8", newline="") as f:
        reader = csv.reader(f)
        header = next(reader, None) or []
        cols = [h.strip().lower() for h in header]
        if usage_column not in cols:
            raise fer.DataError(f"{path}: header {header} has no {usage_column!r} column")
        i = cols.index(usage_column)
        counts = Counter()
        for n, rec in enumerate(reader):
            try:
                counts[fer.canonical_split(rec[i].strip())] += 1
            except (IndexError, fer.DataError) as e:
                raise fer.DataError(f"{path}: row {n} (line {n + 2}): {e}") from None
    return counts, header


def _rows_note(rows: dict) -> list:
    return [
        f"{split}: {rows.get(split, 0):,} rows, expected {n:,} for the full dataset"
        for split, n in EXPECTED_ROWS.items()
        if rows.get(split, 0) != n
    ]


def _checksum_note(path: Path, checksums: bool) -> str:
    if not checksums:
        return ""
    digest = md5_of(path)
    return f"md5 {digest}: " + KNOWN_MD5.get(digest, "not a known file (rows may differ, or a re-save)")


def fer2013_candidates(root: Path) -> list[Path]:
    names = (*fer.FER2013_CSV_NAMES, "icml_face_data.csv.gz", "icml_face_data.csv")
    return [d / n for d in (root / "fer2013", root) for n in names if (d / n).is_file()]


def _wanted(root: Path) -> str:
    """What the trainer looks for (`data.fer2013_csv`): either name, said as one."""
    return " or ".join(str(root / "fer2013" / n) for n in reversed(fer.FER2013_CSV_NAMES))


def image_folder_candidates(root: Path) -> list[Path]:
    return [
        d
        for d in (root / "fer2013", root / "fer2013" / "images", root / "images", root)
        if (d / "train").is_dir() and (d / "test").is_dir()
    ]


def check_fer2013(root: Path, checksums: bool = True) -> Finding:
    for path in fer2013_candidates(root):
        counts, header = count_usage(path)
        cols = [h.strip().lower() for h in header]
        form = (
            "icml_face_data.csv (emotion, Usage, pixels)"
            if cols[:3] == ["emotion", "usage", "pixels"]
            else "fer2013.csv (emotion, pixels, Usage)"
        )
        f = Finding("FER-2013", True, path, form, dict(counts), _checksum_note(path, checksums))
        f.notes += _rows_note(f.rows)
        if path.parent != root / "fer2013" or path.name not in fer.FER2013_CSV_NAMES:
            f.notes.append(
                f"the trainer reads {_wanted(root)}: run `python -m training data --prepare` to write it from this file"
            )
        note = path.parent / PREPARED_NOTE
        if note.exists():
            f.notes.append("prepared by `python -m training data --prepare`: " + note.read_text().strip())
        return f
    for folder in image_folder_candidates(root):
        rows = {}
        for split in ("train", "test"):
            rows[split] = sum(1 for p in (folder / split).glob("*/*") if p.suffix.lower() in fer.IMAGE_SUFFIXES)
        f = Finding("FER-2013", True, folder, "image folder (train/<label>/, test/<label>/)", rows)
        f.notes += [
            f"{s}/: {rows[s]:,} images, expected {n:,} for the full mirror"
            for s, n in EXPECTED_FOLDER.items()
            if rows[s] != n
        ]
        f.notes += IMAGE_FOLDER_EVALUATION
        f.notes.append(
            f"train from it with `--image-folder {folder}`, or write the CSV layout the other "
            f"commands read with `python -m training data --prepare`"
        )
        return f
    return Finding(
        "FER-2013",
        False,
        _wanted(root),
        notes=[
            f"missing: put Kaggle's fer2013.csv, plain or gzipped, at {_wanted(root)} (either is read)",
            f"get it from the Kaggle challenge page (sign in, accept the rules, download): {FER2013_URL}",
            "also accepted: Kaggle's icml_face_data.csv in the same folder, or the image-folder mirror "
            f"(train/<label>/*.jpg, test/<label>/*.jpg) at {root / 'fer2013'}/",
            "not enough on their own: Kaggle's train.csv + test.csv (test.csv has no labels)",
        ],
    )


IMAGE_FOLDER_EVALUATION = [
    "evaluation with this form: its test/ holds Kaggle's PublicTest and PrivateTest together (7,178 "
    "images) and there is no separate validation split, so numbers on test/ are not comparable with "
    "the PrivateTest figures in the model cards (different and twice as many images, JPEG-recompressed "
    "pixels), and picking epochs or ensemble weights on test/ would overfit it",
    "--prepare therefore holds out a seeded, class-stratified 10% of train/ as the validation split "
    "(PublicTest) and uses all of test/ as the test split (PrivateTest); report such results as "
    "'FER-2013 test (Public+Private, image-folder copy)'",
]


def check_ferplus(root: Path, checksums: bool = True) -> Finding:
    for path in (root / "ferplus" / "fer2013new.csv", root / "fer2013new.csv"):
        if path.is_file():
            counts, _ = count_usage(path)
            f = Finding(
                "FER+",
                True,
                path,
                "fer2013new.csv (Usage, Image name, 10 vote columns)",
                dict(counts),
                _checksum_note(path, checksums),
            )
            f.notes += _rows_note(f.rows)
            if path.parent != root / "ferplus":
                f.notes.append(f"the trainer reads {root / 'ferplus' / 'fer2013new.csv'}: move it there")
            return f
    return Finding(
        "FER+",
        False,
        root / "ferplus" / "fer2013new.csv",
        notes=[
            f"missing (needed only for --scheme ferplus): put fer2013new.csv at {root / 'ferplus' / 'fer2013new.csv'}",
            f"get it from Microsoft's FERPlus repository: {FERPLUS_URL}; keep its LICENSE (MIT) beside it",
            "it labels the rows of Kaggle's fer2013.csv in order, so it needs the CSV form of FER-2013, "
            "not the image folder",
        ],
    )


def describe_root(explicit: str | Path | None) -> tuple[Path, str]:
    import os

    if explicit:
        return Path(explicit), "--data"
    if os.environ.get("EMOTION_DATA"):
        return Path(os.environ["EMOTION_DATA"]), "$EMOTION_DATA"
    root = fer.default_data_dir()
    return root, (
        "data/ in the repository"
        if root == fer.REPO_DATA_DIR
        else "the team's ../shared/data (no data/ folder in the repository)"
    )


def check(root: Path, checksums: bool = True) -> list[Finding]:
    return [check_fer2013(root, checksums), check_ferplus(root, checksums)]


def report(findings: list[Finding], root: Path, origin: str) -> str:
    lines = [f"data folder: {root}  ({origin})"]
    for f in findings:
        status = "ok" if f.ok else "MISSING"
        lines.append(f"{f.dataset:9s} {status:8s} {f.path}")
        if f.form:
            lines.append(f"  form: {f.form}")
        if f.rows:
            lines.append(
                "  rows: " + ", ".join(f"{k} {v:,}" for k, v in f.rows.items()) + f" (total {sum(f.rows.values()):,})"
            )
        if f.checksum:
            lines.append(f"  {f.checksum}")
        lines += [f"  - {n}" for n in f.notes]
    return "\n".join(lines)


# ---- --prepare ------------------------------------------------------------------------------------


def prepare(root: Path, seed: int = 0) -> Path:
    """Write `<root>/fer2013/fer2013.csv` (Kaggle's format) from icml_face_data.csv or an image folder."""
    out = root / "fer2013" / "fer2013.csv"
    present = [p for p in fer2013_candidates(root) if p.parent == root / "fer2013" and p.name.startswith("fer2013.csv")]
    if present:
        raise fer.DataError(f"{present[0]} already exists; nothing to prepare")
    icml = [p for p in fer2013_candidates(root) if p.name.startswith("icml_face_data")]
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".tmp")
    if icml:
        src = icml[0]
        with (
            io.TextIOWrapper(_open_bytes(src), encoding="utf-8", newline="") as f,
            open(tmp, "w", encoding="utf-8", newline="") as o,
        ):
            reader = csv.reader(f)
            cols = [h.strip().lower() for h in next(reader)]
            i_e, i_p, i_u = cols.index("emotion"), cols.index("pixels"), cols.index("usage")
            o.write("emotion,pixels,Usage\n")
            for rec in reader:
                o.write(f"{rec[i_e].strip()},{rec[i_p].strip()},{rec[i_u].strip()}\n")
        source = f"{src} (icml_face_data.csv: same rows, columns reordered)"
    else:
        folders = image_folder_candidates(root)
        if not folders:
            raise fer.DataError(
                f"nothing to prepare from in {root}: no icml_face_data.csv and no train/ + test/ image folder"
            )
        source = _prepare_from_folder(folders[0], tmp, seed)
    tmp.replace(out)
    digest = md5_of(out)
    same = digest in KNOWN_MD5 and "fer2013.csv" in KNOWN_MD5[digest]
    (out.parent / PREPARED_NOTE).write_text(
        f"{out.name} written from {source}; md5 {digest}"
        + (" = Kaggle's fer2013.csv" if same else " (not Kaggle's file)")
        + "\n"
    )
    return out


def _prepare_from_folder(folder: Path, out: Path, seed: int) -> str:
    import numpy as np

    images = fer.read_image_folder(folder)  # train -> Training, test -> PrivateTest
    usage = images.usage.copy()
    held = 0
    if not (usage == "PublicTest").any():
        rng = np.random.default_rng(seed)
        for label in np.unique(images.labels):
            idx = np.nonzero((usage == "Training") & (images.labels == label))[0]
            pick = rng.choice(idx, int(round(0.1 * len(idx))), replace=False) if len(idx) else idx
            usage[pick] = "PublicTest"
            held += len(pick)
    order = np.argsort([{"Training": 0, "PublicTest": 1, "PrivateTest": 2}[u] for u in usage], kind="stable")
    with open(out, "w", encoding="utf-8", newline="") as o:
        o.write("emotion,pixels,Usage\n")
        for i in order:
            o.write(f"{images.labels[i]},{' '.join(map(str, images.images[i].ravel()))},{usage[i]}\n")
    return (
        f"the image folder {folder} (test/ as PrivateTest; {held:,} train/ images, a seeded "
        f"stratified 10%, held out as PublicTest for validation; seed {seed})"
    )


def main(data: str | Path | None = None, checksums: bool = True, do_prepare: bool = False) -> int:
    root, origin = describe_root(data)
    if do_prepare:
        out = prepare(root)
        print(f"wrote {out}: " + (out.parent / PREPARED_NOTE).read_text().strip())
    findings = check(root, checksums)
    print(report(findings, root, origin))
    fer_ok = findings[0].ok
    print(
        "\nready: "
        + ("FER-2013 scheme" if fer_ok else "nothing yet")
        + (", FER+ scheme" if fer_ok and findings[1].ok else "")
    )
    return 0 if all(f.ok for f in findings) else 1

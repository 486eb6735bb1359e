"""Readers for the formats FER users actually have, and the two label schemes.

- Kaggle `fer2013.csv` (plain or .gz): `emotion,pixels,Usage`, 2304 grey values per row.
- FER+ `fer2013new.csv`: annotator votes, row-aligned with `fer2013.csv`.
- An image folder: `<split>/<label>/*.png|jpg` (label a name like `happy` or a FER index `3`).

Every reader fails with a `DataError` that names the file and the row, never a numpy traceback.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from model_core.labels import FER2013_CLASSES, FERPLUS_CLASSES, SCHEMES  # noqa: F401  (re-exported)

# FER+ vote columns in file order; the first eight are emotions, then "unknown" and "not a face".
FERPLUS_VOTE_COLUMNS = [
    "neutral",
    "happiness",
    "surprise",
    "sadness",
    "anger",
    "disgust",
    "fear",
    "contempt",
    "unknown",
    "NF",
]

# Split names as Kaggle writes them, with the folder-layout aliases people use.
SPLITS = ("Training", "PublicTest", "PrivateTest")
SPLIT_ALIASES = {
    "training": "Training",
    "train": "Training",
    "publictest": "PublicTest",
    "val": "PublicTest",
    "valid": "PublicTest",
    "validation": "PublicTest",
    "privatetest": "PrivateTest",
    "test": "PrivateTest",
}
IMAGE_SIZE = 48
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")

# Data lives in the repository's git-ignored data/ folder (`python -m training data` says what goes
# there); the team's ../shared/data beside the repository is used when there is no data/ folder.
REPO_DATA_DIR = Path(__file__).resolve().parent.parent / "data"
SHARED_DATA_DIR = Path(__file__).resolve().parent.parent.parent / "shared" / "data"
DEFAULT_DATA_DIR = REPO_DATA_DIR
# Parsed CSVs are cached here (git-ignored), keyed by the file's path, size and mtime.
CACHE_DIR = Path(__file__).resolve().parent.parent / "cache"


class DataError(ValueError):
    """A data file is missing or malformed; the message names the file and row."""


# The one rule for where FER-2013 is read from: `<data>/fer2013/` holding Kaggle's file, gzipped or not
# (the gzipped one first when both are there). Every reader and the data check use it.
FER2013_CSV_NAMES = ("fer2013.csv.gz", "fer2013.csv")
FERPLUS_CSV = Path("ferplus") / "fer2013new.csv"


def fer2013_csv(data_dir: str | Path) -> Path:
    """The FER-2013 CSV under `data_dir` (`fer2013/fer2013.csv.gz` or `fer2013/fer2013.csv`)."""
    folder = Path(data_dir) / "fer2013"
    for name in FER2013_CSV_NAMES:
        if (folder / name).is_file():
            return folder / name
    raise DataError(
        f"{folder}/: neither {' nor '.join(FER2013_CSV_NAMES)} is there; put Kaggle's "
        "fer2013.csv (plain or gzipped) there (`python -m training data` says what is missing)"
    )


def default_data_dir() -> Path:
    """`$EMOTION_DATA`, else `data/` in the repository, else `../shared/data` beside it if that exists."""
    if os.environ.get("EMOTION_DATA"):
        return Path(os.environ["EMOTION_DATA"])
    if not REPO_DATA_DIR.is_dir() and SHARED_DATA_DIR.is_dir():
        return SHARED_DATA_DIR
    return REPO_DATA_DIR


def canonical_split(name: str) -> str:
    key = name.replace("_", "").replace("-", "").lower()
    if key not in SPLIT_ALIASES:
        raise DataError(f"unknown split {name!r}; expected one of {sorted(set(SPLIT_ALIASES))}")
    return SPLIT_ALIASES[key]


@dataclass
class FerImages:
    """Grey 48x48 images with their FER-2013 label, split and row in the source file."""

    images: np.ndarray  # (N, 48, 48) uint8
    labels: np.ndarray  # (N,) int64, FER-2013 index, -1 where unknown
    usage: np.ndarray  # (N,) str, one of SPLITS
    rows: np.ndarray  # (N,) int64, 0-based row in the source file
    source: str = ""

    def __len__(self) -> int:
        return len(self.images)

    def subset(self, mask: np.ndarray) -> FerImages:
        return FerImages(self.images[mask], self.labels[mask], self.usage[mask], self.rows[mask], self.source)


def _open_text(path: Path):
    if not path.exists():
        raise DataError(f"{path}: file not found")
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
    return open(path, encoding="utf-8", newline="")


def _cache_path(path: Path, cache_dir: Path | None) -> Path | None:
    if cache_dir is None:
        return None
    st = path.stat()
    key = hashlib.sha1(f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()[:16]
    return Path(cache_dir) / f"fer2013-{key}.npz"


def read_fer2013_csv(path: str | Path, cache_dir: str | Path | None = None, progress: bool = True) -> FerImages:
    """Read Kaggle's `fer2013.csv` (or `.csv.gz`).

    Parsing 35,887 rows of text takes ~20 s (a tqdm bar shows it), so with `cache_dir` the arrays are
    kept as an .npz keyed by the file's path, size and mtime.
    """
    from tqdm import tqdm

    path = Path(path)
    cache = _cache_path(path, Path(cache_dir) if cache_dir else None) if path.exists() else None
    if cache is not None and cache.exists():
        z = np.load(cache, allow_pickle=False)
        return FerImages(z["images"], z["labels"], z["usage"], z["rows"], str(path))

    images, labels, usage = [], [], []
    with _open_text(path) as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None:
            raise DataError(f"{path}: empty file, expected header 'emotion,pixels,Usage'")
        cols = [h.strip().lower() for h in header]
        try:
            i_emo, i_pix, i_use = cols.index("emotion"), cols.index("pixels"), cols.index("usage")
        except ValueError:
            raise DataError(f"{path}: header {header} lacks one of 'emotion', 'pixels', 'Usage'") from None
        rows = tqdm(reader, desc=f"reading {path.name}", unit=" rows", disable=not progress, mininterval=1)
        for n, rec in enumerate(rows):
            where = f"{path}: row {n} (line {n + 2})"
            if len(rec) != len(cols):
                raise DataError(f"{where}: expected {len(cols)} fields, got {len(rec)}")
            try:
                label = int(rec[i_emo])
            except ValueError:
                raise DataError(f"{where}: emotion {rec[i_emo]!r} is not an integer") from None
            if not 0 <= label < len(FER2013_CLASSES):
                raise DataError(f"{where}: emotion {label} outside 0..6")
            try:
                pix = np.array(rec[i_pix].split(), dtype=np.int32)
            except ValueError:
                raise DataError(f"{where}: pixels contain a non-integer value") from None
            if pix.size != IMAGE_SIZE * IMAGE_SIZE:
                raise DataError(f"{where}: {pix.size} pixel values, expected {IMAGE_SIZE * IMAGE_SIZE}")
            if pix.min() < 0 or pix.max() > 255:
                raise DataError(f"{where}: pixel values must lie in 0..255")
            images.append(pix.astype(np.uint8).reshape(IMAGE_SIZE, IMAGE_SIZE))
            labels.append(label)
            try:
                usage.append(canonical_split(rec[i_use].strip()))
            except DataError as e:
                raise DataError(f"{where}: {e}") from None
    if not images:
        raise DataError(f"{path}: no data rows")
    data = FerImages(
        np.stack(images), np.array(labels, np.int64), np.array(usage), np.arange(len(images), dtype=np.int64), str(path)
    )
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(".tmp.npz")
        np.savez(tmp, images=data.images, labels=data.labels, usage=data.usage, rows=data.rows)
        os.replace(tmp, cache)
    return data


@dataclass
class FerPlusVotes:
    usage: np.ndarray  # (N,) str
    names: np.ndarray  # (N,) str, '' where FER+ made no image
    votes: np.ndarray  # (N, 10) float32, FERPLUS_VOTE_COLUMNS order


def read_ferplus_votes(path: str | Path) -> FerPlusVotes:
    """Read FER+ `fer2013new.csv` (columns: Usage, Image name, then the ten vote counts)."""
    path = Path(path)
    usage, names, votes = [], [], []
    with _open_text(path) as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None or len(header) != 12:
            raise DataError(f"{path}: expected a 12-column header 'Usage,Image name,neutral,...,NF', got {header}")
        for n, rec in enumerate(reader):
            where = f"{path}: row {n} (line {n + 2})"
            if len(rec) != 12:
                raise DataError(f"{where}: expected 12 fields, got {len(rec)}")
            try:
                v = [float(x) for x in rec[2:]]
            except ValueError:
                raise DataError(f"{where}: vote counts must be numbers, got {rec[2:]}") from None
            if min(v) < 0:
                raise DataError(f"{where}: negative vote count")
            try:
                usage.append(canonical_split(rec[0].strip()))
            except DataError as e:
                raise DataError(f"{where}: {e}") from None
            names.append(rec[1].strip())
            votes.append(v)
    if not votes:
        raise DataError(f"{path}: no data rows")
    return FerPlusVotes(np.array(usage), np.array(names), np.array(votes, np.float32))


def ferplus_targets(votes: FerPlusVotes):
    """FER+ labels from votes.

    Returns `(keep, majority, distribution)`: `keep` drops rows with no image name or whose top vote
    is "unknown" or "not a face"; `majority` is the plurality emotion (ties go to the earlier column,
    as FER+ does); `distribution` is the vote share over the eight emotions.
    """
    v = votes.votes
    top = np.argmax(v, axis=1)
    keep = (votes.names != "") & (top < len(FERPLUS_CLASSES))
    emo = v[:, : len(FERPLUS_CLASSES)]
    totals = emo.sum(axis=1, keepdims=True)
    dist = np.divide(emo, totals, out=np.zeros_like(emo), where=totals > 0)
    majority = np.argmax(emo, axis=1).astype(np.int64)
    return keep, majority, dist.astype(np.float32)


def read_image_folder(root: str | Path, classes: list[str] = FER2013_CLASSES) -> FerImages:
    """Read `<root>/<split>/<label>/*.png|jpg`; label folders are class names or FER-2013 indices.

    Images are converted to grey and resized to 48x48 if needed (with the project's preprocessing).
    """
    import cv2

    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: image folder not found")
    images, labels, usage, rows = [], [], [], []
    for split_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        split = canonical_split(split_dir.name)
        for label_dir in sorted(p for p in split_dir.iterdir() if p.is_dir()):
            name = label_dir.name.lower()
            if name.isdigit() and int(name) < len(classes):
                label = int(name)
            elif name in classes:
                label = classes.index(name)
            else:
                raise DataError(f"{label_dir}: folder name is not a class of {classes} or an index")
            for file in sorted(label_dir.iterdir()):
                if file.suffix.lower() not in IMAGE_SUFFIXES:
                    continue
                img = cv2.imread(str(file), cv2.IMREAD_GRAYSCALE)
                if img is None:
                    raise DataError(f"{file}: not a readable image")
                if img.shape != (IMAGE_SIZE, IMAGE_SIZE):
                    img = cv2.resize(img, (IMAGE_SIZE, IMAGE_SIZE), interpolation=cv2.INTER_AREA)
                images.append(img)
                labels.append(label)
                usage.append(split)
                rows.append(int(file.stem) if file.stem.isdigit() else len(rows))
    if not images:
        raise DataError(f"{root}: no images found under <split>/<label>/")
    return FerImages(np.stack(images), np.array(labels, np.int64), np.array(usage), np.array(rows, np.int64), str(root))


@dataclass
class Split:
    """One split ready for training: images, hard labels and (for FER+) soft targets."""

    images: np.ndarray
    labels: np.ndarray
    soft: np.ndarray | None = None
    rows: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))

    def __len__(self) -> int:
        return len(self.images)


def build_splits(images: FerImages, scheme: str = "fer2013", votes: FerPlusVotes | None = None):
    """Split FER images into Training / PublicTest / PrivateTest under a label scheme.

    FER+: rows are aligned by position with `fer2013.csv`; excluded rows (see `ferplus_targets`) are
    dropped from every split, so the FER+ test is the usual majority-vote test set.
    """
    if scheme not in SCHEMES:
        raise DataError(f"unknown label scheme {scheme!r}; expected one of {sorted(SCHEMES)}")
    labels, soft, keep = images.labels, None, np.ones(len(images), bool)
    if scheme == "ferplus":
        if votes is None:
            raise DataError("the FER+ scheme needs the FER+ votes file (fer2013new.csv)")
        if len(votes.usage) != len(images):
            raise DataError(
                f"FER+ votes have {len(votes.usage)} rows but the images have {len(images)}; "
                "they must be row-aligned with fer2013.csv"
            )
        mismatch = np.nonzero(votes.usage[images.rows] != images.usage)[0] if len(images) else []
        if len(mismatch):
            raise DataError(f"FER+ Usage differs from fer2013.csv at row {int(images.rows[mismatch[0]])}")
        keep, labels, soft = ferplus_targets(votes)
        keep, labels, soft = keep[images.rows], labels[images.rows], soft[images.rows]
    out = {}
    for split in SPLITS:
        m = (images.usage == split) & keep
        out[split] = Split(images.images[m], labels[m], None if soft is None else soft[m], images.rows[m])
    return out


def subset(split: Split, n: int, rng: np.random.Generator) -> Split:
    """`n` faces of `split` drawn without replacement (in file order), or all of them if it has fewer."""
    if len(split) <= n:
        return split
    idx = np.sort(rng.choice(len(split), n, replace=False))
    return Split(split.images[idx], split.labels[idx], None if split.soft is None else split.soft[idx], split.rows[idx])


def load_splits(
    data: str | Path | None = None,
    scheme: str = "fer2013",
    image_folder: str | Path = "",
    limit: int = 0,
    seed: int = 0,
    cache_dir: str | Path | None = CACHE_DIR,
    progress: bool = True,
):
    """The one split loader of every trainer, evaluator and benchmark: `(splits, votes, source)`.

    `data`: the folder holding `fer2013/` and `ferplus/` (default `default_data_dir()`); the CSV is found
    by `fer2013_csv`, the FER+ votes are read when present (cleaning uses them) and required by the
    `ferplus` scheme. `image_folder`: read `<split>/<label>/*.png` instead (FER-2013 labels only).
    `limit`: at most that many faces per split, drawn with `seed` (quick trials).
    """
    data_dir = Path(data) if data else default_data_dir()
    votes = None
    if image_folder:
        if scheme != "fer2013":
            raise DataError("an image folder carries 7-class FER-2013 labels; use --scheme fer2013")
        images = read_image_folder(image_folder)
        source = str(image_folder)
    else:
        csv_path = fer2013_csv(data_dir)
        images = read_fer2013_csv(csv_path, cache_dir=cache_dir, progress=progress)
        source = str(csv_path)
        votes_path = data_dir / FERPLUS_CSV
        if votes_path.exists():
            votes = read_ferplus_votes(votes_path)
        elif scheme == "ferplus":
            raise DataError(f"{votes_path}: file not found (needed for the FER+ scheme)")
    splits = build_splits(images, scheme, votes)
    if limit:
        rng = np.random.default_rng(seed)
        splits = {k: subset(s, limit, rng) for k, s in splits.items()}
    return splits, votes, source

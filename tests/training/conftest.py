"""Tiny FER-format data written at test time (no FER data in the repo)."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from training.data import FERPLUS_VOTE_COLUMNS

SPLIT_SIZES = {"Training": 70, "PublicTest": 21, "PrivateTest": 21}


def synthetic_faces(n: int, labels: np.ndarray, seed: int = 0) -> np.ndarray:
    """48x48 grey images whose brightness pattern depends on the label, so a net can learn something."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:48, 0:48]
    out = np.empty((n, 48, 48), np.uint8)
    for i, c in enumerate(labels):
        base = 60 + 25 * c + 40 * np.sin((xx + 3 * c) / (4 + c)) * np.cos(yy / 6)
        out[i] = np.clip(base + rng.normal(0, 12, (48, 48)), 0, 255).astype(np.uint8)
    return out


def write_fer_csv(path: Path, images, labels, usage, gz: bool = False) -> Path:
    lines = ["emotion,pixels,Usage"]
    lines += [f"{lab},{' '.join(map(str, img.ravel()))},{u}" for img, lab, u in zip(images, labels, usage, strict=True)]
    text = "\n".join(lines) + "\n"
    if gz:
        with gzip.open(path, "wt") as f:
            f.write(text)
    else:
        path.write_text(text)
    return path


def votes_for(labels7: np.ndarray, rng) -> np.ndarray:
    """FER+ style votes: most annotators agree with a FER+ class derived from the FER-2013 label."""
    fer_to_plus = {0: 4, 1: 5, 2: 6, 3: 1, 4: 3, 5: 2, 6: 0}
    votes = np.zeros((len(labels7), len(FERPLUS_VOTE_COLUMNS)), int)
    for i, lab in enumerate(labels7):
        votes[i, fer_to_plus[int(lab)]] = 7
        votes[i, rng.integers(0, 8)] += 3
    return votes


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> Path:
    """A data folder shaped like ../shared/data: fer2013/fer2013.csv.gz + ferplus/fer2013new.csv."""
    root = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(1)
    usage = np.concatenate([[s] * n for s, n in SPLIT_SIZES.items()])
    labels = np.concatenate([np.arange(n) % 7 for n in SPLIT_SIZES.values()])
    images = synthetic_faces(len(labels), labels)
    images[3] = 0  # an all-black row, as FER-2013 has
    (root / "fer2013").mkdir()
    write_fer_csv(root / "fer2013" / "fer2013.csv.gz", images, labels, usage, gz=True)
    votes = votes_for(labels, rng)
    names = [f"fer{i:07d}.png" for i in range(len(labels))]
    votes[5] = 0
    votes[5, FERPLUS_VOTE_COLUMNS.index("NF")] = 10  # not a face
    names[8] = ""  # FER+ made no image
    votes[10] = 0
    votes[10, FERPLUS_VOTE_COLUMNS.index("unknown")] = 6  # top vote unknown
    votes[10, 0] = 4
    (root / "ferplus").mkdir()
    header = "Usage,Image name," + ",".join(FERPLUS_VOTE_COLUMNS)
    rows = [f"{u},{n}," + ",".join(map(str, v)) for u, n, v in zip(usage, names, votes, strict=True)]
    (root / "ferplus" / "fer2013new.csv").write_text(header + "\n" + "\n".join(rows) + "\n")
    return root

"""Drop training images that are not faces, and say how many and why.

Signals: an image with (almost) no contrast (the 11 all-black Training rows, blank frames), and the
FER+ annotators' verdict: "not a face" as the plurality vote, or no FER+ image at all (FER+ skipped
those rows, mostly non-faces). Only the training split is cleaned; test splits stay standard so the
numbers compare with published ones.
"""

from __future__ import annotations

import numpy as np

from .data import FERPLUS_VOTE_COLUMNS, FerPlusVotes

MIN_CONTRAST = 2.0  # grey-level standard deviation below which an image is blank


def non_face_reasons(images: np.ndarray, rows: np.ndarray, votes: FerPlusVotes | None = None) -> dict:
    """Boolean masks (over `images`) of each reason to drop an image."""
    std = images.reshape(len(images), -1).std(axis=1)
    reasons = {"blank (no contrast)": std < MIN_CONTRAST}
    if votes is not None:
        nf = FERPLUS_VOTE_COLUMNS.index("NF")
        top = np.argmax(votes.votes[rows], axis=1)
        reasons["FER+ vote: not a face"] = top == nf
        reasons["FER+ gave no image (unnamed row)"] = votes.names[rows] == ""
    return reasons


def clean(split, votes: FerPlusVotes | None = None):
    """Return `(cleaned_split, report)`; the report counts removals per reason (a row may have several)."""
    reasons = non_face_reasons(split.images, split.rows, votes)
    drop = np.zeros(len(split.images), bool)
    for mask in reasons.values():
        drop |= mask
    keep = ~drop
    report = {
        "removed": int(drop.sum()),
        "kept": int(keep.sum()),
        "by_reason": {k: int(v.sum()) for k, v in reasons.items()},
        "removed_rows": [int(r) for r in split.rows[drop]],
    }
    cleaned = type(split)(
        split.images[keep], split.labels[keep], None if split.soft is None else split.soft[keep], split.rows[keep]
    )
    return cleaned, report

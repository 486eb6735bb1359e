"""Class balancing, selectable per run: none, oversample, smote, adasyn, class_weights.

Resamplers return a new training set; `class_weights` leaves the data alone and returns per-class
loss weights for `model.fit`. SMOTE and ADASYN synthesise images by interpolating between
neighbouring images of a class (imbalanced-learn on the flattened pixels); their synthetic rows get
one-hot targets, since interpolating FER+ vote distributions is not meaningful. Float rows (a
network's features, `training.heads`) are interpolated as they are; uint8 images stay uint8.
"""

from __future__ import annotations

import numpy as np

METHODS = ("none", "oversample", "smote", "adasyn", "class_weights")


def class_weights(labels: np.ndarray, num_classes: int) -> dict[int, float]:
    """Inverse-frequency weights normalised to mean 1 over the classes present (sklearn's 'balanced')."""
    counts = np.bincount(labels, minlength=num_classes).astype(np.float64)
    present = counts > 0
    w = np.zeros(num_classes)
    w[present] = counts[present].sum() / (present.sum() * counts[present])
    return {i: float(w[i]) for i in range(num_classes)}


def balance(
    images: np.ndarray,
    labels: np.ndarray,
    method: str,
    soft: np.ndarray | None = None,
    seed: int = 0,
    num_classes: int | None = None,
):
    """Return `(images, labels, soft, class_weight)` after applying `method`."""
    if method not in METHODS:
        raise ValueError(f"unknown balancing method {method!r}; choose from {METHODS}")
    num_classes = num_classes or int(labels.max()) + 1
    if method == "none":
        return images, labels, soft, None
    if method == "class_weights":
        return images, labels, soft, class_weights(labels, num_classes)
    if method == "oversample":
        rng = np.random.default_rng(seed)
        counts = np.bincount(labels, minlength=num_classes)
        target = counts.max()
        idx = [np.arange(len(labels))]
        for c in range(num_classes):
            members = np.nonzero(labels == c)[0]
            if 0 < len(members) < target:
                idx.append(rng.choice(members, target - len(members), replace=True))
        idx = np.concatenate(idx)
        return images[idx], labels[idx], None if soft is None else soft[idx], None

    from imblearn.over_sampling import ADASYN, SMOTE

    counts = np.bincount(labels, minlength=num_classes)
    k = int(max(1, min(5, counts[counts > 0].min() - 1)))
    sampler = SMOTE(k_neighbors=k, random_state=seed) if method == "smote" else ADASYN(n_neighbors=k, random_state=seed)
    flat = images.reshape(len(images), -1).astype(np.float32)
    try:
        x_res, y_res = sampler.fit_resample(flat, labels)
    except RuntimeError as e:  # ADASYN on classes with no overlap
        raise ValueError(f"{method} cannot balance this data: {e}") from None
    # imbalanced-learn keeps the originals first, then appends the synthetic rows.
    n = len(images)
    x_new = x_res[n:]
    if images.dtype == np.uint8:
        x_new = np.clip(np.rint(x_new), 0, 255).astype(np.uint8)
    x_new = x_new.astype(images.dtype).reshape((-1,) + images.shape[1:])
    out_images = np.concatenate([images, x_new])
    out_labels = np.asarray(y_res, np.int64)
    out_soft = None
    if soft is not None:
        out_soft = np.concatenate([soft, np.eye(soft.shape[1], dtype=soft.dtype)[out_labels[n:]]])
    return out_images, out_labels, out_soft, None

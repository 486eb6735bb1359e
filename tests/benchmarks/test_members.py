"""benchmarks.members: the pair weight is chosen on the labels it is given, and 0 means "leave it out"."""

from __future__ import annotations

import numpy as np

from benchmarks.members import best_pair, markdown


def _probs(labels, right, n_classes=3, sure=0.7, seed=0):
    """Probabilities that put `sure` on the true label where `right`, else on the next label."""
    pred = np.where(right, labels, (labels + 1) % n_classes)
    p = np.full((len(labels), n_classes), (1 - sure) / (n_classes - 1))
    p[np.arange(len(labels)), pred] = sure
    return p


def test_a_member_that_only_adds_errors_gets_weight_zero():
    labels = np.arange(300) % 3
    ref = _probs(labels, np.arange(300) % 10 != 0)  # 90% right
    worse = _probs(labels, np.arange(300) % 2 == 0)  # 50% right, wrong where the reference is sure
    pair = best_pair(ref, worse, labels)
    assert pair["weight"] == 0.0
    assert pair["accuracy"] == float((ref.argmax(1) == labels).mean())


def test_a_complementary_member_is_weighted_in_and_gains():
    labels = np.arange(300) % 3
    right_ref = np.arange(300) % 5 != 0  # wrong on every 5th face, unsure there
    ref = _probs(labels, right_ref)
    ref[~right_ref] = _probs(labels[~right_ref], np.zeros((~right_ref).sum(), bool), sure=0.4)
    other = _probs(labels, np.arange(300) % 5 != 1, sure=0.9)  # wrong elsewhere, sure where the reference is not
    pair = best_pair(ref, other, labels)
    assert 0.0 < pair["weight"] < 1.0
    assert pair["accuracy"] > max((ref.argmax(1) == labels).mean(), (other.argmax(1) == labels).mean())


def test_markdown_reports_the_gain_against_the_reference():
    res = {
        "reference": "ref",
        "reference_val_accuracy": 0.80,
        "reference_val_macro_f1": 0.6,
        "rows": [
            {
                "member": "m",
                "how": "as served",
                "input": 112,
                "tta": ["flip"],
                "val_accuracy": 0.78,
                "disagreement": 0.12,
                "pair": {"weight": 0.3, "accuracy": 0.815, "log_loss": 0.5, "macro_f1": 0.62},
            }
        ],
    }
    text = markdown(res)
    assert "| `m` | as served | 112 | 78.00% | 12.0% | 0.30 | 81.50% | +1.50% | 0.620 |" in text

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, confusion_matrix, precision_recall_fscore_support

from training.metrics import classification_metrics, format_report, plot_confusion

CLASSES = ["angry", "disgust", "fear", "happy"]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_metrics_match_scikit_learn(seed):
    rng = np.random.default_rng(seed)
    y_true = rng.integers(0, 4, 300)
    y_pred = np.where(rng.random(300) < 0.6, y_true, rng.integers(0, 4, 300))
    y_pred[y_pred == 1] = 2  # class 1 never predicted: precision 0 without a division warning
    m = classification_metrics(y_true, y_pred, CLASSES)
    p, r, f, s = precision_recall_fscore_support(y_true, y_pred, labels=range(4), zero_division=0)
    assert m["accuracy"] == pytest.approx(accuracy_score(y_true, y_pred))
    assert m["macro_f1"] == pytest.approx(f.mean())
    assert m["macro_precision"] == pytest.approx(p.mean()) and m["macro_recall"] == pytest.approx(r.mean())
    for i, c in enumerate(CLASSES):
        assert m["per_class"][c]["precision"] == pytest.approx(p[i])
        assert m["per_class"][c]["recall"] == pytest.approx(r[i])
        assert m["per_class"][c]["f1"] == pytest.approx(f[i])
        assert m["per_class"][c]["support"] == s[i]
    assert m["confusion"] == confusion_matrix(y_true, y_pred, labels=range(4)).tolist()


def test_known_small_case():
    m = classification_metrics([0, 0, 1, 3], [0, 1, 1, 3], CLASSES)
    assert m["accuracy"] == 0.75
    assert m["per_class"]["angry"] == {"precision": 1.0, "recall": 0.5, "f1": pytest.approx(2 / 3), "support": 2}
    assert m["confusion"][0] == [1, 1, 0, 0]
    assert "accuracy    0.7500   macro-F1 0.5833" in format_report(m)


def test_confusion_png_is_written(tmp_path):
    m = classification_metrics([0, 1, 2, 3], [0, 1, 2, 2], CLASSES)
    plot_confusion(m, tmp_path / "cm.png")
    assert (tmp_path / "cm.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (tmp_path / "cm.png").stat().st_size > 5000

import numpy as np
import pytest

from training import data as fer
from training.balance import balance, class_weights
from training.clean import clean

from .conftest import synthetic_faces


@pytest.fixture
def imbalanced():
    labels = np.array([0] * 40 + [1] * 8 + [2] * 20)
    return synthetic_faces(len(labels), labels), labels


def test_none_keeps_everything(imbalanced):
    x, y = imbalanced
    x2, y2, soft, cw = balance(x, y, "none", num_classes=3)
    assert x2 is x and y2 is y and cw is None


@pytest.mark.parametrize("method", ["oversample", "smote"])
def test_resamplers_equalise_class_counts(imbalanced, method):
    x, y = imbalanced
    x2, y2, _, cw = balance(x, y, method, seed=0, num_classes=3)
    assert np.bincount(y2).tolist() == [40, 40, 40]
    assert x2.shape == (120, 48, 48) and x2.dtype == np.uint8 and cw is None
    assert (x2[: len(x)] == x).all()  # originals kept


def test_smote_synthesises_new_images_between_neighbours(imbalanced):
    x, y = imbalanced
    x2, y2, _, _ = balance(x, y, "smote", seed=0, num_classes=3)
    new = x2[len(x) :][y2[len(x) :] == 1].astype(int)
    originals = x[y == 1].astype(int)
    # synthetic images are not copies, yet lie within the class's pixel range
    assert not any((new[0] == o).all() for o in originals)
    assert new.min() >= originals.min() and new.max() <= originals.max()


def test_oversample_only_duplicates(imbalanced):
    x, y = imbalanced
    x2, y2, _, _ = balance(x, y, "oversample", seed=0, num_classes=3)
    flat = {img.tobytes() for img in x}
    assert all(img.tobytes() in flat for img in x2)


def test_adasyn_adds_minority_samples(imbalanced):
    # ADASYN needs classes that overlap (it weights samples by their majority-class neighbours)
    _, y = imbalanced
    x = np.random.default_rng(0).integers(0, 256, (len(y), 48, 48), dtype=np.uint8)
    x2, y2, _, _ = balance(x, y, "adasyn", seed=0, num_classes=3)
    before, after = np.bincount(y), np.bincount(y2)
    assert after[0] == before[0] and after[1] > 3 * before[1] and after[2] > before[2]


def test_class_weights_are_inverse_frequency(imbalanced):
    x, y = imbalanced
    x2, y2, _, cw = balance(x, y, "class_weights", num_classes=3)
    assert x2 is x
    assert cw[1] == pytest.approx(68 / (3 * 8)) and cw[0] == pytest.approx(68 / (3 * 40))
    from sklearn.utils.class_weight import compute_class_weight

    assert np.allclose([cw[i] for i in range(3)], compute_class_weight("balanced", classes=np.arange(3), y=y))
    assert class_weights(np.array([0, 0, 2]), 3)[1] == 0.0


def test_soft_targets_follow_resampling(imbalanced):
    x, y = imbalanced
    soft = np.eye(3, dtype=np.float32)[y] * 0.8 + 0.2 / 3
    _, y2, s2, _ = balance(x, y, "oversample", soft=soft, num_classes=3)
    assert (s2.argmax(axis=1) == y2).all()
    _, y3, s3, _ = balance(x, y, "smote", soft=soft, num_classes=3)
    assert s3.shape == (120, 3) and (s3.argmax(axis=1) == y3).all()


def test_unknown_method_is_refused(imbalanced):
    with pytest.raises(ValueError, match="unknown balancing method"):
        balance(*imbalanced, "magic")


def test_cleaning_removes_blank_and_non_face_rows(tiny_data):
    images = fer.read_fer2013_csv(tiny_data / "fer2013" / "fer2013.csv.gz")
    votes = fer.read_ferplus_votes(tiny_data / "ferplus" / "fer2013new.csv")
    train = fer.build_splits(images, "fer2013")["Training"]
    cleaned, report = clean(train, votes)
    assert sorted(report["removed_rows"]) == [3, 5, 8]  # black, NF vote, unnamed
    assert report["by_reason"] == {
        "blank (no contrast)": 1,
        "FER+ vote: not a face": 1,
        "FER+ gave no image (unnamed row)": 1,
    }
    assert len(cleaned) == len(train) - 3 and 3 not in cleaned.rows
    only_blank, r2 = clean(train, None)
    assert r2["removed_rows"] == [3]

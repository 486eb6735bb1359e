import numpy as np
import pytest

from model_core.preprocess import combine_members, crop_face, predict_with_tta, preprocess_faces


def test_grey_and_rgb_faces_become_the_same_unit_scaled_batch():
    grey = np.tile(np.arange(96, dtype=np.uint8)[None, :], (96, 1))
    rgb = np.repeat(grey[:, :, None], 3, axis=2)
    batch = preprocess_faces([grey, rgb], {"size": 48, "channels": 1, "scale": "unit"})
    assert batch.shape == (2, 48, 48, 1) and batch.dtype == np.float32
    assert np.allclose(batch[0], batch[1], atol=1 / 255)
    assert 0.0 <= batch.min() and batch.max() <= 1.0
    assert batch[0, 0, 0, 0] < batch[0, 0, -1, 0]        # left-to-right ramp preserved


def test_three_channel_centered_spec():
    face = np.full((10, 10, 3), 255, np.uint8)
    batch = preprocess_faces([face], {"size": 32, "channels": 3, "scale": "centered"})
    assert batch.shape == (1, 32, 32, 3) and np.allclose(batch, 1.0)


def test_bad_specs_and_faces_are_refused():
    with pytest.raises(ValueError, match="channels"):
        preprocess_faces([np.zeros((4, 4), np.uint8)], {"channels": 2})
    with pytest.raises(ValueError, match="uint8"):
        preprocess_faces([np.zeros((4, 4), np.float32)])


def test_crop_face_is_square_with_margin_and_padded_at_edges():
    img = np.zeros((100, 200, 3), np.uint8)
    img[40:60, 90:110] = 200
    crop = crop_face(img, [90, 40, 20, 20], margin=1.5)
    assert crop.shape == (30, 30, 3)
    assert crop[15, 15, 0] == 200 and crop[0, 0, 0] == 0
    edge = crop_face(img, [0, 0, 40, 20], margin=1.0)    # square of 40 starting above the image
    assert edge.shape == (40, 40, 3)
    with pytest.raises(ValueError, match="outside"):
        crop_face(img, [500, 500, 10, 10])


def test_flip_tta_averages_a_face_and_its_mirror():
    batch = np.random.default_rng(0).random((3, 8, 8, 1)).astype(np.float32)
    seen = []

    def predict(x):
        seen.append(x.shape)
        # "probability" of class 0 = mean of the left half, which a mirror changes
        left = x[:, :, :4, 0].mean(axis=(1, 2))
        return np.stack([left, 1 - left], axis=1)

    plain = predict_with_tta(predict, batch, [])
    flipped = predict_with_tta(predict, batch, ["flip"])
    right = batch[:, :, 4:, 0].mean(axis=(1, 2))
    assert seen == [(3, 8, 8, 1), (6, 8, 8, 1)]             # one call, both views
    assert np.allclose(flipped[:, 0], (plain[:, 0] + right) / 2)
    with pytest.raises(ValueError, match="unknown test-time augmentation"):
        predict_with_tta(predict, batch, ["rotate"])


def test_combine_members_maps_labels_by_name_and_weights():
    seven = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
    eight = ["neutral", "happy", "surprise", "sad", "angry", "disgust", "fear", "contempt"]
    a = np.zeros((1, 7)); a[0, seven.index("sad")] = 1.0
    b = np.zeros((1, 8)); b[0, eight.index("happy")] = 0.5; b[0, eight.index("contempt")] = 0.5
    p = combine_members([a, b], [seven, eight], [3, 1], seven)
    assert p.shape == (1, 7) and np.isclose(p.sum(), 1.0)
    assert np.isclose(p[0, seven.index("sad")], 0.75)
    assert np.isclose(p[0, seven.index("happy")], 0.25)    # contempt dropped, happy renormalised

import numpy as np
import pytest

from model_core.preprocess import (
    ALIGN_MIN_DEGREES,
    combine_members,
    crop_face,
    eye_roll,
    predict_with_tta,
    preprocess_faces,
)


def test_grey_and_rgb_faces_become_the_same_unit_scaled_batch():
    grey = np.tile(np.arange(96, dtype=np.uint8)[None, :], (96, 1))
    rgb = np.repeat(grey[:, :, None], 3, axis=2)
    batch = preprocess_faces([grey, rgb], {"size": 48, "channels": 1, "scale": "unit"})
    assert batch.shape == (2, 48, 48, 1) and batch.dtype == np.float32
    assert np.allclose(batch[0], batch[1], atol=1 / 255)
    assert 0.0 <= batch.min() and batch.max() <= 1.0
    assert batch[0, 0, 0, 0] < batch[0, 0, -1, 0]  # left-to-right ramp preserved


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
    edge = crop_face(img, [0, 0, 40, 20], margin=1.0)  # square of 40 starting above the image
    assert edge.shape == (40, 40, 3)
    with pytest.raises(ValueError, match="outside"):
        crop_face(img, [500, 500, 10, 10])


def _face_scene(angle: float):
    """A 200x200 grey scene with an asymmetric 'face' (eyes, a mouth off to one side) turned by `angle`
    degrees counter-clockwise about (100, 100), and where its eyes went."""
    import cv2

    img = np.full((200, 200), 90, np.uint8)
    cv2.circle(img, (80, 85), 8, 255, -1)
    cv2.circle(img, (120, 85), 8, 255, -1)
    cv2.rectangle(img, (85, 125), (125, 135), 20, -1)
    m = cv2.getRotationMatrix2D((100, 100), angle, 1.0)
    turned = cv2.warpAffine(img, m, (200, 200), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    eyes = [(m @ np.array([x, y, 1.0])).tolist() for x, y in ((80, 85), (120, 85))]
    return np.repeat(turned[..., None], 3, axis=2), {"left_eye": eyes[0], "right_eye": eyes[1]}


def test_eye_roll_reads_the_tilt_whichever_eye_is_called_left():
    assert eye_roll({"left_eye": [10, 10], "right_eye": [20, 20]}) == pytest.approx(45.0)
    assert eye_roll({"left_eye": [20, 20], "right_eye": [10, 10]}) == pytest.approx(45.0)
    assert eye_roll({"left_eye": [10, 20], "right_eye": [30, 20]}) == pytest.approx(0.0)
    assert eye_roll({"nose": [1, 2]}) is None and eye_roll(None) is None
    assert eye_roll({"left_eye": [5, 5], "right_eye": [5, 9]}) is None  # no horizontal extent


@pytest.mark.parametrize("angle", [-30, -12, 20, 35])
def test_a_tilted_face_is_cropped_upright(angle):
    upright, eyes0 = _face_scene(0)
    tilted, eyes = _face_scene(angle)
    assert eye_roll(eyes) == pytest.approx(-angle, abs=0.01)  # counter-clockwise: the right eye rises
    box = [50, 50, 100, 100]
    ref = crop_face(upright, box, keypoints=eyes0).astype(float)
    aligned = crop_face(tilted, box, keypoints=eyes).astype(float)
    plain = crop_face(tilted, box).astype(float)
    assert aligned.shape == ref.shape == plain.shape == (110, 110, 3)
    inner = (slice(15, 95), slice(15, 95))  # away from the replicated borders
    err_aligned = np.abs(aligned[inner] - ref[inner]).mean()
    err_plain = np.abs(plain[inner] - ref[inner]).mean()
    assert err_aligned < 3.0 and err_plain > 4 * err_aligned


def test_a_face_within_the_training_tilt_is_not_resampled():
    tilted, eyes = _face_scene(ALIGN_MIN_DEGREES / 2)
    np.testing.assert_array_equal(
        crop_face(tilted, [50, 50, 100, 100], keypoints=eyes), crop_face(tilted, [50, 50, 100, 100])
    )
    far, eyes = _face_scene(80)  # eyes nearly vertical: a profile or a wrong landmark, left alone
    np.testing.assert_array_equal(
        crop_face(far, [50, 50, 100, 100], keypoints=eyes), crop_face(far, [50, 50, 100, 100])
    )


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
    assert seen == [(3, 8, 8, 1), (6, 8, 8, 1)]  # one call, both views
    assert np.allclose(flipped[:, 0], (plain[:, 0] + right) / 2)
    with pytest.raises(ValueError, match="unknown test-time augmentation"):
        predict_with_tta(predict, batch, ["rotate"])


def test_combine_members_maps_labels_by_name_and_weights():
    seven = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
    eight = ["neutral", "happy", "surprise", "sad", "angry", "disgust", "fear", "contempt"]
    a = np.zeros((1, 7))
    a[0, seven.index("sad")] = 1.0
    b = np.zeros((1, 8))
    b[0, eight.index("happy")] = 0.5
    b[0, eight.index("contempt")] = 0.5
    p = combine_members([a, b], [seven, eight], [3, 1], seven)
    assert p.shape == (1, 7) and np.isclose(p.sum(), 1.0)
    assert np.isclose(p[0, seven.index("sad")], 0.75)
    assert np.isclose(p[0, seven.index("happy")], 0.25)  # contempt dropped, happy renormalised

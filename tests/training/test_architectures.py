"""Every registered network builds for FER-2013 (7) and FER+ (8) classes and trains one step.

Big networks are built at 32x32 (the smallest side EfficientNet and the VGG/ResNet stems accept) and
trained eagerly: tracing a ResNet/EfficientNet graph costs far more than one eager step at that size.
"""
import numpy as np
import pytest

keras = pytest.importorskip("keras")

from training.architectures import ARCHITECTURES, build, default_input  # noqa: E402
from training.keras_apps import IMAGENET_MEAN_RGB, IMAGENET_STD_RGB, efficientnet  # noqa: E402
from training.vggface import VGGFACE1_MEAN_BGR, vggface_vgg16  # noqa: E402

SMALL = 32
BIG = ["vggface_vgg16", "vggface2_resnet50", "resnet50"] + [f"efficientnet_b{i}" for i in range(5)]


def _batch(channels, num_classes, size=SMALL):
    rng = np.random.default_rng(0)
    x = rng.random((2, size, size, channels), dtype=np.float32)
    y = np.eye(num_classes, dtype=np.float32)[[0, num_classes - 1]]
    return x, y


def test_registry_lists_the_new_networks_with_their_native_inputs():
    for name in BIG:
        assert name in ARCHITECTURES
    for name in ("compact_cnn", "tiny_cnn", "wide_cnn"):
        assert default_input(name) == {"size": 48, "channels": 1, "scale": "unit"}
    assert default_input("vggface_vgg16") == {"size": 224, "channels": 3, "scale": "unit"}
    assert default_input("vggface2_resnet50")["size"] == 224
    assert default_input("resnet50")["size"] == 224
    assert [default_input(f"efficientnet_b{i}")["size"] for i in range(5)] == [224, 240, 260, 300, 380]


def _check_probs(model, x, num_classes):
    probs = keras.ops.convert_to_numpy(model(x, training=False))
    assert probs.shape == (2, num_classes)
    assert np.all(probs >= 0)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)


def _build_small(name, num_classes):
    keras.utils.clear_session()
    channels = default_input(name)["channels"]
    # mobilenet_faceres: random weights here (the real ones are a training-time download; its own
    # test in test_finetune.py checks them)
    options = {"weights": None} if name == "mobilenet_faceres" else {}
    size = SMALL
    model = build(name, num_classes, {"size": size}, **options)
    assert model.input_shape == (None, size, size, channels)
    assert model.output_shape == (None, num_classes)
    assert model.layers[-1].name == "predictions"
    return model, channels


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_builds_for_fer2013_and_trains_one_step(name):
    model, channels = _build_small(name, 7)
    x, y = _batch(channels, 7)
    head = model.get_layer("predictions")
    before = head.get_weights()[0].copy()
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="categorical_crossentropy",
                  run_eagerly=True)
    loss = model.train_on_batch(x, y)
    assert np.isfinite(loss)
    assert not np.allclose(head.get_weights()[0], before), "one step must move the classifier"
    _check_probs(model, x, 7)


@pytest.mark.parametrize("name", sorted(ARCHITECTURES))
def test_builds_for_ferplus(name):
    """8 classes only changes the last layer, which the 7-class test already trains; a forward pass
    is enough here and halves the cost of the big networks."""
    model, channels = _build_small(name, 8)
    _check_probs(model, _batch(channels, 8)[0], 8)


def test_vggface_input_layer_maps_unit_rgb_to_mean_subtracted_bgr():
    model = vggface_vgg16((SMALL, SMALL, 3), 7)
    stem = keras.Model(model.input, model.get_layer("vggface_input").output)
    x = np.zeros((1, SMALL, SMALL, 3), np.float32)
    x[..., 0], x[..., 1], x[..., 2] = 1.0, 0.5, 0.0  # R, G, B
    out = keras.ops.convert_to_numpy(stem(x))[0, 0, 0]
    expected = np.array([0.0, 127.5, 255.0]) - np.array(VGGFACE1_MEAN_BGR)  # B, G, R
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-3)


def test_grey_input_is_replicated_to_rgb_in_the_model():
    keras.utils.clear_session()
    rgb = vggface_vgg16((SMALL, SMALL, 3), 7, dropout=0.0)
    grey = vggface_vgg16((SMALL, SMALL, 1), 7, dropout=0.0)
    grey.set_weights(rgb.get_weights())
    x = np.random.default_rng(1).random((2, SMALL, SMALL, 1), dtype=np.float32)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(grey(x)),
                               keras.ops.convert_to_numpy(rgb(np.repeat(x, 3, axis=-1))), atol=1e-5)


def test_saved_model_reloads_without_custom_objects(tmp_path):
    """The app loads .keras files with plain Keras: the input stems must be stock layers/ops."""
    keras.utils.clear_session()
    model = vggface_vgg16((SMALL, SMALL, 1), 8)
    path = tmp_path / "m.keras"
    model.save(path)
    again = keras.models.load_model(path, compile=False)
    x = np.random.default_rng(2).random((2, SMALL, SMALL, 1), dtype=np.float32)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(again(x)),
                               keras.ops.convert_to_numpy(model(x)), atol=1e-5)


def test_imagenet_weights_are_never_downloaded(tmp_path):
    with pytest.raises(ValueError, match="download"):
        build("resnet50", 7, {"size": SMALL}, weights="imagenet")
    with pytest.raises(FileNotFoundError, match="nope.h5"):
        build("efficientnet_b0", 7, {"size": SMALL}, weights=str(tmp_path / "nope.h5"))


def test_efficientnet_local_weights_load_with_true_imagenet_statistics(tmp_path):
    keras.utils.clear_session()
    source = keras.applications.EfficientNetB0(include_top=False, weights=None,
                                               input_shape=(SMALL, SMALL, 3))
    stem = source.get_layer("stem_conv")
    kernel = np.random.default_rng(3).standard_normal(stem.kernel.shape).astype(np.float32)
    stem.set_weights([kernel])
    path = tmp_path / "efficientnetb0_notop.weights.h5"
    source.save_weights(path)

    model = efficientnet("b0", (SMALL, SMALL, 1), 7, weights=str(path))
    base = model.get_layer("efficientnetb0_base")
    np.testing.assert_array_equal(base.get_layer("stem_conv").get_weights()[0], kernel)
    norm = next(l for l in base.layers if isinstance(l, keras.layers.Normalization))
    mean, variance, _ = norm.get_weights()
    np.testing.assert_allclose(mean, IMAGENET_MEAN_RGB, rtol=1e-6)
    np.testing.assert_allclose(variance, np.square(IMAGENET_STD_RGB), rtol=1e-6)


def test_freeze_base_trains_only_the_head():
    keras.utils.clear_session()
    model = build("vggface_vgg16", 7, {"size": SMALL}, freeze_base=True)
    trainable = {v.path.split("/")[0] for v in model.trainable_weights}
    assert trainable == {"head_dense", "predictions"}

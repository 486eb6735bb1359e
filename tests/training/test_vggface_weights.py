"""keras-vggface weight files load into our VGG16 / ResNet-50 by (mapped) layer name.

The files are written here with h5py in the layout Keras 2's `model.save_weights` gives them
(root attribute 'layer_names'; per layer an attribute 'weight_names' and datasets
'<layer>/<weight name>', "/" and all), from known random arrays.
"""
import h5py
import numpy as np
import pytest

keras = pytest.importorskip("keras")

from training.vggface import (keras_layer_name, load_vggface_weights,  # noqa: E402
                              vggface2_resnet50, vggface_layer_name, vggface_vgg16)

SMALL = 32


def write_keras2_weights(path, layer_weights, root="/"):
    """layer_weights: [(layer name, {weight name: array})] in file order; {} for a weightless layer."""
    with h5py.File(path, "w") as f:
        group = f.require_group(root)
        group.attrs["layer_names"] = np.array([n.encode("utf8") for n, _ in layer_weights])
        group.attrs["backend"] = b"tensorflow"
        group.attrs["keras_version"] = b"2.2.4"
        for name, weights in layer_weights:
            g = group.require_group(name)  # "conv1/7x7_s2/bn" nests inside "conv1/7x7_s2"
            g.attrs["weight_names"] = np.array([w.encode("utf8") for w in weights], dtype="S")
            for wname, array in weights.items():
                g.create_dataset(wname, data=array)


def base_file_layers(model, rng, stop_at="head_pool"):
    """keras-vggface-named random weights for every weighted layer of `model` before its head."""
    out = []
    for layer in model.layers:
        if layer.name == stop_at:
            break
        if not layer.weights:
            continue
        name = vggface_layer_name(layer.name)
        weights = {}
        for v in layer.weights:
            array = rng.standard_normal(tuple(v.shape), dtype=np.float32)
            if v.name == "moving_variance":
                array = np.abs(array) + 0.5
            weights[f"{name}/{v.name}:0"] = array
        out.append((name, weights))
    return out


def assert_loaded(model, file_layers):
    for name, weights in file_layers:
        layer = model.get_layer(keras_layer_name(name))
        got = layer.get_weights()
        assert len(got) == len(weights), name
        for actual, expected in zip(got, weights.values()):
            np.testing.assert_array_equal(actual, expected, err_msg=name)


@pytest.fixture(scope="module")
def vgg():
    return vggface_vgg16((SMALL, SMALL, 3), 7)


@pytest.fixture(scope="module")
def resnet():
    return vggface2_resnet50((SMALL, SMALL, 3), 8)


def test_name_mapping_round_trips():
    for name in ("conv1/7x7_s2", "conv1/7x7_s2/bn", "conv2_1_1x1_reduce/bn", "conv5_3", "pool5"):
        assert "/" not in keras_layer_name(name)
        assert vggface_layer_name(keras_layer_name(name)) == name


def test_vgg16_has_the_keras_vggface_layers(vgg):
    names = [l.name for l in vgg.layers]
    expected = ["conv1_1", "conv1_2", "pool1", "conv2_1", "conv2_2", "pool2",
                "conv3_1", "conv3_2", "conv3_3", "pool3", "conv4_1", "conv4_2", "conv4_3", "pool4",
                "conv5_1", "conv5_2", "conv5_3", "pool5"]
    assert [n for n in names if n.startswith(("conv", "pool"))] == expected
    base = sum(int(np.prod(w.shape)) for l in vgg.layers if l.name.startswith("conv") for w in l.weights)
    assert base == 14_714_688  # the published VGG16 conv base


def test_resnet50_has_the_keras_vggface_layers(resnet):
    names = {vggface_layer_name(l.name) for l in resnet.layers}
    for name in ("conv1/7x7_s2", "conv1/7x7_s2/bn", "conv2_1_1x1_reduce", "conv2_1_1x1_reduce/bn",
                 "conv2_1_3x3", "conv2_1_3x3/bn", "conv2_1_1x1_increase", "conv2_1_1x1_proj/bn",
                 "conv3_4_1x1_increase", "conv4_6_3x3/bn", "conv5_1_1x1_proj", "conv5_3_1x1_increase/bn"):
        assert name in names
    convs = [l for l in resnet.layers if isinstance(l, keras.layers.Conv2D)]
    bns = [l for l in resnet.layers if isinstance(l, keras.layers.BatchNormalization)]
    assert len(convs) == len(bns) == 1 + 3 * (3 + 4 + 6 + 3) + 4
    assert not any(c.use_bias for c in convs)
    assert {b.name for b in bns} == {f"{c.name}__bn" for c in convs}
    projections = sorted(vggface_layer_name(c.name) for c in convs if c.name.endswith("proj"))
    assert projections == ["conv2_1_1x1_proj", "conv3_1_1x1_proj", "conv4_1_1x1_proj", "conv5_1_1x1_proj"]
    base = sum(int(np.prod(w.shape)) for l in convs + bns for w in l.weights)
    assert base == 23_561_152  # keras-vggface RESNET50(include_top=False)


@pytest.mark.parametrize("top", [False, True])
def test_vgg16_weights_round_trip(vgg, tmp_path, top):
    rng = np.random.default_rng(0)
    layers = [("input_1", {})] + base_file_layers(vgg, rng)
    if top:  # the include_top=True file adds the face-identity classifier (kept small here)
        layers += [("flatten", {}),
                   ("fc6", {"fc6/kernel:0": rng.standard_normal((512, 16), np.float32),
                            "fc6/bias:0": np.zeros(16, np.float32)}),
                   ("fc6/relu", {}),
                   ("fc7", {"fc7/kernel:0": rng.standard_normal((16, 16), np.float32),
                            "fc7/bias:0": np.zeros(16, np.float32)}),
                   ("fc8", {"fc8/kernel:0": rng.standard_normal((16, 2622), np.float32),
                            "fc8/bias:0": np.zeros(2622, np.float32)}),
                   ("fc8/softmax", {})]
    path = tmp_path / "rcmalli_vggface_tf_vgg16.h5"
    write_keras2_weights(path, layers)
    head_before = [w.copy() for w in vgg.get_layer("predictions").get_weights()]

    report = load_vggface_weights(vgg, path)

    assert_loaded(vgg, [l for l in layers if l[1] and not l[0].startswith("fc")])
    assert report.loaded == [f"conv{b}_{c}" for b, n in zip(range(1, 6), (2, 2, 3, 3, 3))
                             for c in range(1, n + 1)]
    if top:
        assert sorted(report.skipped) == ["fc6", "fc7", "fc8"]
        assert all(why.startswith("classifier") for why in report.skipped.values())
    else:
        assert report.skipped == {}
    assert report.missing == ["head_dense", "predictions"]
    for before, after in zip(head_before, vgg.get_layer("predictions").get_weights()):
        np.testing.assert_array_equal(before, after)


def test_resnet50_weights_round_trip_with_slash_names(resnet, tmp_path):
    model = resnet
    rng = np.random.default_rng(1)
    base = base_file_layers(model, rng)
    assert base[0][0] == "conv1/7x7_s2" and base[1][0] == "conv1/7x7_s2/bn"
    assert list(base[1][1]) == [f"conv1/7x7_s2/bn/{w}:0"
                                for w in ("gamma", "beta", "moving_mean", "moving_variance")]
    layers = ([("input_1", {})] + base[:2] + [("activation_1", {}), ("max_pooling2d_1", {})] + base[2:]
              + [("avg_pool", {}), ("flatten_1", {}),
                 ("classifier", {"classifier/kernel:0": rng.standard_normal((2048, 8), np.float32),
                                 "classifier/bias:0": np.zeros(8, np.float32)})])
    path = tmp_path / "rcmalli_vggface_tf_resnet50.h5"
    write_keras2_weights(path, layers)
    with h5py.File(path, "r") as f:  # the real layout: the weight sits at '<layer>/<weight name>'
        assert "conv1/7x7_s2/bn/conv1/7x7_s2/bn/gamma:0" in f

    report = load_vggface_weights(model, path)

    assert_loaded(model, base)
    assert report.loaded == [name for name, _ in base]
    assert report.skipped == {"classifier": "classifier/top layer"}
    assert report.missing == ["predictions"]


def test_builder_loads_a_weight_file(vgg, tmp_path, capsys):
    layers = base_file_layers(vgg, np.random.default_rng(2))[:2]
    path = tmp_path / "partial.h5"
    write_keras2_weights(path, layers, root="model_weights")  # a whole-model (model.save) file
    model = vggface_vgg16((SMALL, SMALL, 1), 7, weights=path)
    assert_loaded(model, layers)
    assert "loaded 2 layers" in capsys.readouterr().out


def test_shape_mismatch_is_skipped_or_raises(vgg, tmp_path):
    bad = [("conv1_1", {"conv1_1/kernel:0": np.zeros((3, 3, 1, 64), np.float32),
                        "conv1_1/bias:0": np.zeros(64, np.float32)})]
    path = tmp_path / "bad.h5"
    write_keras2_weights(path, bad)
    report = load_vggface_weights(vgg, path)
    assert report.loaded == [] and "shape mismatch" in report.skipped["conv1_1"]
    with pytest.raises(ValueError, match="conv1_1.*shape mismatch"):
        load_vggface_weights(vgg, path, skip_mismatch=False)


def test_malformed_files_give_a_clear_error(vgg, tmp_path):
    text = tmp_path / "weights.h5"
    text.write_text("not a weight file")
    with pytest.raises(ValueError, match=r"weights\.h5 is not an HDF5 file"):
        load_vggface_weights(vgg, text)

    keras3 = tmp_path / "keras3.weights.h5"  # an HDF5 file, but Keras 3's layout
    vgg.save_weights(keras3)
    with pytest.raises(ValueError, match=r"keras3\.weights\.h5 is not a keras-vggface"):
        load_vggface_weights(vgg, keras3)

    with pytest.raises(FileNotFoundError, match="missing.h5"):
        load_vggface_weights(vgg, tmp_path / "missing.h5")

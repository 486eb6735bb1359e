"""VGGFace networks (keras-vggface's VGG16 and VGGFace2 ResNet-50) with our classifier head.

The bases reproduce rcmalli/keras-vggface layer for layer, with the same layer names, so its
published weight files load by name (`load_vggface_weights`). Those weights are face-recognition
features, a strong start for expression recognition.

Input. Our faces come in scaled to [0, 1] (input spec scale "unit"), grey (1 channel) or
grey-as-RGB (3 channels). The published weights were trained on Caffe-style input: 0-255 pixels in
BGR order minus the mean face colour of the training set (keras_vggface.utils.preprocess_input,
version 1 for VGG16, version 2 for ResNet-50). The first layer of every model here ("vggface_input")
does that mapping (x 255, RGB -> BGR, minus the mean), so feed the model what
model_core/preprocess.py produces for {"scale": "unit"} and never call keras-vggface's
preprocess_input yourself. A user with 0-255 RGB images divides them by 255 first.

Layer names. Keras 3 forbids "/" in layer names, which the ResNet-50 uses ("conv1/7x7_s2/bn"); ours
spell it "__" ("conv1__7x7_s2__bn"). No original name contains "__", so `keras_layer_name` and
`vggface_layer_name` are exact inverses.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

import keras
import numpy as np
from keras import layers

from .keras_apps import caffe_input, classification_head

# Mean BGR face colour of the training sets (keras_vggface.utils.preprocess_input).
VGGFACE1_MEAN_BGR = (93.5940, 104.7624, 129.1863)   # VGGFace, for VGG16
VGGFACE2_MEAN_BGR = (91.4953, 103.8827, 131.0912)   # VGGFace2, for ResNet-50

NAME_SEP = "__"  # stands for keras-vggface's "/" in our layer names
# Layers of the face-identity classifiers in keras-vggface's include_top=True files: never loaded.
TOP_LAYERS = frozenset({"fc6", "fc7", "fc8", "classifier"})

VGG16_BLOCKS = ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3))  # (filters, convs) per block
RESNET50_STAGES = ((64, 3), (128, 4), (256, 6), (512, 3))  # (bottleneck width, blocks), stages 2-5


def keras_layer_name(vggface_name: str) -> str:
    """keras-vggface layer name -> ours: 'conv1/7x7_s2/bn' -> 'conv1__7x7_s2__bn'."""
    return vggface_name.replace("/", NAME_SEP)


def vggface_layer_name(keras_name: str) -> str:
    """Our layer name -> keras-vggface's: 'conv1__7x7_s2__bn' -> 'conv1/7x7_s2/bn'."""
    return keras_name.replace(NAME_SEP, "/")


def _conv_bn(x, filters, kernel, name, strides=1, padding="valid"):
    """keras-vggface's conv (no bias) + BatchNorm named '<name>/bn', in our spelling."""
    x = layers.Conv2D(filters, kernel, strides=strides, padding=padding, use_bias=False,
                      name=keras_layer_name(name))(x)
    return layers.BatchNormalization(name=keras_layer_name(f"{name}/bn"))(x)


def _relu(x, name):
    return layers.Activation("relu", name=keras_layer_name(f"{name}/relu"))(x)


def _bottleneck(x, width, stage, block, strides=1):
    """ResNet-50 bottleneck: 1x1 reduce (carries the stride, Caffe style), 3x3, 1x1 increase (4x width).

    The first block of a stage projects the shortcut with a strided 1x1 conv ('..._1x1_proj'); the
    others add their input unchanged.
    """
    prefix = f"conv{stage}_{block}"
    shortcut = x
    y = _relu(_conv_bn(x, width, 1, f"{prefix}_1x1_reduce", strides=strides), f"{prefix}_1x1_reduce")
    y = _relu(_conv_bn(y, width, 3, f"{prefix}_3x3", padding="same"), f"{prefix}_3x3")
    y = _conv_bn(y, 4 * width, 1, f"{prefix}_1x1_increase")
    if block == 1:
        shortcut = _conv_bn(x, 4 * width, 1, f"{prefix}_1x1_proj", strides=strides)
    y = layers.Add(name=f"{prefix}_add")([y, shortcut])
    return _relu(y, prefix)


def _freeze(model, head_start):
    """Freeze every layer before the head (VGG has no BatchNorm; ResNet's then runs in inference mode)."""
    for layer in model.layers:
        if layer.name == head_start:
            break
        if isinstance(layer, layers.Layer):  # keras.ops nodes (the RGB->BGR flip) have no weights
            layer.trainable = False


def _maybe_load(model, weights):
    if weights is not None:
        report = load_vggface_weights(model, weights)
        print(f"{model.name}: {report.summary()}")


def vggface_vgg16(input_shape=(224, 224, 3), num_classes=7, weights=None, freeze_base=False,
                  dropout=0.5, head_units=512, pooling="avg", name="vggface_vgg16"):
    """VGG16 of keras-vggface (VGGFace, 2622 identities) without its fc6-fc8 top, plus our head.

    Base: five blocks of 3x3 ReLU convs (conv1_1 .. conv5_3) each ending in a 2x2 max-pool
    (pool1 .. pool5), ~14.7M weights; needs input side >= 32. Head: global average pooling
    (`pooling="flatten"` for the original flatten), a ReLU dense layer of `head_units`, dropout and
    the softmax 'predictions'. `weights`: `None` or the path of a keras-vggface VGG16 weight file
    (notop or full). `freeze_base` trains only the head.
    """
    inputs = keras.Input(input_shape, name="face")
    x = caffe_input(inputs, VGGFACE1_MEAN_BGR, name="vggface_input")
    for b, (filters, convs) in enumerate(VGG16_BLOCKS, start=1):
        for c in range(1, convs + 1):
            x = layers.Conv2D(filters, 3, padding="same", activation="relu", name=f"conv{b}_{c}")(x)
        x = layers.MaxPooling2D(2, strides=2, name=f"pool{b}")(x)
    outputs = classification_head(x, num_classes, head_units, dropout, pooling)
    model = keras.Model(inputs, outputs, name=name)
    _maybe_load(model, weights)
    if freeze_base:
        _freeze(model, "head_pool" if pooling == "avg" else "head_flatten")
    return model


def vggface2_resnet50(input_shape=(224, 224, 3), num_classes=7, weights=None, freeze_base=False,
                      dropout=0.5, head_units=0, name="vggface2_resnet50"):
    """ResNet-50 of keras-vggface trained on VGGFace2 (8631 identities), without its classifier.

    Base: 7x7/2 conv + BN ('conv1/7x7_s2'), 3x3/2 max-pool, then bottleneck stages 2-5 with
    3, 4, 6, 3 blocks (conv layers without bias, a BatchNorm after each), ~23.6M weights; needs input
    side >= 32. keras-vggface's 7x7 'avg_pool' becomes a global average pool so any input size works
    (identical at 224). Head: dropout and the softmax 'predictions' (plus a ReLU dense layer if
    `head_units`). `weights`: `None` or the path of a keras-vggface ResNet-50 weight file.
    """
    inputs = keras.Input(input_shape, name="face")
    x = caffe_input(inputs, VGGFACE2_MEAN_BGR, name="vggface_input")
    x = _relu(_conv_bn(x, 64, 7, "conv1/7x7_s2", strides=2, padding="same"), "conv1/7x7_s2")
    x = layers.MaxPooling2D(3, strides=2, name="pool1__3x3_s2")(x)
    for stage, (width, blocks) in enumerate(RESNET50_STAGES, start=2):
        for block in range(1, blocks + 1):
            strides = 2 if block == 1 and stage > 2 else 1
            x = _bottleneck(x, width, stage, block, strides)
    outputs = classification_head(x, num_classes, head_units, dropout, pooling="avg")
    model = keras.Model(inputs, outputs, name=name)
    _maybe_load(model, weights)
    if freeze_base:
        _freeze(model, "head_pool")
    return model


@dataclass
class WeightReport:
    """What `load_vggface_weights` did, by keras-vggface layer name."""
    path: str
    loaded: list = field(default_factory=list)
    skipped: dict = field(default_factory=dict)   # file layer -> why it was not loaded
    missing: list = field(default_factory=list)   # model layers with weights the file did not set

    def summary(self) -> str:
        top = sorted(n for n, why in self.skipped.items() if why.startswith("classifier"))
        return (f"loaded {len(self.loaded)} layers from {self.path}; skipped {len(self.skipped)} "
                f"(top: {top}); left as initialised: {self.missing}")


def _read_names(group, key):
    """A string-list attribute of a Keras 2 HDF5 group (Keras 2 splits long ones into key0, key1, ...)."""
    if key in group.attrs:
        values = list(group.attrs[key])
    else:
        values, i = [], 0
        while f"{key}{i}" in group.attrs:
            values.extend(group.attrs[f"{key}{i}"])
            i += 1
    return [v.decode("utf8") if isinstance(v, bytes) else str(v) for v in values]


def load_vggface_weights(model, path, skip_mismatch=True) -> WeightReport:
    """Load a keras-vggface weight file (Keras 2 HDF5, `model.save_weights` layout) into `model` by name.

    The file's root attribute 'layer_names' lists its layers; each layer's group has an attribute
    'weight_names', and weight i is the dataset '<layer>/<weight name>', in the order Keras creates
    the layer's weights (kernel, bias; gamma, beta, moving mean, moving variance). A whole-model file
    (weights under 'model_weights') works too. Layers are matched by name through
    `keras_layer_name`; the identity classifiers (fc6, fc7, fc8, classifier) are never loaded, so
    notop and full files both work. A layer whose weight shapes differ from the model's is skipped
    and reported (`skip_mismatch=True`) or raises ValueError.
    """
    import h5py

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"VGGFace weight file not found: {path}")
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise ValueError(f"{path} is not an HDF5 file, so not a keras-vggface weight file ({e})") from None
    with f:
        root = f["model_weights"] if "layer_names" not in f.attrs and "model_weights" in f else f
        file_layers = _read_names(root, "layer_names")
        if not file_layers:
            raise ValueError(f"{path} is not a keras-vggface (Keras 2 HDF5) weight file: "
                             "it has no 'layer_names' attribute listing its layers")
        by_name = {layer.name: layer for layer in model.layers}
        report = WeightReport(path)
        for name in file_layers:
            if name not in root:
                raise ValueError(f"{path} is not a valid Keras 2 weight file: layer {name!r} is listed "
                                 "in 'layer_names' but has no group")
            group = root[name]
            weight_names = _read_names(group, "weight_names")
            if not weight_names:
                continue  # input, activation, pooling, ... layers: nothing to load
            if name in TOP_LAYERS:
                report.skipped[name] = "classifier/top layer"
                continue
            layer = by_name.get(keras_layer_name(name))
            if layer is None:
                report.skipped[name] = "not in the model"
                continue
            try:
                arrays = [np.asarray(group[w]) for w in weight_names]
            except KeyError as e:
                raise ValueError(f"{path} is not a valid Keras 2 weight file: layer {name!r} lacks "
                                 f"a weight listed in its 'weight_names' ({e})") from None
            expected = [tuple(w.shape) for w in layer.weights]
            found = [a.shape for a in arrays]
            if found != expected:
                why = f"shape mismatch: file {found}, model {expected}"
                if not skip_mismatch:
                    raise ValueError(f"{path}: layer {name!r}: {why}")
                report.skipped[name] = why
                continue
            layer.set_weights(arrays)
            report.loaded.append(name)
    loaded = set(report.loaded)
    report.missing = [vggface_layer_name(l.name) for l in model.layers
                      if l.weights and vggface_layer_name(l.name) not in loaded]
    return report

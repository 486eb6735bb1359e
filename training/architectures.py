"""Network builders, one registry.

Every builder has the signature `build(input_shape, num_classes, **options) -> keras.Model` and
returns a model that ends in a softmax. `ARCHITECTURES` maps the CLI name to the builder and the
input spec (model_core/preprocess.py) the model expects; the spec goes into the model card so the
app feeds the model what it was trained on.
"""
from __future__ import annotations

import keras
from keras import layers


def _conv_bn_relu(x, filters, name, kernel=3):
    x = layers.Conv2D(filters, kernel, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = layers.BatchNormalization(name=f"{name}_bn")(x)
    return layers.Activation("relu", name=f"{name}_relu")(x)


def compact_cnn(input_shape=(48, 48, 1), num_classes=7, widths=(32, 64, 128, 256), dropout=0.25,
                head_units=256, name="compact_cnn"):
    """A VGG-like stack for 48x48 faces: per block two 3x3 conv-BN-ReLU, max-pool, dropout.

    With the default widths it has ~1.2M weights and costs ~0.12 GFLOP per face, small enough to
    train on a 2-core CPU and to run well under 10 ms per face.
    """
    inputs = keras.Input(input_shape, name="face")
    x = inputs
    for i, w in enumerate(widths, start=1):
        x = _conv_bn_relu(x, w, f"block{i}_a")
        x = _conv_bn_relu(x, w, f"block{i}_b")
        x = layers.MaxPooling2D(2, name=f"block{i}_pool")(x)
        x = layers.Dropout(dropout * min(1.0, i / 2), name=f"block{i}_drop")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    x = layers.Dense(head_units, use_bias=False, name="head_dense")(x)
    x = layers.BatchNormalization(name="head_bn")(x)
    x = layers.Activation("relu", name="head_relu")(x)
    x = layers.Dropout(0.5, name="head_drop")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name=name)


def tiny_cnn(input_shape=(48, 48, 1), num_classes=7, name="tiny_cnn"):
    """The same design at a quarter of the width (~80k weights): for tests and quick trials."""
    return compact_cnn(input_shape, num_classes, widths=(8, 16, 32, 64), head_units=64, name=name)


def wide_cnn(input_shape=(48, 48, 1), num_classes=7, name="wide_cnn"):
    """A VGG-style net in the spirit of the 73%-on-FER-2013 from-scratch work (~5M weights); GPU fare."""
    return compact_cnn(input_shape, num_classes, widths=(64, 128, 256, 512), head_units=512,
                       dropout=0.3, name=name)


GREY48 = {"size": 48, "channels": 1, "scale": "unit"}

# name -> (builder, input spec). Big ImageNet/VGGFace-style networks are added by vggface.py and
# keras_apps.py at import time below.
ARCHITECTURES = {
    "compact_cnn": (compact_cnn, GREY48),
    "tiny_cnn": (tiny_cnn, GREY48),
    "wide_cnn": (wide_cnn, GREY48),
}


def build(name: str, num_classes: int, input_spec: dict | None = None, **options) -> keras.Model:
    """Build a registered architecture for `num_classes` outputs and the given (or default) input."""
    if name not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {name!r}; choose from {sorted(ARCHITECTURES)}")
    builder, default_spec = ARCHITECTURES[name]
    spec = dict(default_spec, **(input_spec or {}))
    shape = (spec["size"], spec["size"], spec["channels"])
    return builder(input_shape=shape, num_classes=num_classes, **options)


def default_input(name: str) -> dict:
    return dict(ARCHITECTURES[name][1])



# The big pretrained-style networks live in their own modules; they never import this module, so
# importing them here, after ARCHITECTURES exists, cannot be circular.
from .keras_apps import (EFFICIENTNET_SIZES, efficientnet_b0, efficientnet_b1,  # noqa: E402
                         efficientnet_b2, efficientnet_b3, efficientnet_b4, resnet50)
from .keras_faceres import mobilenet_faceres  # noqa: E402
from .vggface import vggface2_resnet50, vggface_vgg16  # noqa: E402


def _rgb(size):
    """Grey-as-RGB faces at the network's native (paper) resolution, scaled to [0, 1]."""
    return {"size": size, "channels": 3, "scale": "unit"}


ARCHITECTURES.update({
    "vggface_vgg16": (vggface_vgg16, _rgb(224)),
    "vggface2_resnet50": (vggface2_resnet50, _rgb(224)),
    "resnet50": (resnet50, _rgb(224)),
    "efficientnet_b0": (efficientnet_b0, _rgb(EFFICIENTNET_SIZES["b0"])),
    "efficientnet_b1": (efficientnet_b1, _rgb(EFFICIENTNET_SIZES["b1"])),
    "efficientnet_b2": (efficientnet_b2, _rgb(EFFICIENTNET_SIZES["b2"])),
    "efficientnet_b3": (efficientnet_b3, _rgb(EFFICIENTNET_SIZES["b3"])),
    "efficientnet_b4": (efficientnet_b4, _rgb(EFFICIENTNET_SIZES["b4"])),
    # FaceRes (VGGFace2-trained MobileNet-v1, `python -m training faceres`): the FER face at 48 px,
    # upscaled, 0-255 minus the caffe BGR means, as the shipped PyTorch-trained models take it
    "mobilenet_faceres": (mobilenet_faceres, {"size": 160, "channels": 3, "scale": "caffe_bgr", "source_size": 48}),
})

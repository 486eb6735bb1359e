"""ImageNet backbones from keras.applications (ResNet-50, EfficientNet-B0..B4) with our classifier head.

Every builder takes our standard input, a face scaled to [0, 1] (spec scale "unit"), grey (1 channel)
or grey-as-RGB (3 channels), and maps it inside the model to what the backbone's ImageNet weights
were trained on. So preprocessing stays defined once (model_core/preprocess.py) and a saved model needs
nothing but Keras to run: the input stems are built from stock layers and keras.ops only.

Weights are random by default. Pretrained ImageNet weights come only from a local file the user
passes (`weights="/path/to/resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"`); nothing here
downloads, so `weights="imagenet"` is refused.

The small helpers (`as_rgb`, `caffe_input`, `classification_head`) are shared with vggface.py.
"""
from __future__ import annotations

import os

import keras
import numpy as np
from keras import layers, ops

# Caffe-style ImageNet preprocessing (keras.applications.resnet.preprocess_input): 0-255 BGR minus mean.
IMAGENET_CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
# Torch/TF-style ImageNet statistics, on [0, 1] RGB, that EfficientNet's weights expect.
IMAGENET_MEAN_RGB = (0.485, 0.456, 0.406)
IMAGENET_STD_RGB = (0.229, 0.224, 0.225)

# Native (paper) resolution of each EfficientNet variant; the registry's default input size.
EFFICIENTNET_SIZES = {"b0": 224, "b1": 240, "b2": 260, "b3": 300, "b4": 380}
_EFFICIENTNETS = {
    "b0": keras.applications.EfficientNetB0,
    "b1": keras.applications.EfficientNetB1,
    "b2": keras.applications.EfficientNetB2,
    "b3": keras.applications.EfficientNetB3,
    "b4": keras.applications.EfficientNetB4,
}


def as_rgb(x):
    """Grey (1 channel) -> grey-as-RGB (3 equal channels); 3-channel input passes through."""
    if x.shape[-1] == 1:
        return layers.Concatenate(name="grey_to_rgb")([x, x, x])
    if x.shape[-1] != 3:
        raise ValueError(f"input must have 1 or 3 channels, got shape {tuple(x.shape)}")
    return x


def caffe_input(x, mean_bgr, name):
    """[0, 1] RGB/grey -> 0-255 BGR minus a per-channel mean, the input of Caffe-trained weights."""
    x = as_rgb(x)
    x = ops.flip(x, axis=-1)  # RGB -> BGR: the first conv's kernels were learned on BGR images
    return layers.Rescaling(255.0, offset=[-float(m) for m in mean_bgr], name=name)(x)


def classification_head(x, num_classes, head_units=512, dropout=0.5, pooling="avg"):
    """Pool the feature map, one hidden ReLU layer (skipped if `head_units` is 0), dropout, softmax."""
    if pooling == "avg":
        x = layers.GlobalAveragePooling2D(name="head_pool")(x)
    elif pooling == "flatten":
        x = layers.Flatten(name="head_flatten")(x)
    else:
        raise ValueError(f"pooling must be 'avg' or 'flatten', got {pooling!r}")
    if head_units:
        x = layers.Dense(head_units, activation="relu", name="head_dense")(x)
    if dropout:
        x = layers.Dropout(dropout, name="head_drop")(x)
    return layers.Dense(num_classes, activation="softmax", name="predictions")(x)


def local_weights(weights):
    """`None` or the path of an existing local weight file; anything that would download is refused."""
    if weights is None:
        return None
    if weights == "imagenet":
        raise ValueError("weights='imagenet' would download the file; download it yourself and pass "
                         "its local path (the include_top=False '..._notop.h5' file)")
    path = os.fspath(weights)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"weight file not found: {path}")
    return path


def _attach_base(x, base, freeze_base):
    # A frozen base also runs its BatchNorm in inference mode, as in the keras.io fine-tuning guide.
    base.trainable = not freeze_base
    return base(x, training=False) if freeze_base else base(x)


def resnet50(input_shape=(224, 224, 3), num_classes=7, weights=None, freeze_base=False,
             head_units=0, dropout=0.5, pooling="avg", name="resnet50"):
    """keras.applications ResNet-50 (include_top=False, ~23.6M weights) + our head (pool, dropout,
    softmax, like `vggface2_resnet50`; `head_units` adds a hidden ReLU layer).

    `weights`: `None` or the local path of Keras' ImageNet notop file. The stem turns our [0, 1]
    input into the Caffe-style input those weights expect (0-255 BGR minus the ImageNet mean).
    """
    inputs = keras.Input(input_shape, name="face")
    x = caffe_input(inputs, IMAGENET_CAFFE_MEAN_BGR, name="imagenet_caffe_input")
    base = keras.applications.ResNet50(include_top=False, weights=local_weights(weights),
                                       input_shape=(*input_shape[:2], 3), name="resnet50_base")
    x = _attach_base(x, base, freeze_base)
    outputs = classification_head(x, num_classes, head_units, dropout, pooling)
    return keras.Model(inputs, outputs, name=name)


def _use_imagenet_statistics(base):
    """Give EfficientNet's built-in Normalization the true ImageNet mean and variance.

    Keras' ImageNet files store the standard deviation where the variance belongs
    (tensorflow/tensorflow#49930). With weights="imagenet" Keras patches this with an extra Rescaling
    layer, but not when the weights come from a file path, so the stem would see (x - mean) / sqrt(std).
    Setting variance = std**2 gives the (x - mean) / std the weights were trained with.
    """
    norm = next(l for l in base.layers if isinstance(l, layers.Normalization))
    _, _, count = norm.get_weights()
    norm.set_weights([np.asarray(IMAGENET_MEAN_RGB, np.float32),
                      np.square(np.asarray(IMAGENET_STD_RGB, np.float32)), count])


def efficientnet(variant="b0", input_shape=None, num_classes=7, weights=None, freeze_base=False,
                 head_units=0, dropout=0.3, pooling="avg", name=None):
    """keras.applications EfficientNet-B0..B4 (include_top=False) + our head.

    EfficientNet normalises its input itself (Rescaling 1/255 + Normalization inside the network),
    so our stem only brings [0, 1] back to 0-255. Input side >= 32. The head follows the paper's:
    pooling, dropout, softmax (`head_units=0`), with B0's dropout rate.
    """
    variant = variant.lower()
    if variant not in _EFFICIENTNETS:
        raise ValueError(f"unknown EfficientNet variant {variant!r}; choose from {sorted(_EFFICIENTNETS)}")
    if input_shape is None:
        size = EFFICIENTNET_SIZES[variant]
        input_shape = (size, size, 3)
    weights = local_weights(weights)
    inputs = keras.Input(input_shape, name="face")
    x = layers.Rescaling(255.0, name="to_0_255")(as_rgb(inputs))
    base = _EFFICIENTNETS[variant](include_top=False, weights=weights,
                                   input_shape=(*input_shape[:2], 3), name=f"efficientnet{variant}_base")
    if weights is not None:
        _use_imagenet_statistics(base)
    x = _attach_base(x, base, freeze_base)
    outputs = classification_head(x, num_classes, head_units, dropout, pooling)
    return keras.Model(inputs, outputs, name=name or f"efficientnet_{variant}")


def _efficientnet_builder(variant):
    size = EFFICIENTNET_SIZES[variant]

    def build(input_shape=(size, size, 3), num_classes=7, **options):
        return efficientnet(variant, input_shape, num_classes, **options)

    build.__name__ = f"efficientnet_{variant}"
    build.__doc__ = f"EfficientNet-{variant.upper()} (native input {size}x{size}) + our head; see `efficientnet`."
    return build


efficientnet_b0 = _efficientnet_builder("b0")
efficientnet_b1 = _efficientnet_builder("b1")
efficientnet_b2 = _efficientnet_builder("b2")
efficientnet_b3 = _efficientnet_builder("b3")
efficientnet_b4 = _efficientnet_builder("b4")

"""The FaceRes backbone in Keras: `keras.applications.MobileNet` with the converted FaceRes weights.

The shipped models are trained by `training/finetune.py` (PyTorch: 2-4x faster on this CPU, and what
the lent GPUs have). This is the same backbone for the Keras path (`python -m training train --arch
mobilenet_faceres`), and the Keras weights file `python -m training faceres` writes.

Keras' MobileNet pads stride-2 convolutions with ZeroPadding2D((0, 1), (0, 1)), which equals TF 'SAME'
(what FaceRes was trained with) only where the feature map is even: input sizes divisible by 32
(96, 160, 224). Batch norms hold the folded FaceRes statistics (mean 0, variance 1 - epsilon) and are
frozen, so they run in inference mode while the rest fine-tunes.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .faceres import CACHE, META, FaceResError, check_against_torch, default_npz
from .mobilenet import BLOCKS


def load_into(backbone, arrays: dict) -> int:
    """Copy FaceRes arrays (`faceres.backbone_arrays` layout) into a Keras MobileNet; returns the number
    of layers set. BN: gamma = scale, beta = bias, moving mean 0, moving variance 1 - epsilon."""
    set_ = 0

    def bn(name, unit):
        layer = backbone.get_layer(name)
        scale = np.asarray(arrays[f"{unit}.scale"], np.float32)
        bias = np.asarray(arrays[f"{unit}.bias"], np.float32)
        layer.set_weights([scale, bias, np.zeros_like(scale), np.full_like(scale, 1.0 - layer.epsilon)])

    backbone.get_layer("conv1").set_weights([np.asarray(arrays["conv1.kernel"], np.float32)])
    bn("conv1_bn", "conv1")
    set_ += 2
    for i in range(1, len(BLOCKS) + 1):
        backbone.get_layer(f"conv_dw_{i}").set_weights([np.asarray(arrays[f"dw{i}.kernel"], np.float32)])
        bn(f"conv_dw_{i}_bn", f"dw{i}")
        backbone.get_layer(f"conv_pw_{i}").set_weights([np.asarray(arrays[f"pw{i}.kernel"], np.float32)])
        bn(f"conv_pw_{i}_bn", f"pw{i}")
        set_ += 4
    return set_


def mobilenet_faceres(input_shape=(160, 160, 3), num_classes=7, weights: str | Path | None = "faceres",
                      dropout=0.3, name="mobilenet_faceres"):
    """FaceRes MobileNet-v1 + global pooling, dropout and a softmax head. `weights`: "faceres" (the
    converted npz, `python -m training faceres`), a path to such an npz, or None (random)."""
    import keras
    from keras import layers

    if input_shape[0] % 32 or input_shape[1] % 32:
        raise ValueError(f"mobilenet_faceres needs input sizes divisible by 32 (96, 160, 224), got {input_shape[:2]}")
    backbone = keras.applications.MobileNet(input_shape=input_shape, include_top=False, weights=None)
    if weights is not None:
        path = default_npz() if weights == "faceres" else Path(weights)
        if not path.exists():
            raise FaceResError(f"{path}: FaceRes weights not found; run `python -m training faceres` first")
        load_into(backbone, dict(np.load(path)))
        for layer in backbone.layers:  # (random weights: ordinary batch norm, trained from batches)
            if isinstance(layer, layers.BatchNormalization):
                layer.trainable = False  # inference mode: the folded statistics stay as trained
    inputs = keras.Input(input_shape, name="face")
    x = backbone(inputs)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    x = layers.Dropout(dropout, name="head_drop")(x)
    outputs = layers.Dense(num_classes, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name=name)


def write_weights(cache: Path, size: int = 224) -> tuple[Path, float]:
    """The Keras weights file of the backbone (`faceres_mobilenet.weights.h5`) and its check: the Keras
    backbone's pooled features against the PyTorch one's (both from the npz)."""
    import keras

    arrays = dict(np.load(cache / "faceres_mobilenet.npz"))
    backbone = keras.applications.MobileNet(input_shape=(size, size, 3), include_top=False, weights=None)
    load_into(backbone, arrays)
    out = cache / "faceres_mobilenet.weights.h5"
    backbone.save_weights(out)
    rel = check_against_torch(lambda x: keras.ops.convert_to_numpy(backbone(x, training=False)).mean(axis=(1, 2)),
                              arrays, "Keras conversion", size)
    return out, rel


def prepare(cache: Path = CACHE, log=print) -> Path:
    """After `faceres.prepare`: the Keras weights file, checked, and recorded in the cache's META."""
    import json

    h5, rel = write_weights(cache)
    meta_path = cache / META
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    meta.update(keras_weights=h5.name, keras_verified_max_rel_diff=rel)
    meta_path.write_text(json.dumps(meta, indent=2) + "\n")
    log(f"Keras weights: {h5} (matches the PyTorch backbone to {rel:.1e})")
    return h5

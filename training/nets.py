"""The network registry of the one PyTorch pipeline: name -> builder, input spec, ONNX writer.

Adding a network is one module with its PyTorch builder and ONNX writer (as `compact.py`, `mobilenet.py`)
and one entry in `NETS`; `finetune.build_model`, the trainer's input scaling and `finetune.ship` read
everything else from here. The input spec is the card's `input` (model_core/preprocess.py), so the
served model gets the faces it was trained on.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Net:
    name: str
    title: str
    build: Callable  # (num_classes, norm, dropout) -> torch nn.Module with groups() and folded_arrays()
    input_spec: Callable  # (input_size) -> the card's input spec
    write_onnx: Callable  # (folded arrays, input_size, path) -> onnx model
    weights_dtype: str  # how folded weights are stored in a run's weights.npz and the ONNX file
    pretrained: bool  # takes `--init faceres|faceres-deep` (else `--init scratch` only)
    default_size: int


def _mobilenet(num_classes, norm, dropout):
    from .mobilenet import MobileNetV1

    return MobileNetV1(num_classes, norm=norm, dropout=dropout)


def _mobilenet_onnx(arrays, size, path):
    from .mobilenet import build_onnx

    return build_onnx(arrays, size, path, storage="float16")


def _compact(num_classes, norm, dropout):
    from .compact import CompactCNN

    return CompactCNN(num_classes, dropout=dropout)


def _compact_onnx(arrays, size, path):
    from .compact import build_onnx

    return build_onnx(arrays, size, path, storage="float32")


NETS: dict[str, Net] = {
    "mobilenet_v1": Net(
        "mobilenet_v1",
        "MobileNet-v1",
        _mobilenet,
        # the FER face at 48 px, upsampled, 0-255 minus the caffe BGR means (FaceRes' scaling)
        lambda size: {"size": size, "channels": 3, "scale": "caffe_bgr", "source_size": 48},
        _mobilenet_onnx,
        "float16",
        True,
        160,
    ),
    "compact_cnn": Net(
        "compact_cnn",
        "Compact CNN",
        _compact,
        lambda size: {"size": size, "channels": 1, "scale": "unit"},
        _compact_onnx,
        "float32",
        False,
        48,
    ),
}


def get(name: str) -> Net:
    if name not in NETS:
        raise ValueError(f"unknown network {name!r}; choose from {sorted(NETS)}")
    return NETS[name]


def to_input(x01, spec: dict):
    """The trainer's side of `model_core.preprocess.preprocess_faces` for a batch already at the
    spec's size: (B, 1, H, W) grey in [0, 1] on the device -> the network's input tensor (NCHW)."""
    scale = spec["scale"]
    if scale == "caffe_bgr":
        from .mobilenet import caffe_input

        return caffe_input(x01)
    if spec["channels"] == 3:
        x01 = x01.expand(-1, 3, -1, -1)
    if scale == "unit":
        return x01
    if scale == "centered":
        return x01 * 2.0 - 1.0
    raise ValueError(f"no trainer scaling for {scale!r}")


def transfer_state(model, state: dict) -> int:
    """Copy every tensor of `state` whose name and shape match into `model` (a new head for another
    label scheme stays as initialised); returns how many layers (modules with weights) were copied."""
    import torch

    own = model.state_dict()
    copied = set()
    with torch.no_grad():
        for k, v in state.items():
            v = torch.as_tensor(np.asarray(v)) if not isinstance(v, torch.Tensor) else v
            if k in own and own[k].shape == v.shape:
                own[k].copy_(v)
                copied.add(k.rsplit(".", 1)[0])
    trainable = {n.rsplit(".", 1)[0] for n, _ in model.named_parameters()}
    return len(copied & trainable)


def load_state(path: str | Path) -> dict:
    """A run's `model.pt` (the selected epoch's state dict)."""
    import torch

    return torch.load(Path(path), map_location="cpu", weights_only=True)

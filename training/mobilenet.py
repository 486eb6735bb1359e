"""MobileNet-v1 (alpha 1.0) for emotion, in PyTorch, and its ONNX export for serving.

The layout is Keras' `MobileNet` (TF 'SAME' padding, ReLU6, blocks of depthwise 3x3 + pointwise 1x1),
so the FaceRes weights (`training.faceres`) load as they are. Two normalisation modes:

- `norm="affine"` (fine-tuning FaceRes): the pretrained batch norms are folded, so each conv is
  followed by a per-channel scale and shift that train like BN's gamma/beta, with no batch
  statistics. Training BN from batch statistics wrecked the features in a Keras trial (18% after an
  epoch), so there are none to wreck.
- `norm="batch"` (training from scratch): ordinary BatchNorm.

`folded_arrays()` folds either into conv kernels + biases, and `build_onnx()` writes those as a plain
ONNX graph (NHWC float input as `model_core.preprocess` makes it, softmax output) with the `onnx`
helper: no exporter, no TensorFlow, the same graph for every training engine.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from model_core.preprocess import CAFFE_BGR_MEANS  # the input scaling serving applies (`caffe_bgr`)

# MobileNet-v1 (alpha 1.0): (pointwise filters, depthwise stride) of blocks 1..13. This module is the
# architecture's home: `faceres` (the pretrained weights) and `nets` (the registry) import it, never the reverse.
BLOCKS = [
    (64, 1),
    (128, 2),
    (128, 1),
    (256, 2),
    (256, 1),
    (512, 2),
    (512, 1),
    (512, 1),
    (512, 1),
    (512, 1),
    (512, 1),
    (1024, 2),
    (1024, 1),
]


def _same_pads(size: int, stride: int, k: int = 3) -> tuple[int, int]:
    """TF 'SAME' padding (before, after) for one spatial axis."""
    out = -(-size // stride)
    total = max((out - 1) * stride + k - size, 0)
    return total // 2, total - total // 2


def feature_sizes(size: int) -> list[int]:
    """Spatial size after conv1 and after each block, for an input of `size`."""
    sizes, s = [], -(-size // 2)
    sizes.append(s)
    for _, stride in BLOCKS:
        s = -(-s // stride)
        sizes.append(s)
    return sizes


def _torch():
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    return torch, nn, F


def caffe_input(x01):
    """(B, 1, H, W) grey in [0, 1] -> (B, 3, H, W): 0-255 replicated, minus the BGR caffe means."""
    torch, _, _ = _torch()
    means = torch.tensor(CAFFE_BGR_MEANS, dtype=x01.dtype, device=x01.device).view(1, 3, 1, 1)
    return x01 * 255.0 - means


def MobileNetV1(num_classes: int, norm: str = "affine", dropout: float = 0.0):  # noqa: N802 (a class factory)
    torch, nn, F = _torch()

    class Norm(nn.Module):
        def __init__(self, c):
            super().__init__()
            if norm == "batch":
                self.bn = nn.BatchNorm2d(c, eps=1e-3, momentum=0.01)
            else:
                self.bn = None
                self.scale = nn.Parameter(torch.ones(c))
                self.bias = nn.Parameter(torch.zeros(c))

        def forward(self, x):
            if self.bn is not None:
                return self.bn(x)
            return x * self.scale.view(1, -1, 1, 1).to(x.dtype) + self.bias.view(1, -1, 1, 1).to(x.dtype)

    class ConvUnit(nn.Module):
        def __init__(self, cin, cout, k, stride, groups=1):
            super().__init__()
            self.k, self.stride = k, stride
            self.conv = nn.Conv2d(cin, cout, k, stride, padding=0, groups=groups, bias=False)
            self.norm = Norm(cout)

        def forward(self, x):
            if self.k > 1:
                ph, pw = _same_pads(x.shape[2], self.stride), _same_pads(x.shape[3], self.stride)
                x = F.pad(x, (pw[0], pw[1], ph[0], ph[1]))
            return F.relu6(self.norm(self.conv(x)))

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.norm_mode = norm
            units = [("conv1", ConvUnit(3, 32, 3, 2))]
            cin = 32
            for i, (cout, stride) in enumerate(BLOCKS, 1):
                units.append((f"dw{i}", ConvUnit(cin, cin, 3, stride, groups=cin)))
                units.append((f"pw{i}", ConvUnit(cin, cout, 1, 1)))
                cin = cout
            self.units = nn.ModuleDict(units)
            self.drop = nn.Dropout(dropout)
            self.head = nn.Linear(1024, num_classes) if num_classes else None

        def features(self, x):
            for unit in self.units.values():
                x = unit(x)
            return x.float().mean(dim=(2, 3))

        def forward(self, x):
            return self.head(self.drop(self.features(x)))

        def groups(self):
            """Parameter groups from input to output: conv1, block 1, ..., block 13, head."""
            out = [list(self.units["conv1"].parameters())]
            for i in range(1, len(BLOCKS) + 1):
                out.append(list(self.units[f"dw{i}"].parameters()) + list(self.units[f"pw{i}"].parameters()))
            if self.head is not None:
                out.append(list(self.head.parameters()))
            return out

        def load_arrays(self, arrays: dict) -> None:
            """Load FaceRes-layout arrays (`training.faceres.backbone_arrays`) into an affine net,
            or a full `folded_arrays()` dict (with head) into either mode's conv kernels."""
            with torch.no_grad():
                for name, unit in self.units.items():
                    k = np.asarray(arrays[f"{name}.kernel"], np.float32)
                    if name.startswith("dw"):
                        k = k.transpose(2, 3, 0, 1)  # (3, 3, C, 1) -> (C, 1, 3, 3)
                    else:
                        k = k.transpose(3, 2, 0, 1)  # HWIO -> OIHW
                    unit.conv.weight.copy_(torch.from_numpy(np.ascontiguousarray(k)))
                    scale = arrays.get(f"{name}.scale")
                    bias = np.asarray(arrays[f"{name}.bias"], np.float32)
                    scale = np.ones_like(bias) if scale is None else np.asarray(scale, np.float32)
                    if unit.norm.bn is not None:
                        bn = unit.norm.bn
                        bn.weight.copy_(torch.from_numpy(scale))
                        bn.bias.copy_(torch.from_numpy(bias))
                        bn.running_mean.zero_()
                        bn.running_var.fill_(1.0 - bn.eps)
                    else:
                        unit.norm.scale.copy_(torch.from_numpy(scale))
                        unit.norm.bias.copy_(torch.from_numpy(bias))
                if self.head is not None and "head.kernel" in arrays:
                    self.head.weight.copy_(torch.from_numpy(np.asarray(arrays["head.kernel"], np.float32).T))
                    self.head.bias.copy_(torch.from_numpy(np.asarray(arrays["head.bias"], np.float32)))

        def folded_arrays(self) -> dict[str, np.ndarray]:
            """Kernels with the normalisation folded in (scale 1), plus the head; float32 numpy."""
            out = {}
            with torch.no_grad():
                for name, unit in self.units.items():
                    w = unit.conv.weight.detach().float().cpu().numpy()
                    if unit.norm.bn is not None:
                        bn = unit.norm.bn
                        inv = (bn.weight / torch.sqrt(bn.running_var + bn.eps)).float().cpu().numpy()
                        shift = (
                            (bn.bias - bn.running_mean * bn.weight / torch.sqrt(bn.running_var + bn.eps))
                            .float()
                            .cpu()
                            .numpy()
                        )
                    else:
                        inv = unit.norm.scale.detach().float().cpu().numpy()
                        shift = unit.norm.bias.detach().float().cpu().numpy()
                    w = w * inv.reshape(-1, 1, 1, 1)
                    if name.startswith("dw"):
                        out[f"{name}.kernel"] = w.transpose(2, 3, 0, 1)
                    else:
                        out[f"{name}.kernel"] = w.transpose(2, 3, 1, 0)
                    out[f"{name}.bias"] = shift
                if self.head is not None:
                    out["head.kernel"] = self.head.weight.detach().float().cpu().numpy().T
                    out["head.bias"] = self.head.bias.detach().float().cpu().numpy()
            return {k: np.ascontiguousarray(v, np.float32) for k, v in out.items()}

    return Net()


def build_onnx(arrays: dict[str, np.ndarray], size: int, path: str | Path | None = None, storage: str = "float32"):
    """A folded MobileNet (`folded_arrays()`) as an ONNX model: input `input` (N, size, size, 3) float32,
    already scaled as the card's input spec says; output `probs` (N, classes), softmax.

    `storage="float16"` keeps the weights as float16 in the file (half the size; the fine-tuned
    weights come back from training as float16 anyway) behind Cast nodes, which ONNX Runtime folds
    into float32 constants when it loads the model: the arithmetic stays float32."""
    from .onnx_graph import GraphBuilder

    g = GraphBuilder(storage)
    const = g.const
    g.node("Transpose", ["input"], ["x0"], perm=[0, 3, 1, 2])
    x, s = "x0", size
    units = [("conv1", 2)] + [
        (f"{kind}{i}", stride if kind == "dw" else 1)
        for i, (_, stride) in enumerate(BLOCKS, 1)
        for kind in ("dw", "pw")
    ]
    for name, stride in units:
        k = arrays[f"{name}.kernel"]
        if name.startswith("dw"):
            w, group = k.transpose(2, 3, 0, 1), k.shape[2]
        else:
            w, group = k.transpose(3, 2, 0, 1), 1
        kernel = w.shape[-1]
        pads = [0, 0, 0, 0]
        if kernel > 1:
            before, after = _same_pads(s, stride)
            pads = [before, before, after, after]
        g.node(
            "Conv",
            [x, const(f"{name}.w", w), const(f"{name}.b", arrays[f"{name}.bias"])],
            [f"{name}.c"],
            strides=[stride, stride],
            pads=pads,
            group=group,
            kernel_shape=[kernel, kernel],
        )
        g.node(
            "Clip", [f"{name}.c", const(f"{name}.lo", np.float32(0)), const(f"{name}.hi", np.float32(6))], [f"{name}.y"]
        )
        x = f"{name}.y"
        s = -(-s // stride)
    g.node("GlobalAveragePool", [x], ["pool"])
    g.node("Flatten", ["pool"], ["feat"], axis=1)
    g.node("Gemm", ["feat", const("head.w", arrays["head.kernel"]), const("head.b", arrays["head.bias"])], ["logits"])
    g.node("Softmax", ["logits"], ["probs"], axis=-1)
    return g.model(
        "mobilenet_v1_emotion", size, 3, int(arrays["head.bias"].shape[0]), "emotion-assistant training.mobilenet", path
    )


def arrays_from_onnx(path: str | Path) -> dict[str, np.ndarray]:
    """The folded arrays (`folded_arrays()` layout, float32) back from a graph `build_onnx` wrote:
    a shipped model becomes a starting point again (`finetune --init-from`) or a feature extractor."""
    import onnx
    from onnx import numpy_helper

    raw = {}
    for t in onnx.load(str(path)).graph.initializer:
        name = t.name[:-4] if t.name.endswith(".f16") else t.name
        raw[name] = numpy_helper.to_array(t).astype(np.float32)
    if "head.w" not in raw or "conv1.w" not in raw:
        raise ValueError(f"{path}: not a MobileNet graph written by training.mobilenet.build_onnx")
    out = {}
    for key, w in raw.items():
        unit, part = key.rsplit(".", 1)
        if part == "b":
            out[f"{unit}.bias"] = w
        elif part == "w" and unit == "head":
            out["head.kernel"] = w
        elif part == "w":
            # build_onnx wrote OIHW: depthwise (C, 1, 3, 3) from (3, 3, C, 1), others from HWIO
            out[f"{unit}.kernel"] = w.transpose(2, 3, 0, 1) if unit.startswith("dw") else w.transpose(2, 3, 1, 0)
    return {k: np.ascontiguousarray(v) for k, v in out.items()}

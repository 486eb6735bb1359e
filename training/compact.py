"""The compact CNN for 48x48 grey faces, in PyTorch, and its ONNX graph for serving.

A port of the Keras `compact_cnn` the two compact cards were first trained with (same layers, names,
initialisation and batch-norm settings): per block two 3x3 conv-BN-ReLU, 2x2 max-pool and dropout;
global average pooling, a 256-unit dense-BN-ReLU layer, dropout, the classifier. ~1.24M weights,
~0.12 GFLOP per face.

`folded_arrays()` folds every batch norm into the kernel before it, and `build_onnx()` writes those
arrays as a plain ONNX graph with the `onnx` helper (NHWC float input in [0, 1] as `model_core.preprocess`
makes it for `scale: unit`, softmax output), as training/mobilenet.py does for MobileNet: no exporter.
A leaf: imports only numpy (torch and onnx inside the functions).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

WIDTHS = (32, 64, 128, 256)
HEAD_UNITS = 256
BN_EPS = 1e-3  # Keras' BatchNormalization defaults (epsilon 1e-3, momentum 0.99)
BN_MOMENTUM = 0.01


def block_dropout(i: int, dropout: float = 0.25) -> float:
    """Dropout after block i (1-based): half the rate after the first block, the full rate after."""
    return dropout * min(1.0, i / 2)


def CompactCNN(
    num_classes: int,
    widths=WIDTHS,
    head_units: int = HEAD_UNITS,
    dropout: float = 0.5,  # noqa: N802
    block_drop: float = 0.25,
    in_channels: int = 1,
):
    """The network; `dropout` is the head's (before the classifier), `block_drop` the conv blocks'."""
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.widths = tuple(widths)
            convs, cin = [], in_channels
            for i, w in enumerate(self.widths, 1):
                for part in ("a", "b"):
                    convs.append(
                        (
                            f"block{i}_{part}",
                            nn.Sequential(
                                nn.Conv2d(cin, w, 3, padding=1, bias=False),
                                nn.BatchNorm2d(w, eps=BN_EPS, momentum=BN_MOMENTUM),
                            ),
                        )
                    )
                    cin = w
            self.convs = nn.ModuleDict(convs)
            self.drops = nn.ModuleList(nn.Dropout(block_dropout(i, block_drop)) for i in range(1, len(widths) + 1))
            self.head_dense = nn.Linear(cin, head_units, bias=False)
            self.head_bn = nn.BatchNorm1d(head_units, eps=BN_EPS, momentum=BN_MOMENTUM)
            self.head_drop = nn.Dropout(dropout)
            self.head = nn.Linear(head_units, num_classes)
            for m in self.modules():  # Keras' glorot-uniform kernels and zero biases
                if isinstance(m, (nn.Conv2d, nn.Linear)):
                    nn.init.xavier_uniform_(m.weight)
                    if m.bias is not None:
                        nn.init.zeros_(m.bias)

        def forward(self, x):
            for i in range(1, len(self.widths) + 1):
                x = F.relu(self.convs[f"block{i}_a"](x))
                x = F.relu(self.convs[f"block{i}_b"](x))
                x = self.drops[i - 1](F.max_pool2d(x, 2))
            x = x.float().mean(dim=(2, 3))
            x = self.head_drop(F.relu(self.head_bn(self.head_dense(x))))
            return self.head(x)

        def groups(self):
            """One parameter group: the net is trained from scratch at one rate."""
            return [list(self.parameters())]

        def folded_arrays(self) -> dict[str, np.ndarray]:
            """Conv kernels (OIHW) and dense kernels (out, in) with their batch norms folded in."""
            out = {}

            def fold(weight, bn):
                inv = (bn.weight / torch.sqrt(bn.running_var + bn.eps)).detach()
                shift = (bn.bias - bn.running_mean * inv).detach()
                shape = (-1,) + (1,) * (weight.ndim - 1)
                return (weight.detach() * inv.view(shape)).float().cpu().numpy(), shift.float().cpu().numpy()

            with torch.no_grad():
                for name, seq in self.convs.items():
                    out[f"{name}.kernel"], out[f"{name}.bias"] = fold(seq[0].weight, seq[1])
                out["head_dense.kernel"], out["head_dense.bias"] = fold(self.head_dense.weight, self.head_bn)
                out["head.kernel"] = self.head.weight.detach().float().cpu().numpy()
                out["head.bias"] = self.head.bias.detach().float().cpu().numpy()
            return {k: np.ascontiguousarray(v, np.float32) for k, v in out.items()}

    return Net()


def build_onnx(arrays: dict[str, np.ndarray], size: int = 48, path: str | Path | None = None, storage: str = "float32"):
    """Folded arrays (`folded_arrays()`) as an ONNX model: input `input` (N, size, size, C) float32 in
    [0, 1]; output `probs` (N, classes), softmax. `storage="float16"` halves the file (Cast nodes that
    ONNX Runtime folds at load; the arithmetic stays float32)."""
    from .onnx_graph import GraphBuilder

    g = GraphBuilder(storage)
    const = g.const
    channels = int(arrays["block1_a.kernel"].shape[1])
    blocks = sorted({int(k[5 : k.index("_")]) for k in arrays if k.startswith("block")})
    g.node("Transpose", ["input"], ["x0"], perm=[0, 3, 1, 2])
    x = "x0"
    for i in blocks:
        for part in ("a", "b"):
            name = f"block{i}_{part}"
            g.node(
                "Conv",
                [x, const(f"{name}.w", arrays[f"{name}.kernel"]), const(f"{name}.b", arrays[f"{name}.bias"])],
                [f"{name}.c"],
                kernel_shape=[3, 3],
                pads=[1, 1, 1, 1],
            )
            g.node("Relu", [f"{name}.c"], [f"{name}.y"])
            x = f"{name}.y"
        g.node("MaxPool", [x], [f"block{i}.p"], kernel_shape=[2, 2], strides=[2, 2])
        x = f"block{i}.p"
    g.node("GlobalAveragePool", [x], ["pool"])
    g.node("Flatten", ["pool"], ["feat"], axis=1)
    g.node(
        "Gemm",
        ["feat", const("head_dense.w", arrays["head_dense.kernel"]), const("head_dense.b", arrays["head_dense.bias"])],
        ["hd"],
        transB=1,
    )
    g.node("Relu", ["hd"], ["hr"])
    g.node(
        "Gemm",
        ["hr", const("head.w", arrays["head.kernel"]), const("head.b", arrays["head.bias"])],
        ["logits"],
        transB=1,
    )
    g.node("Softmax", ["logits"], ["probs"], axis=-1)
    return g.model(
        "compact_cnn_emotion",
        size,
        channels,
        int(arrays["head.bias"].shape[0]),
        "emotion-assistant training.compact",
        path,
    )

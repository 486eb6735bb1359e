"""What every net's ONNX writer shares (training/nets.py registers the writers): constants stored as
float32 or float16 behind Cast nodes, and the finished model (NHWC `input` -> softmax `probs`, opset 17,
IR 8 so onnxruntime-web reads it too), checked and optionally saved. A leaf: numpy and onnx only."""

from __future__ import annotations

from pathlib import Path

import numpy as np

STORAGES = ("float32", "float16")


class GraphBuilder:
    """Nodes and initialisers of one graph. `storage="float16"` keeps each non-scalar constant as
    float16 in the file (half the size) behind a Cast, which ONNX Runtime folds into a float32 constant
    at load: the arithmetic stays float32."""

    def __init__(self, storage: str = "float32"):
        if storage not in STORAGES:
            raise ValueError(f"storage must be float32 or float16, got {storage!r}")
        from onnx import helper

        self.storage, self.helper = storage, helper
        self.inits, self.nodes = [], []

    def const(self, name: str, value) -> str:
        from onnx import TensorProto, numpy_helper

        value = np.asarray(value, np.float32)
        if self.storage == "float16" and value.ndim > 0:
            self.inits.append(numpy_helper.from_array(np.ascontiguousarray(value, np.float16), name + ".f16"))
            self.node("Cast", [name + ".f16"], [name], to=TensorProto.FLOAT)
        else:
            self.inits.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def node(self, op: str, inputs, outputs, **attrs) -> None:
        self.nodes.append(self.helper.make_node(op, list(inputs), list(outputs), **attrs))

    def model(
        self, graph_name: str, size: int, channels: int, classes: int, producer: str, path: str | Path | None = None
    ):
        """The checked model with input `input` (N, size, size, channels) and output `probs` (N, classes)."""
        import onnx
        from onnx import TensorProto

        helper = self.helper
        graph = helper.make_graph(
            self.nodes,
            graph_name,
            [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", size, size, channels])],
            [helper.make_tensor_value_info("probs", TensorProto.FLOAT, ["N", classes])],
            self.inits,
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name=producer)
        model.ir_version = 8
        onnx.checker.check_model(model)
        if path is not None:
            onnx.save(model, str(path))
        return model

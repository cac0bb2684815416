"""Conv + Gemm/MatMul multiply-accumulates counted from an ONNX graph (batch 1).

An independent check that the exported file is the network the Arch describes: the count
must equal the analytic ``SearchSpace.cost(arch, num_classes=0)`` (the exported backbone has no
classifier; see the project's FLOPs convention). Shapes come from ``onnx.shape_inference``; a
symbolic batch dimension counts as 1.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import onnx
from onnx import numpy_helper

from edgessl.errors import RuntimeFailure


def _shape(info) -> list[int] | None:
    dims = info.type.tensor_type.shape.dim
    if not info.type.tensor_type.HasField("shape"):
        return None
    return [int(d.dim_value) if d.HasField("dim_value") else 1 for d in dims]


class _Graph:
    """Shapes of every value (inputs, initializers, inferred intermediates) by name."""

    def __init__(self, model: onnx.ModelProto):
        inferred = onnx.shape_inference.infer_shapes(model, data_prop=True)
        g = inferred.graph
        self.shapes: dict[str, list[int]] = {}
        for v in [*g.input, *g.value_info, *g.output]:
            s = _shape(v)
            if s is not None:
                self.shapes[v.name] = s
        for init in g.initializer:
            self.shapes[init.name] = list(init.dims)
        for node in g.node:  # Constant nodes carry weights in some exports
            if node.op_type == "Constant" and node.attribute:
                attr = node.attribute[0]
                if attr.type == onnx.AttributeProto.TENSOR:
                    self.shapes[node.output[0]] = list(numpy_helper.to_array(attr.t).shape)

    def shape(self, name: str, node: onnx.NodeProto) -> list[int]:
        if name not in self.shapes:
            raise RuntimeFailure(f"ONNX MAC count: no shape for {name!r} (input of "
                                 f"{node.op_type} node {node.name!r})")
        return self.shapes[name]


def _attr(node: onnx.NodeProto, name: str, default):
    for a in node.attribute:
        if a.name == name:
            return onnx.helper.get_attribute_value(a)
    return default


def _conv(g: _Graph, node: onnx.NodeProto) -> int:
    w = g.shape(node.input[1], node)  # (M, C/group, kH, kW)
    out = g.shape(node.output[0], node)  # (N, M, H', W')
    return math.prod(out) * math.prod(w[1:])


def _gemm(g: _Graph, node: onnx.NodeProto) -> int:
    a = g.shape(node.input[0], node)
    k = a[0] if _attr(node, "transA", 0) else a[1]
    return math.prod(g.shape(node.output[0], node)) * k


def _matmul(g: _Graph, node: onnx.NodeProto) -> int:
    a = g.shape(node.input[0], node)
    return math.prod(g.shape(node.output[0], node)) * a[-1]


COUNTERS: dict[str, Callable[[_Graph, onnx.NodeProto], int]] = {
    "Conv": _conv,
    "Gemm": _gemm,
    "MatMul": _matmul,
}


def onnx_macs(model: str | Path | onnx.ModelProto) -> int:
    """Multiply-accumulates of Conv, Gemm and MatMul nodes for one image."""
    if not isinstance(model, onnx.ModelProto):
        model = onnx.load(str(model))
    g = _Graph(model)
    return sum(COUNTERS[n.op_type](g, n) for n in model.graph.node if n.op_type in COUNTERS)

"""ONNX's own reference implementation of an operator, as an independent oracle for the reference executor."""

from __future__ import annotations

import numpy as np
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator

_ELEMENT_TYPES = {
    np.dtype(np.float32): TensorProto.FLOAT,
    np.dtype(np.float16): TensorProto.FLOAT16,
    np.dtype(np.int32): TensorProto.INT32,
    np.dtype(np.int64): TensorProto.INT64,
    np.dtype(np.bool_): TensorProto.BOOL,
}


def onnx_op(op_type: str, inputs: list, *, outputs: int = 1, opset: int = 24, **attributes) -> list[np.ndarray]:
    """Run one ONNX operator through ``onnx.reference``; ``None`` inputs are left empty (optional inputs)."""
    names = [f"in{i}" if value is not None else "" for i, value in enumerate(inputs)]
    node = helper.make_node(op_type, names, [f"out{i}" for i in range(outputs)], **attributes)
    graph_inputs = [
        helper.make_tensor_value_info(name, _ELEMENT_TYPES[np.asarray(value).dtype], np.shape(value))
        for name, value in zip(names, inputs, strict=True)
        if value is not None
    ]
    graph_outputs = [helper.make_tensor_value_info(f"out{i}", TensorProto.UNDEFINED, None) for i in range(outputs)]
    model = helper.make_model(
        helper.make_graph([node], "oracle", graph_inputs, graph_outputs), opset_imports=[helper.make_opsetid("", opset)]
    )
    feeds = {name: np.asarray(value) for name, value in zip(names, inputs, strict=True) if value is not None}
    return list(ReferenceEvaluator(model).run(None, feeds))

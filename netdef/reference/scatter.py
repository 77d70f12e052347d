"""Writing by index: scatter, one-hot encoding, and the indices of non-zero elements."""

from __future__ import annotations

import numpy as np

from netdef.backend import trt
from netdef.reference import costs
from netdef.reference.node import Unsupported
from netdef.reference.registry import register


def _wrapped(indices: np.ndarray, length: int, what: str) -> np.ndarray:
    indices = np.asarray(indices).astype(np.int64)
    if indices.size and (indices.min() < -length or indices.max() >= length):
        raise Unsupported(f"{what} indices {indices.min()}..{indices.max()} outside [-{length}, {length})")
    return np.where(indices < 0, indices + length, indices)


@register("SCATTER", "IScatterLayer", ("mode", "axis"), family="data", flops=costs.free)
def scatter(node, inputs):
    """y = data with ``updates`` written at ``indices``: ELEMENT (ONNX ScatterElements) or ND (ONNX ScatterND).

    ELEMENT: y[J with J[axis] = indices[J]] = updates[J] for every index J of ``indices`` (same shape
    as ``updates``). ND: the last axis of ``indices`` holds a coordinate prefix into ``data``;
    y[indices[j]] = updates[j] writes a slice of shape data.shape[k:] for k = indices.shape[-1].
    Negative indices count from the end; out-of-range indices are an error. When indices repeat, the
    last write wins (TensorRT leaves the order unspecified).
    """
    data, indices, updates = inputs[0], np.asarray(inputs[1]), inputs[2]
    out = data.copy()
    mode = node.attr("mode")
    if mode == trt.ScatterMode.ELEMENT:
        axis = int(node.attr("axis")) % data.ndim
        index = _wrapped(indices, data.shape[axis], "scatter")
        coords = list(np.indices(index.shape, sparse=True))
        coords[axis] = index
        out[tuple(coords)] = updates
        return out
    if mode == trt.ScatterMode.ND:
        depth = indices.shape[-1]
        flat = indices.reshape(-1, depth)
        coords = [_wrapped(flat[:, j], data.shape[j], "scatter") for j in range(depth)]
        out[tuple(coords)] = updates.reshape((flat.shape[0],) + data.shape[depth:])
        return out
    raise Unsupported(f"scatter mode {mode.name}")


@register("ONE_HOT", "IOneHotLayer", ("axis",), family="data", flops=costs.free)
def one_hot(node, inputs):
    """One-hot encoding: y = on_value where the new axis ``axis`` equals indices, else off_value (ONNX OneHot).

    Inputs: indices (int32/int64), values = [off_value, on_value], depth (0-d). The output has rank
    rank(indices) + 1 with length ``depth`` at ``axis`` (negative: counted from the output's end).
    Indices in [-depth, -1] count from the end; indices outside [-depth, depth) give a row of off_value.
    """
    indices, values = np.asarray(inputs[0]).astype(np.int64), inputs[1].reshape(-1)
    depth = int(np.asarray(inputs[2]).reshape(()))
    axis = int(node.attr("axis")) % (indices.ndim + 1)
    indices = np.where(indices < 0, indices + depth, indices)
    classes = np.arange(depth).reshape((-1,) + (1,) * (indices.ndim - axis))
    hot = np.expand_dims(indices, axis) == classes
    return np.where(hot, values[1], values[0]).astype(values.dtype)


@register("NON_ZERO", "INonZeroLayer", ("indices_type",), family="data", flops=costs.free)
def non_zero(node, inputs):
    """The coordinates of the non-zero elements, row-major: y has shape [rank, count] (ONNX NonZero).

    The count is data-dependent: TensorRT infers the second axis as -1.
    """
    x, dtype = np.asarray(inputs[0]), node.output_dtypes[0]
    if x.ndim == 0:  # a scalar has no coordinates: shape [0, 1] when it is non-zero, [0, 0] otherwise
        return np.zeros((0, int(bool(x))), dtype)
    return np.stack(np.nonzero(x)).astype(dtype)

"""Gathering by index tensors, and selecting between two tensors by a condition."""

from __future__ import annotations

import numpy as np

from netdef.backend import trt
from netdef.reference import costs
from netdef.reference.node import Unsupported
from netdef.reference.registry import register


def _normalized(indices: np.ndarray, length: int) -> tuple[np.ndarray, np.ndarray]:
    """Negative indices counted from the end; returns (clipped indices, in-bounds mask)."""
    indices = np.where(indices < 0, indices + length, indices).astype(np.int64)
    inside = (indices >= 0) & (indices < length)
    return np.clip(indices, 0, max(length - 1, 0)), inside


def _zero_outside(values: np.ndarray, inside: np.ndarray) -> np.ndarray:
    if inside.all():
        return values
    return np.where(inside, values, np.zeros((), values.dtype))


def _gather_default(data, indices, axis: int, batch_dims: int):
    index, inside = _normalized(indices, data.shape[axis])
    if batch_dims == 0:
        values = np.take(data, index, axis=axis)
        mask = inside.reshape((1,) * axis + inside.shape + (1,) * (data.ndim - axis - 1))
        return _zero_outside(values, mask)
    batch = max(data.shape[0], index.shape[0])
    rows = []
    for b in range(batch):
        rows.append(_gather_default(data[b % data.shape[0]], indices[b % indices.shape[0]], axis - 1, 0))
    return np.stack(rows)


def _gather_nd(data, indices, batch_dims: int):
    depth = indices.shape[-1]
    lead = data.shape[:batch_dims]
    flat_data = data.reshape((-1,) + data.shape[batch_dims:])
    flat_indices = indices.reshape((-1,) + indices.shape[batch_dims:])
    rows = []
    for b in range(flat_data.shape[0]):
        coords = flat_indices[b].reshape(-1, depth)
        pairs = [_normalized(coords[:, j], flat_data.shape[1 + j]) for j in range(depth)]
        clipped, inside = [p[0] for p in pairs], [p[1] for p in pairs]
        values = flat_data[b][tuple(clipped)]
        mask = np.logical_and.reduce(inside).reshape((-1,) + (1,) * (values.ndim - 1))
        rows.append(_zero_outside(values, mask).reshape(flat_indices.shape[1:-1] + values.shape[1:]))
    return np.stack(rows).reshape(lead + rows[0].shape) if rows else np.zeros(lead, data.dtype)


@register("GATHER", "IGatherLayer", ("mode", "axis", "num_elementwise_dims"), family="data", flops=costs.free)
def gather(node, inputs):
    """Pick elements of data (input 0) by int32/int64 indices (input 1); negative indices count from the end.

    DEFAULT (ONNX Gather): y = take(data, indices, axis), shape data[:axis] + indices + data[axis+1:];
    with num_elementwise_dims = 1 the first axis is a batch axis shared by data and indices.
    ELEMENT (ONNX GatherElements): y[J] = data[J with J[axis] = indices[J]], shape of indices.
    ND (ONNX GatherND): the last axis of indices holds coordinates into data after the first
    num_elementwise_dims (batch) axes. Out-of-bounds indices give 0.
    """
    data, indices = inputs[0], np.asarray(inputs[1])
    mode = node.attr("mode")
    batch_dims = int(node.attr("num_elementwise_dims"))
    if mode == trt.GatherMode.DEFAULT:
        return _gather_default(data, indices, int(node.attr("axis")), batch_dims)
    if mode == trt.GatherMode.ELEMENT:
        axis = int(node.attr("axis"))
        index, inside = _normalized(indices, data.shape[axis])
        return _zero_outside(np.take_along_axis(data, index, axis=axis), inside)
    if mode == trt.GatherMode.ND:
        return _gather_nd(data, indices, batch_dims)
    raise Unsupported(f"gather mode {mode.name}")


@register("SELECT", "ISelectLayer", family="elementwise", flops=costs.per_output(1))
def select(node, inputs):
    """y = condition ? a : b elementwise; condition (bool, input 0), a and b broadcast to one shape."""
    return np.where(inputs[0], inputs[1], inputs[2])

"""The slice layer: strided windows with out-of-bounds sampling modes."""

from __future__ import annotations

import numpy as np

from netdef.backend import trt
from netdef.reference import costs
from netdef.reference.node import Unsupported
from netdef.reference.registry import register


def _operand(node, inputs, index: int, attribute: str) -> tuple[int, ...] | None:
    """A slice parameter from input tensor ``index`` when set, else the layer's Dims attribute."""
    if len(inputs) > index and inputs[index] is not None:
        return tuple(int(v) for v in np.asarray(inputs[index]).reshape(-1))
    return node.dims(attribute)


def _sample(indices: np.ndarray, length: int, mode) -> tuple[np.ndarray, np.ndarray | None]:
    """Map sampled coordinates into [0, length) by ``mode``; also the in-bounds mask for FILL."""
    inside = (indices >= 0) & (indices < length)
    if mode == trt.SampleMode.WRAP:
        return indices % length, None
    if mode == trt.SampleMode.CLAMP:
        return np.clip(indices, 0, length - 1), None
    if mode == trt.SampleMode.REFLECT:
        if length == 1:
            return np.zeros_like(indices), None
        period = 2 * (length - 1)
        folded = indices % period
        return np.where(folded < length, folded, period - folded), None
    if mode == trt.SampleMode.FILL:
        return np.clip(indices, 0, max(length - 1, 0)), inside
    if not inside.all():
        raise Unsupported(f"STRICT_BOUNDS slice samples coordinates {indices.tolist()} outside [0, {length})")
    return indices, None


def _describe(layer) -> dict:
    params = {}
    for index, name in ((1, "start"), (2, "shape"), (3, "stride"), (5, "axes")):
        dynamic = layer.num_inputs > index and layer.get_input(index) is not None
        params[name] = f"input {index}" if dynamic else getattr(layer, name)
    params["mode"] = layer.mode
    return params


@register("SLICE", "ISliceLayer", _describe, family="data", flops=costs.free)
def slice_layer(node, inputs):
    """y[i] = x[start + i * stride] for i in [0, shape) per axis; out-of-bounds coordinates follow ``mode``.

    Output shape = ``shape``. When ``axes`` is set, start/shape/stride apply to those axes only
    (negative axes count from the end) and other axes are copied whole. start, shape, stride and
    axes may come from inputs 1, 2, 3 and 5. Modes: STRICT_BOUNDS (coordinates must be inside),
    WRAP (modulo the length), CLAMP (to [0, n - 1]), REFLECT (mirror about the edge elements,
    period 2(n - 1)), FILL (outside coordinates give input 4's value, or 0).
    """
    x = inputs[0]
    rank = x.ndim
    start = _operand(node, inputs, 1, "start")
    size = _operand(node, inputs, 2, "shape")
    stride = _operand(node, inputs, 3, "stride")
    axes = _operand(node, inputs, 5, "axes")
    if axes is not None:
        full_start, full_size, full_stride = [0] * rank, list(x.shape), [1] * rank
        for j, axis in enumerate(axes):
            axis %= rank
            full_start[axis], full_size[axis], full_stride[axis] = start[j], size[j], stride[j]
        start, size, stride = full_start, full_size, full_stride
    mode = node.attr("mode")
    indices, masks = [], []
    for axis in range(rank):
        sampled, mask = _sample(start[axis] + np.arange(size[axis]) * stride[axis], x.shape[axis], mode)
        indices.append(sampled)
        masks.append(mask)
    out = x[np.ix_(*indices)] if rank else x.copy()
    if mode == trt.SampleMode.FILL:
        fill = np.asarray(inputs[4]).reshape(()) if len(inputs) > 4 and inputs[4] is not None else 0
        inside = np.ones(out.shape, bool)
        for axis, mask in enumerate(masks):
            inside &= mask.reshape((-1,) + (1,) * (rank - axis - 1))
        out = np.where(inside, out, np.asarray(fill).astype(x.dtype))
    return out

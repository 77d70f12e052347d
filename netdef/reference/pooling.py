"""Max, average and blended pooling over the trailing 2 or 3 axes."""

from __future__ import annotations

import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from netdef.backend import trt
from netdef.reference import costs
from netdef.reference.dtypes import FLOAT32, compute
from netdef.reference.registry import register
from netdef.reference.windows import AxisWindow, forward_window, pad, strided_slices

_LOOP_LIMIT = 64  # window offsets up to which pooling loops over offsets rather than reducing a window view


def _reduce_windows(x, window, stride, out, reduce_name: str) -> np.ndarray:
    """max or sum of every window of x's trailing axes (x already padded)."""
    if math.prod(window) <= _LOOP_LIMIT:
        combine = np.maximum if reduce_name == "max" else np.add
        acc = None
        for _, view in strided_slices(x, window, stride, (1,) * len(window), out):
            if acc is None:
                acc = np.array(view, dtype=FLOAT32)
            else:
                combine(acc, view, out=acc)
        assert acc is not None  # the window has at least one element
        return acc
    spatial = len(window)
    axes = tuple(range(x.ndim - spatial, x.ndim))
    views = sliding_window_view(x, window, axis=axes)
    lead = (slice(None),) * (x.ndim - spatial)
    views = views[lead + tuple(slice(None, (o - 1) * s + 1, s) for o, s in zip(out, stride, strict=True))]
    window_axes = tuple(range(x.ndim, x.ndim + spatial))
    return getattr(views, reduce_name)(axis=window_axes).astype(FLOAT32, copy=False)


def _window_counts(axes: list[AxisWindow], sizes, window, stride, exclude_padding: bool) -> np.ndarray:
    """Per output position, how many window elements fall in the input (or in the padded input)."""
    counts = np.ones((), FLOAT32)
    for axis, size, f, s in zip(axes, sizes, window, stride, strict=True):
        start = np.arange(axis.out) * s - axis.pre
        low, high = (0, size) if exclude_padding else (-axis.pre, size + axis.post)
        per_axis = np.clip(np.minimum(start + f, high) - np.maximum(start, low), 0, None)
        counts = np.multiply.outer(counts, per_axis.astype(FLOAT32))
    return counts


def _area(window) -> int:
    return math.prod(int(d) for d in window)


@register(
    "POOLING",
    "IPoolingLayer",
    (
        "type",
        "window_size_nd",
        "stride_nd",
        "pre_padding",
        "post_padding",
        "padding_mode",
        "average_count_excludes_padding",
        "blend_factor",
    ),
    family="reduction",
    flops=lambda layer: _area(layer.window_size_nd) * (costs.numel(costs.output_shape(layer)) or 0),
    detail=lambda layer: f"{costs.enum_text(layer.type)} {costs.window_text(layer, layer.window_size_nd)}",
)
def pooling(node, inputs):
    """Max, average or blended pooling over windows of the trailing axes: y[.., o] = pool(x_pad[.., oS:oS+F]).

    The window F (window_size_nd) covers the last len(F) axes; stride S defaults to 1. Padding B/A
    (pre/post_padding or padding_mode) gives O = floor((I + B + A - F) / S) + 1 per axis
    (ceil with EXPLICIT_ROUND_UP; ceil(I / S) with SAME_*). MAX ignores padding (-inf). AVERAGE
    divides the window sum by the number of window elements inside the input when
    average_count_excludes_padding (default), else inside the padded input [-B, I + A).
    MAX_AVERAGE_BLEND = (1 - blend_factor) * max + blend_factor * average. Computed in float32.
    """
    x = compute(inputs[0])
    kind = node.attr("type")
    window = tuple(node.dims("window_size_nd"))
    spatial = len(window)
    stride = tuple(node.dims("stride_nd") or (1,) * spatial)
    pre = node.dims("pre_padding") or (0,) * spatial
    post = node.dims("post_padding") or (0,) * spatial
    mode = node.attr("padding_mode")
    sizes = x.shape[-spatial:]
    axes = [forward_window(mode, sizes[i], window[i], stride[i], pre[i], post[i]) for i in range(spatial)]
    out = tuple(a.out for a in axes)
    before = [a.pre for a in axes]
    after = [a.post + a.extra for a in axes]
    result = None
    if kind in (trt.PoolingType.MAX, trt.PoolingType.MAX_AVERAGE_BLEND):
        maximum = _reduce_windows(pad(x, before, after, -np.inf), window, stride, out, "max")
        result = maximum
    if kind in (trt.PoolingType.AVERAGE, trt.PoolingType.MAX_AVERAGE_BLEND):
        total = _reduce_windows(pad(x, before, after, 0.0), window, stride, out, "sum")
        excludes = bool(node.attr("average_count_excludes_padding"))
        counts = _window_counts(axes, sizes, window, stride, excludes)
        average = total / np.maximum(counts, 1)
        if result is None:
            result = average
        else:
            blend = np.float32(node.attr("blend_factor"))
            result = (1 - blend) * result + blend * average
    return result

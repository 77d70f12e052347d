"""Reductions along axes: reduce, softmax, top-k, cumulative sum."""

from __future__ import annotations

import numpy as np

from netdef.backend import trt
from netdef.reference import costs
from netdef.reference.dtypes import compute, is_float
from netdef.reference.node import Unsupported
from netdef.reference.readback import bits
from netdef.reference.registry import register


def _int_mean(x, axes, keepdims):
    count = int(np.prod([x.shape[a] for a in axes])) if axes else 1
    total = np.sum(x.astype(np.int64), axis=axes, keepdims=keepdims)
    return np.trunc(total / max(count, 1)).astype(x.dtype)


@register(
    "REDUCE",
    "IReduceLayer",
    ("op", "axes", "keep_dims"),
    family="reduction",
    flops=costs.per_input(1),
    detail=lambda layer: (
        f"{costs.enum_text(layer.op)} {costs.axes_text(layer.axes)}" + (" keepdim" if layer.keep_dims else "")
    ),
)
def reduce(node, inputs):
    """Reduce over the axes set in the ``axes`` bitmask (bit i = axis i): SUM, PROD, MAX, MIN or AVG.

    keep_dims keeps reduced axes with length 1, else removes them. Floating types accumulate in
    float32; integer AVG truncates toward zero. Empty reductions give SUM 0, PROD 1, MAX -inf,
    MIN +inf, AVG NaN.
    """
    x = compute(inputs[0])
    axes = bits(node.attr("axes"), x.ndim)
    keep = bool(node.attr("keep_dims"))
    op = node.attr("op").name
    if op == "NONE":
        return x.copy()
    if op == "AVG" and not is_float(x.dtype):
        return _int_mean(x, axes, keep)
    if op in ("MAX", "MIN") and x.size == 0 and is_float(x.dtype):
        shape = tuple(1 if (a in axes) else n for a, n in enumerate(x.shape) if keep or a not in axes)
        return np.full(shape, -np.inf if op == "MAX" else np.inf, x.dtype)
    function = {"SUM": np.sum, "PROD": np.prod, "MAX": np.max, "MIN": np.min, "AVG": np.mean}.get(op)
    if function is None:
        raise Unsupported(f"reduce operation {op}")
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray(function(x, axis=axes, keepdims=keep)).astype(x.dtype, copy=False)


@register(
    "SOFTMAX",
    "ISoftMaxLayer",
    ("axes",),
    family="softmax",
    flops=costs.per_output(3),
    detail=lambda layer: costs.axes_text(layer.axes),
)
def softmax(node, inputs):
    """Softmax along the axis set in the ``axes`` bitmask: y = exp(x - max) / sum(exp(x - max)), float32.

    The default axis is rank - 3 (0 when rank < 3), i.e. C for NCHW; not the last axis.
    """
    x = compute(inputs[0])
    axes = bits(node.attr("axes"), x.ndim)
    shifted = np.exp(x - np.max(x, axis=axes, keepdims=True))
    return shifted / np.sum(shifted, axis=axes, keepdims=True)


@register("TOPK", "ITopKLayer", ("op", "k", "axes", "indices_type"), family="reduction", flops=costs.per_input(1))
def topk(node, inputs):
    """The k largest (MAX) or smallest (MIN) values along the ``axes`` bit, and their indices.

    Outputs: values (same type, axis length k) sorted from the extreme, and int32/int64 indices;
    ties keep the lower index first. k comes from input 1 when set.
    """
    x = inputs[0]
    (axis,) = bits(node.attr("axes"), x.ndim)
    dynamic_k = len(inputs) > 1 and inputs[1] is not None
    k = int(np.asarray(inputs[1]).reshape(())) if dynamic_k else int(node.attr("k"))
    key = compute(x).astype(np.float64)
    if node.attr("op") == trt.TopKOperation.MAX:
        key = -key
    order = np.argsort(key, axis=axis, kind="stable")
    indices = np.take(order, np.arange(k), axis=axis)
    values = np.take_along_axis(x, indices, axis=axis)
    return [values, indices.astype(node.output_dtypes[1])]


@register(
    "CUMULATIVE", "ICumulativeLayer", ("op", "exclusive", "reverse"), family="reduction", flops=costs.per_input(1)
)
def cumulative(node, inputs):
    """Running sum along the axis in scalar input 1; ``exclusive`` shifts it by one; ``reverse`` runs back."""
    x = compute(inputs[0])
    axis = int(np.asarray(inputs[1]).reshape(()))
    if node.attr("op").name != "SUM":
        raise Unsupported(f"cumulative operation {node.attr('op').name}")
    if node.attr("reverse"):
        x = np.flip(x, axis)
    out = np.cumsum(x, axis=axis, dtype=x.dtype)
    if node.attr("exclusive"):
        first = np.zeros_like(np.take(out, [0], axis=axis))
        out = np.concatenate([first, np.delete(out, -1, axis=axis)], axis=axis)
    if node.attr("reverse"):
        out = np.flip(out, axis)
    return np.ascontiguousarray(out)

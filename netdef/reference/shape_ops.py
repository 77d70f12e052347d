"""Layers that move, reshape, join, pad or retype data without arithmetic."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from netdef.reference import costs
from netdef.reference.dtypes import convert, numpy_dtype
from netdef.reference.node import Unsupported
from netdef.reference.readback import permutation
from netdef.reference.registry import register
from netdef.reference.windows import pad


def _reshape_dims(node, inputs) -> tuple[int, ...] | None:
    if len(inputs) > 1 and inputs[1] is not None:
        return tuple(int(v) for v in np.asarray(inputs[1]).reshape(-1))
    return node.dims("reshape_dims")


def resolve_reshape(dims: tuple[int, ...], shape: tuple[int, ...], zero_is_placeholder: bool) -> tuple[int, ...]:
    """Reshape dimensions with 0 (copy the input's length at that index) and -1 (inferred) resolved."""
    out = [shape[i] if (d == 0 and zero_is_placeholder) else d for i, d in enumerate(dims)]
    if out.count(-1) > 1:
        raise Unsupported(f"reshape dimensions {dims} have more than one -1")
    if -1 in out:
        known = math.prod(d for d in out if d != -1)
        out[out.index(-1)] = math.prod(shape) // known if known else 0
    return tuple(out)


def _describe_shuffle(layer) -> dict:
    rank = len(layer.get_input(0).shape)
    params: dict[str, Any] = {"first_transpose": permutation(layer.first_transpose, rank)}
    if layer.num_inputs > 1 and layer.get_input(1) is not None:
        params["reshape_dims"] = "input 1"
        out_rank = len(layer.get_output(0).shape)
    else:
        params["reshape_dims"] = layer.reshape_dims
        out_rank = len(layer.reshape_dims) if layer.reshape_dims is not None else rank
    params["second_transpose"] = permutation(layer.second_transpose, out_rank)
    params["zero_is_placeholder"] = layer.zero_is_placeholder
    return params


def _shuffle_detail(layer) -> str:
    parts = []
    output_rank = len(costs.output_shape(layer) or ())
    first = permutation(layer.first_transpose, len(costs.input_shape(layer) or ()))
    if first != tuple(range(len(first))):
        parts.append(f"permute {list(first)}")
    try:
        dims = tuple(int(d) for d in layer.reshape_dims)
    except (RuntimeError, ValueError, TypeError):
        dims = None
    if dims:
        parts.append(f"reshape {list(dims)}")
    second = permutation(layer.second_transpose, output_rank)
    if second != tuple(range(len(second))):
        parts.append(f"then permute {list(second)}")
    return ", ".join(parts) or "identity"


@register("SHUFFLE", "IShuffleLayer", _describe_shuffle, family="data", flops=costs.free, detail=_shuffle_detail)
def shuffle(node, inputs):
    """Transpose, reshape, transpose: y = transpose(reshape(transpose(x, P1), R), P2).

    A transpose P puts input axis P[i] at output axis i (numpy.transpose). In the reshape
    dimensions R (or the 1-D shape tensor in input 1), 0 copies the length at that index of the
    transposed input (when zero_is_placeholder, the default; else it is a zero length) and one -1
    is inferred from the element count. Without reshape dimensions only the transposes apply.
    """
    x = inputs[0]
    y = np.transpose(x, permutation(node.attr("first_transpose"), x.ndim))
    dims = _reshape_dims(node, inputs)
    if dims is not None:
        y = y.reshape(resolve_reshape(dims, y.shape, bool(node.attr("zero_is_placeholder"))))
    y = np.transpose(y, permutation(node.attr("second_transpose"), y.ndim))
    return np.require(y, requirements="C")  # unlike ascontiguousarray, keeps a 0-d result 0-d


@register(
    "CONCATENATION",
    "IConcatenationLayer",
    ("axis",),
    family="data",
    flops=costs.free,
    detail=lambda layer: f"axis {layer.axis}",
)
def concatenation(node, inputs):
    """Join the inputs along ``axis``; other lengths must match. Default axis: rank - 3 (0 when rank < 3)."""
    axis = int(node.attr("axis"))
    return np.concatenate(inputs, axis=axis)


@register("PADDING", "IPaddingLayer", ("pre_padding_nd", "post_padding_nd"), family="data", flops=costs.free)
def padding(node, inputs):
    """Zero-pad the last two axes: pre_padding_nd before, post_padding_nd after; negative amounts crop.

    Output length per padded axis: I + pre + post.
    """
    before = list(node.dims("pre_padding_nd"))
    after = list(node.dims("post_padding_nd"))
    return np.ascontiguousarray(pad(inputs[0], before, after, 0))


@register("IDENTITY", "IIdentityLayer", family="data", flops=costs.free)
def identity(node, inputs):
    """y = x (same shape and, in strongly typed networks, same type; otherwise converted as a cast)."""
    return convert(inputs[0], node.output_dtypes[0])


@register(
    "CAST",
    "ICastLayer",
    ("to_type",),
    family="data",
    flops=costs.free,
    detail=lambda layer: f"to {costs.enum_text(layer.to_type)}",
)
def cast(node, inputs):
    """Convert to ``to_type``, same shape.

    To floats: round to nearest even (FP8 saturates to +-448). Float to integer: truncate toward
    zero, saturate to the integer range, NaN -> 0. Integer narrowing saturates. To bool: x != 0;
    from bool: 0 or 1.
    """
    return convert(inputs[0], numpy_dtype(node.attr("to_type")))


def _constant_array(node) -> np.ndarray:
    values = node.weights("weights").reshape(tuple(node.dims("shape")))
    values.flags.writeable = False
    return values


@register(
    "CONSTANT",
    "IConstantLayer",
    ("shape", "weights"),
    family="constant",
    flops=costs.free,
    detail=lambda layer: costs.dims_text(layer.shape),
    weights=costs.weight_count("weights"),
)
def constant(node, inputs):
    """The layer's weights with dimensions ``shape``; the output type is the weights' type."""
    return node.memo("constant", lambda: _constant_array(node))


@register("SHAPE", "IShapeLayer", family="data", flops=costs.free)
def shape(node, inputs):
    """The input's dimensions as a 1-D int64 tensor of length rank."""
    return np.asarray(inputs[0].shape, dtype=np.int64)


def _axes(tensor: np.ndarray, rank: int) -> tuple[int, ...]:
    return tuple(int(a) % rank for a in np.asarray(tensor).reshape(-1))


@register("SQUEEZE", "ISqueezeLayer", family="data", flops=costs.free)
def squeeze(node, inputs):
    """Remove the length-1 axes listed in input 1 (negative axes count from the end)."""
    x = inputs[0]
    return np.squeeze(x, axis=_axes(inputs[1], x.ndim))


@register("UNSQUEEZE", "IUnsqueezeLayer", family="data", flops=costs.free)
def unsqueeze(node, inputs):
    """Insert length-1 axes at the output positions listed in input 1 (negative: from the output's end)."""
    x = inputs[0]
    axes = np.asarray(inputs[1]).reshape(-1)
    return np.expand_dims(x, axis=_axes(axes, x.ndim + axes.size))


@register("REVERSE_SEQUENCE", "IReverseSequenceLayer", ("batch_axis", "sequence_axis"), family="data", flops=costs.free)
def reverse_sequence(node, inputs):
    """Per batch entry b, reverse the first sequence_lens[b] elements along ``sequence_axis`` (ONNX ReverseSequence).

    y[b, t] = x[b, L_b - 1 - t] for t < L_b and x[b, t] otherwise (written for batch axis 0 and sequence
    axis 1; any two distinct axes work). Same shape as the input.
    """
    x, lengths = inputs[0], np.asarray(inputs[1]).reshape(-1)
    batch_axis, sequence_axis = int(node.attr("batch_axis")), int(node.attr("sequence_axis"))
    moved = np.moveaxis(x, (batch_axis, sequence_axis), (0, 1))
    out = moved.copy()
    for b, length in enumerate(lengths):
        length = int(length)
        out[b, :length] = moved[b, :length][::-1]
    return np.ascontiguousarray(np.moveaxis(out, (0, 1), (batch_axis, sequence_axis)))

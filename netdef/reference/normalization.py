"""Normalization (layer, instance and group norm) and the scale layer."""

from __future__ import annotations

import numpy as np

from netdef.backend import trt
from netdef.reference import costs
from netdef.reference.dtypes import FLOAT32, compute
from netdef.reference.readback import bits
from netdef.reference.registry import register


@register(
    "NORMALIZATION",
    "INormalizationLayer",
    ("axes", "epsilon", "num_groups", "is_v2"),
    family="normalization",
    flops=costs.per_output(5),
)
def normalization(node, inputs):
    """y = (x - mean) / sqrt(var + epsilon) * scale + bias, mean/var over the ``axes`` bitmask (float32).

    var is the population variance mean((x - mean)^2). With num_groups G > 1 the channel axis 1
    is split into G groups and the statistics also run over the channels of each group (axes
    should then be all axes after the channel axis). scale and bias (inputs 1, 2) have the input's
    rank and broadcast to it; for the original (v1) layer with G > 1 they are [1, G, 1, ...]
    (one value per group), for addNormalizationV2 [1, C, 1, ...]. Same shape as the input.
    """
    x = compute(inputs[0])
    scale, bias = compute(inputs[1]), compute(inputs[2])
    groups = int(node.attr("num_groups"))
    epsilon = np.float32(node.attr("epsilon"))
    axes = bits(node.attr("axes"), x.ndim)
    if groups > 1:
        channels = x.shape[1]
        grouped = x.reshape((x.shape[0], groups, channels // groups) + x.shape[2:])
        group_axes = (2,) + tuple(a + 1 for a in axes if a >= 2)
        normed = _normalize(grouped, group_axes, epsilon).reshape(x.shape)
        if scale.ndim > 1 and scale.shape[1] == groups != channels:
            scale = np.repeat(scale, channels // groups, axis=1)
            bias = np.repeat(bias, channels // groups, axis=1)
    else:
        normed = _normalize(x, axes, epsilon)
    return normed * scale + bias


def _normalize(x: np.ndarray, axes: tuple[int, ...], epsilon: np.float32) -> np.ndarray:
    mean = np.mean(x, axis=axes, keepdims=True, dtype=FLOAT32)
    centered = x - mean
    variance = np.mean(np.square(centered), axis=axes, keepdims=True, dtype=FLOAT32)
    return centered / np.sqrt(variance + epsilon)


def _coefficients(node, name: str, x: np.ndarray, mode, axis: int):
    """A scale-layer weight broadcastable to x, or None when it is empty (its default applies)."""
    values = node.weights(name)
    if values.size == 0:
        return None
    values = compute(values)
    if mode == trt.ScaleMode.UNIFORM:
        return values.reshape(())
    if mode == trt.ScaleMode.CHANNEL:
        return values.reshape((-1,) + (1,) * (x.ndim - axis - 1))
    return values.reshape(x.shape[axis:])


def _scale_flops(layer) -> int | None:
    """One per element for each of scale, shift and power that is present."""
    n = costs.numel(costs.output_shape(layer))
    present = sum(1 for w in (layer.scale, layer.shift, layer.power) if w is not None and w.size > 0)
    return None if n is None else n * present


@register(
    "SCALE",
    "IScaleLayer",
    ("mode", "channel_axis", "shift", "scale", "power"),
    family="normalization",
    flops=_scale_flops,
    detail=lambda layer: f"{costs.enum_text(layer.mode)} scale, axis {layer.channel_axis}",
    weights=costs.weight_count("scale", "shift", "power"),
)
def scale(node, inputs):
    """y = (x * scale + shift) ^ power, with coefficients per tensor, per channel, or per element.

    UNIFORM: one value each; CHANNEL: one per index of channel_axis; ELEMENTWISE: one per index of
    (channel_axis, and every axis after it). Empty weights default to scale 1, shift 0, power 1.
    Same shape as the input; floating types compute in float32.
    """
    x = compute(inputs[0])
    mode = node.attr("mode")
    axis = int(node.attr("channel_axis"))
    factor, shift, power = (_coefficients(node, name, x, mode, axis) for name in ("scale", "shift", "power"))
    y = x
    if factor is not None:
        y = y * factor
    if shift is not None:
        y = y + shift
    if power is not None:
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            y = np.power(y, power)
    return x.copy() if y is x else y


def _lrn_flops(layer) -> int | None:
    """A square and a window sum per element, then the scale, add, power and divide."""
    n = costs.numel(costs.output_shape(layer))
    return None if n is None else n * (int(layer.window_size) + 5)


@register("LRN", "ILRNLayer", ("window_size", "alpha", "beta", "k"), family="normalization", flops=_lrn_flops)
def lrn(node, inputs):
    """Local response normalization across channels: y = x / (k + alpha / n * sum_{c' near c} x[c']^2) ^ beta.

    ONNX's LRN with size = n = window_size, bias = k: the sum runs over channels
    c - floor((n - 1) / 2) .. c + ceil((n - 1) / 2) of axis 1 (clipped to the valid channels). TensorRT's
    ONNX parser maps ONNX LRN onto this layer argument for argument, which settles the ambiguity of
    TensorRT's operator page. Computed in float32; same shape as the input.
    """
    x = compute(inputs[0])
    size = int(node.attr("window_size"))
    alpha, beta, k = (np.float32(node.attr(name)) for name in ("alpha", "beta", "k"))
    before, after = (size - 1) // 2, size - 1 - (size - 1) // 2
    squared = np.square(x)
    padded = np.pad(squared, [(0, 0), (before, after)] + [(0, 0)] * (x.ndim - 2))
    window = np.cumsum(padded, axis=1, dtype=FLOAT32)
    window = np.concatenate([np.zeros_like(window[:, :1]), window], axis=1)
    channels = x.shape[1]
    sums = window[:, size : size + channels] - window[:, :channels]
    return x / np.power(k + alpha / np.float32(size) * sums, beta)


@register("RAGGED_SOFTMAX", "IRaggedSoftMaxLayer", family="softmax", flops=costs.per_output(3))
def ragged_softmax(node, inputs):
    """Softmax over the first bounds[z] elements of each row z of the last axis; the elements past it are 0.

    Input [N, Z, S], bounds (int32) [N, Z, 1]; same shape as the input, computed in float32. A row with
    bound 0 is all zeros.
    """
    x = compute(inputs[0])
    bounds = np.asarray(inputs[1]).astype(np.int64)
    inside = np.arange(x.shape[-1]) < bounds
    masked = np.where(inside, x, -np.inf)
    peak = np.max(masked, axis=-1, keepdims=True)
    shifted = np.where(inside, np.exp(masked - np.where(np.isfinite(peak), peak, 0)), 0)
    total = np.sum(shifted, axis=-1, keepdims=True)
    return np.divide(shifted, total, out=np.zeros_like(shifted), where=total > 0)

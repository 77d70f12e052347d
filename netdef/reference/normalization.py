"""Normalization (layer, instance and group norm) and the scale layer."""

from __future__ import annotations

import numpy as np

from netdef.backend import trt
from netdef.reference.dtypes import FLOAT32, compute
from netdef.reference.readback import bits
from netdef.reference.registry import register


@register("NORMALIZATION", "INormalizationLayer", ("axes", "epsilon", "num_groups", "is_v2"))
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


@register("SCALE", "IScaleLayer", ("mode", "channel_axis", "shift", "scale", "power"))
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

"""Quantize and dequantize (per tensor, per channel, per block)."""

from __future__ import annotations

import numpy as np

from netdef.reference.dtypes import FLOAT32, FP8_MAX, compute, integer_range, is_float, numpy_dtype
from netdef.reference.node import Unsupported
from netdef.reference.registry import register


def _broadcast(coefficients: np.ndarray, x: np.ndarray, axis: int) -> np.ndarray:
    """Scale or zero point laid out to broadcast against x: scalar, per ``axis``, or per block."""
    c = compute(np.asarray(coefficients))
    if c.size == 1:
        return c.reshape(())
    if c.ndim == x.ndim:  # block quantization: repeat each coefficient over its block
        for a in range(x.ndim):
            if c.shape[a] != x.shape[a]:
                c = np.repeat(c, x.shape[a] // c.shape[a], axis=a)
        return c
    if c.ndim == 1:
        if axis < 0:
            raise Unsupported(f"{c.size} scale coefficients but the quantization axis is {axis}")
        return c.reshape((-1,) + (1,) * (x.ndim - axis - 1))
    raise Unsupported(f"scale of shape {c.shape} for an input of shape {x.shape}")


def _zero_point(inputs, x, axis):
    if len(inputs) > 2 and inputs[2] is not None:
        return _broadcast(inputs[2], x, axis)
    return None


@register("QUANTIZE", "IQuantizeLayer", ("axis", "to_type"))
def quantize(node, inputs):
    """q = clamp(round(x / scale) + zero_point), round half to even, to ``to_type``.

    Ranges: INT8 [-128, 127], INT4 [-8, 7]; FP8 (e4m3) clamps x / scale to [-448, 448] and rounds
    to the nearest FP8 value. scale (input 1) is a scalar (per tensor), a 1-D tensor along
    ``axis`` (per channel), or has the input's rank (per block, each coefficient repeated over its
    block). zero_point (input 2, optional) has the same layout. Computed in float32.
    """
    x = compute(inputs[0])
    axis = int(node.attr("axis"))
    target = numpy_dtype(node.attr("to_type"))
    scaled = x / _broadcast(inputs[1], x, axis)
    zero = _zero_point(inputs, x, axis)
    if is_float(target):
        if target.itemsize != 1 or "e4m3" not in target.name:
            raise Unsupported(f"quantizing to {target}")
        if zero is not None:
            scaled = scaled + zero
        return np.clip(scaled, -FP8_MAX, FP8_MAX).astype(target)
    rounded = np.rint(scaled)
    if zero is not None:
        rounded = rounded + zero
    low, high = integer_range(target)
    return np.clip(rounded, low, high).astype(np.int64).astype(target)


@register("DEQUANTIZE", "IDequantizeLayer", ("axis", "to_type"))
def dequantize(node, inputs):
    """y = (q - zero_point) * scale, computed in float32 and rounded to ``to_type`` (FLOAT, HALF or BF16).

    scale and zero_point are laid out as for quantize: scalar, 1-D along ``axis``, or per block.
    """
    q = inputs[0].astype(FLOAT32)
    axis = int(node.attr("axis"))
    zero = _zero_point(inputs, q, axis)
    if zero is not None:
        q = q - zero
    return q * _broadcast(inputs[1], q, axis)

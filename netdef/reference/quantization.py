"""Quantize and dequantize (per tensor, per channel, per block)."""

from __future__ import annotations

import numpy as np

from netdef.reference import costs
from netdef.reference.dtypes import FLOAT32, FP8_MAX, compute, integer_range, is_float, numpy_dtype
from netdef.reference.node import Unsupported
from netdef.reference.registry import register

FP4_MAX = 6.0
"""Largest float4 e2m1 value; quantizing to FP4 saturates to [-6, 6]."""
_FLOAT_LIMITS = {"float8_e4m3fn": FP8_MAX, "float4_e2m1fn": FP4_MAX}


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


@register("QUANTIZE", "IQuantizeLayer", ("axis", "to_type"), family="quantization", flops=costs.per_output(1))
def quantize(node, inputs):
    """q = clamp(round(x / scale) + zero_point), round half to even, to ``to_type``.

    Ranges: INT8 [-128, 127], INT4 [-8, 7]; FP8 (e4m3) clamps x / scale to [-448, 448] and FP4 (e2m1)
    to [-6, 6], then rounds to the nearest representable value (ties to even). scale (input 1) is a
    scalar (per tensor), a 1-D tensor along ``axis`` (per channel), or has the input's rank (per block,
    each coefficient repeated over its block). zero_point (input 2, optional) has the same layout. Computed in float32.
    """
    x = compute(inputs[0])
    axis = int(node.attr("axis"))
    target = numpy_dtype(node.attr("to_type"))
    scaled = x / _broadcast(inputs[1], x, axis)
    zero = _zero_point(inputs, x, axis)
    if is_float(target):
        limit = _FLOAT_LIMITS.get(target.name)
        if limit is None:
            raise Unsupported(f"quantizing to {target}")
        if zero is not None:
            scaled = scaled + zero
        return np.clip(scaled, -limit, limit).astype(target)
    rounded = np.rint(scaled)
    if zero is not None:
        rounded = rounded + zero
    low, high = integer_range(target)
    return np.clip(rounded, low, high).astype(np.int64).astype(target)


@register("DEQUANTIZE", "IDequantizeLayer", ("axis", "to_type"), family="quantization", flops=costs.per_output(1))
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


def _blocks(x: np.ndarray, block: tuple[int, ...]) -> np.ndarray:
    """x viewed as [b0, k0, b1, k1, ...]: axis i split into x.shape[i] / block[i] blocks of block[i]."""
    for length, size in zip(x.shape, block, strict=True):
        if length % size:
            raise Unsupported(f"axis of length {length} is not divisible by the block size {size}")
    split = [d for length, size in zip(x.shape, block, strict=True) for d in (length // size, size)]
    return x.reshape(split)


def _dynamic_block_shape(node, rank: int) -> tuple[int, ...]:
    shape = node.dims("block_shape")
    if shape is not None and len(shape) == rank:
        return tuple(int(d) for d in shape)
    block = [1] * rank
    block[int(node.attr("axis")) % rank] = int(node.attr("block_size"))
    return tuple(block)


def _params_dynamic(layer) -> dict:
    params = {"to_type": layer.to_type, "scale_type": layer.scale_type}
    try:
        params["block_shape"] = layer.block_shape
    except RuntimeError:
        params.update(axis=layer.axis, block_size=layer.block_size)
    return params


@register("DYNAMIC_QUANTIZE", "IDynamicQuantizeLayer", _params_dynamic, family="quantization", flops=costs.per_input(3))
def dynamic_quantize(node, inputs):
    """Block quantization with scales computed from the data: outputs (q, block scales).

    Per block (``block_size`` elements along ``axis``, or ``block_shape``), with amax = max |x|:
    - NVFP4 (to FP4, FP8 scales, input 1 the global scale g): s = fp8(amax / 6 / g) rounded to
      nearest, q = fp4(x / (s * g)) (0 where s = 0). The stored scale s dequantizes as s * g.
    - MXFP8 (to FP8, E8M0 scales): s = 2^ceil(log2(amax / 448)), the smallest power of two that
      keeps the block in range, q = fp8(x / s).
    Rounding to FP4/FP8 is to nearest even, saturating. Scales have the input's shape divided by the block.
    """
    x = compute(inputs[0])
    target, scale_type = node.output_dtypes
    block = _dynamic_block_shape(node, x.ndim)
    blocked = _blocks(x, block)
    block_axes = tuple(range(1, blocked.ndim, 2))
    amax = np.max(np.abs(blocked), axis=block_axes, keepdims=True)
    if target.name == "float4_e2m1fn":
        if len(inputs) < 2 or inputs[1] is None:
            raise Unsupported("NVFP4 dynamic quantization needs the global scale (input 1)")
        global_scale = compute(np.asarray(inputs[1])).reshape(())
        stored = np.clip(amax / FP4_MAX / global_scale, -FP8_MAX, FP8_MAX).astype(scale_type)
        step = compute(stored) * global_scale
        limit = FP4_MAX
    elif target.name == "float8_e4m3fn":
        exponent = np.ceil(np.log2(np.maximum(amax, np.finfo(FLOAT32).tiny) / FP8_MAX))
        step = np.exp2(exponent).astype(FLOAT32)
        stored = step.astype(scale_type)
        limit = FP8_MAX
    else:
        raise Unsupported(f"dynamic quantization to {target}")
    with np.errstate(divide="ignore", invalid="ignore"):
        scaled = np.where(step > 0, blocked / step, 0)
    q = np.clip(scaled, -limit, limit).astype(target).reshape(x.shape)
    scales_shape = tuple(length // size for length, size in zip(x.shape, block, strict=True))
    return [q, stored.reshape(scales_shape)]

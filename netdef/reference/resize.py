"""The resize layer: nearest, linear and cubic interpolation, one axis at a time."""

from __future__ import annotations

import numpy as np

from netdef.backend import trt
from netdef.reference import costs
from netdef.reference.dtypes import FLOAT32, compute
from netdef.reference.node import Unsupported
from netdef.reference.registry import register

_MODES = trt.InterpolationMode
_TRANSFORM = trt.ResizeCoordinateTransformation
_ROUND = trt.ResizeRoundMode


def resize_target(node, inputs, shape: tuple[int, ...]) -> tuple[tuple[int, ...], tuple[float, ...] | None]:
    """Output shape and, when the layer was given scales, the scales."""
    if len(inputs) > 1 and inputs[1] is not None:
        return tuple(int(v) for v in np.asarray(inputs[1]).reshape(-1)), None
    out = node.dims("shape")
    if out is not None:
        return out, None
    scales = tuple(float(s) for s in node.attr("scales"))
    out = tuple(int(np.floor(FLOAT32.type(n) * FLOAT32.type(s))) for n, s in zip(shape, scales, strict=True))
    return out, scales


def source_coordinates(out_len: int, in_len: int, scale: float | None, transform, selector) -> np.ndarray:
    """Input coordinate (float32) of each output index along one axis.

    ALIGN_CORNERS: o * (in - 1) / (out - 1); ASYMMETRIC: o * r; HALF_PIXEL: (o + 0.5) * r - 0.5,
    with r = 1 / scale when scales were given, else in / out. A single output element maps to 0
    under ResizeSelector.UPPER.
    """
    o = np.arange(out_len, dtype=FLOAT32)
    if out_len == 1 and selector == trt.ResizeSelector.UPPER:
        return np.zeros(1, FLOAT32)
    if transform == _TRANSFORM.ALIGN_CORNERS:
        ratio = FLOAT32.type((in_len - 1) / (out_len - 1)) if out_len > 1 else FLOAT32.type(0)
        return o * ratio
    ratio = FLOAT32.type(1 / FLOAT32.type(scale)) if scale else FLOAT32.type(in_len / out_len)
    if transform == _TRANSFORM.ASYMMETRIC:
        return o * ratio
    return (o + FLOAT32.type(0.5)) * ratio - FLOAT32.type(0.5)


def _nearest(x, axis, coords, rounding):
    n = x.shape[axis]
    if rounding == _ROUND.FLOOR:
        index = np.floor(coords)
    elif rounding == _ROUND.CEIL:
        index = np.ceil(coords)
    elif rounding == _ROUND.HALF_UP:
        index = np.floor(coords + FLOAT32.type(0.5))
    else:  # HALF_DOWN
        index = np.ceil(coords - FLOAT32.type(0.5))
    return np.take(x, np.clip(index.astype(np.int64), 0, n - 1), axis=axis)


def _weighted(x, axis, taps: list[tuple[np.ndarray, np.ndarray]]):
    """sum_j weight_j * x[index_j] along ``axis``; weights broadcast over the other axes."""
    shape = [1] * x.ndim
    shape[axis] = -1
    out = None
    for index, weight in taps:
        term = np.take(x, index, axis=axis) * weight.reshape(shape)
        out = term if out is None else out + term
    return out


def _linear(x, axis, coords):
    n = x.shape[axis]
    low = np.floor(coords)
    frac = (coords - low).astype(FLOAT32)
    low = low.astype(np.int64)
    return _weighted(
        x,
        axis,
        [
            (np.clip(low, 0, n - 1), 1 - frac),
            (np.clip(low + 1, 0, n - 1), frac),
        ],
    )


def _cubic_weight(t: np.ndarray, a: np.float32) -> np.ndarray:
    t = np.abs(t)
    near = ((a + 2) * t - (a + 3)) * t * t + 1
    far = ((a * t - 5 * a) * t + 8 * a) * t - 4 * a
    return np.where(t <= 1, near, np.where(t < 2, far, FLOAT32.type(0))).astype(FLOAT32)


def _cubic(x, axis, coords, a, exclude_outside):
    n = x.shape[axis]
    low = np.floor(coords)
    frac = (coords - low).astype(FLOAT32)
    low = low.astype(np.int64)
    indices = [low + k for k in (-1, 0, 1, 2)]
    weights = [_cubic_weight(frac - k, a) for k in (-1, 0, 1, 2)]
    if exclude_outside:
        weights = [np.where((i >= 0) & (i < n), w, 0).astype(FLOAT32) for i, w in zip(indices, weights, strict=True)]
        total = sum(weights)
        weights = [w / total for w in weights]
    return _weighted(x, axis, [(np.clip(i, 0, n - 1), w) for i, w in zip(indices, weights, strict=True)])


def _describe(layer) -> dict:
    params = {
        name: getattr(layer, name)
        for name in (
            "resize_mode",
            "coordinate_transformation",
            "selector_for_single_pixel",
            "nearest_rounding",
            "cubic_coeff",
            "exclude_outside",
        )
    }
    if layer.num_inputs > 1 and layer.get_input(1) is not None:
        params["shape"] = "input 1"
    elif layer.shape is not None:
        params["shape"] = tuple(layer.shape)
    else:
        params["scales"] = tuple(layer.scales)
    return params


def _flops(layer) -> int | None:
    """2 per tap per output element: 2^r taps (LINEAR) or 4^r (CUBIC) over r resized axes; NEAREST copies."""
    inp, out = costs.input_shape(layer), costs.output_shape(layer)
    if inp is None or out is None:
        return None
    resized = sum(1 for i, o in zip(inp, out, strict=False) if i != o)
    taps = {_MODES.NEAREST: 0, _MODES.LINEAR: 2**resized, _MODES.CUBIC: 4**resized}.get(layer.resize_mode)
    return None if taps is None else 2 * taps * (costs.numel(out) or 0)


@register("RESIZE", "IResizeLayer", _describe, family="sampling", flops=_flops)
def resize(node, inputs):
    """Resample each axis to the output shape by nearest, linear or cubic interpolation.

    Output shape: ``shape``, input 1, or floor(I * scale) per axis. Output index o maps to input
    coordinate c by ``coordinate_transformation``: ALIGN_CORNERS o * (I - 1) / (O - 1), ASYMMETRIC
    o * r, HALF_PIXEL (o + 0.5) * r - 0.5, where r = 1 / scale (scales given) or I / O; a length-1
    output maps to 0 with selector UPPER. NEAREST picks x[round(c)] with ``nearest_rounding``
    (FLOOR, CEIL, HALF_UP, HALF_DOWN), clamped to [0, I - 1]. LINEAR weighs x[floor(c)] and
    x[floor(c) + 1] by 1 - t and t (t = c - floor(c), indices clamped). CUBIC weighs the 4
    neighbours by Keys' kernel with coefficient A = cubic_coeff (indices clamped; with
    exclude_outside, outside taps get weight 0 and the rest are renormalised). Axes are resampled
    one after another, in float32.
    """
    x = inputs[0]
    out_shape, scales = resize_target(node, inputs, x.shape)
    mode = node.attr("resize_mode")
    transform = node.attr("coordinate_transformation")
    selector = node.attr("selector_for_single_pixel")
    y = x if mode == _MODES.NEAREST else compute(x)
    for axis, (in_len, out_len) in enumerate(zip(x.shape, out_shape, strict=True)):
        scale = scales[axis] if scales else None
        if in_len == out_len and (scale is None or scale == 1):
            continue
        coords = source_coordinates(out_len, in_len, scale, transform, selector)
        if mode == _MODES.NEAREST:
            y = _nearest(y, axis, coords, node.attr("nearest_rounding"))
        elif mode == _MODES.LINEAR:
            y = _linear(y, axis, coords)
        elif mode == _MODES.CUBIC:
            a = FLOAT32.type(node.attr("cubic_coeff"))
            y = _cubic(y, axis, coords, a, bool(node.attr("exclude_outside")))
        else:
            raise Unsupported(f"resize mode {mode.name}")
    return np.ascontiguousarray(y)

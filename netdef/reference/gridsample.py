"""Grid sampling (spatial transformers): read an input at the normalized coordinates of a grid."""

from __future__ import annotations

import itertools

import numpy as np

from netdef.backend import trt
from netdef.reference import costs
from netdef.reference.dtypes import FLOAT32, compute
from netdef.reference.node import Unsupported
from netdef.reference.registry import register

_MODES = trt.InterpolationMode
_SAMPLE = trt.SampleMode
_CUBIC_A = FLOAT32.type(-0.75)


def _unnormalize(coord: np.ndarray, size: int, align_corners: bool) -> np.ndarray:
    """[-1, 1] -> pixel coordinates: -1 and 1 are the corner pixels' centres (align_corners) or outer edges."""
    if align_corners:
        return (coord + 1) / 2 * (size - 1)
    return ((coord + 1) * size - 1) / 2


def _reflect(coord: np.ndarray, size: int, align_corners: bool) -> np.ndarray:
    """Mirror coordinates into range: about the corner pixels' centres (align_corners) or their edges."""
    low, high = (0.0, 2.0 * (size - 1)) if align_corners else (-1.0, 2.0 * size - 1)
    if low == high:
        return np.zeros_like(coord)
    start, span = low / 2, (high - low) / 2
    distance = np.abs(coord - start)
    extra = np.fmod(distance, span)
    flips = np.floor(distance / span)
    return np.where(flips % 2 == 0, extra + start, span - extra + start).astype(coord.dtype)


def _source(coord, size, align_corners, mode):
    """Pixel coordinates after the sample mode: CLAMP clips to the border, REFLECT mirrors (then clips)."""
    coord = _unnormalize(coord, size, align_corners)
    if mode == _SAMPLE.CLAMP:
        return np.clip(coord, 0, size - 1)
    if mode == _SAMPLE.REFLECT:
        return np.clip(_reflect(coord, size, align_corners), 0, size - 1)
    return coord


def _tap(x, batch, index, mode, align_corners):
    """x[n, :, i0, i1, ...] at integer taps, as [N, *grid, C]; taps outside are 0 (FILL) or clipped/mirrored."""
    spatial = x.shape[2:]
    inside = np.ones(index[0].shape, bool)
    fixed = []
    for i, size in zip(index, spatial, strict=True):
        if mode == _SAMPLE.FILL:
            inside &= (i >= 0) & (i < size)
        elif mode == _SAMPLE.REFLECT:
            i = np.clip(_reflect(i.astype(FLOAT32), size, align_corners), 0, size - 1).astype(np.int64)
        fixed.append(np.clip(i, 0, size - 1))
    values = np.moveaxis(x, 1, -1)[tuple([batch, *fixed])]
    return np.where(inside[..., None], values, 0).astype(FLOAT32)


def _cubic_weights(t: np.ndarray) -> list[np.ndarray]:
    """Keys' cubic convolution weights (A = -0.75) of the 4 taps at offsets -1, 0, 1, 2 from floor."""

    def near(d):
        return ((_CUBIC_A + 2) * d - (_CUBIC_A + 3)) * d * d + 1

    def far(d):
        return ((_CUBIC_A * d - 5 * _CUBIC_A) * d + 8 * _CUBIC_A) * d - 4 * _CUBIC_A

    return [far(t + 1), near(t), near(1 - t), far(2 - t)]


def _flops(layer) -> int | None:
    """2 per tap per output element: 1 tap (NEAREST), 2^d (LINEAR) or 16 (CUBIC) for d spatial axes."""
    out = costs.output_shape(layer)
    if out is None:
        return None
    taps = {_MODES.NEAREST: 1, _MODES.LINEAR: 2 ** (len(out) - 2), _MODES.CUBIC: 16}[layer.interpolation_mode]
    return 2 * taps * (costs.numel(out) or 0)


@register(
    "GRID_SAMPLE",
    "IGridSampleLayer",
    ("interpolation_mode", "align_corners", "sample_mode"),
    family="sampling",
    flops=_flops,
)
def grid_sample(node, inputs):
    """y[n, c, p] = x[n, c] sampled at the normalized coordinates grid[n, p] (PyTorch's grid_sample).

    Input [N, C, H, W] (or [N, C, D, H, W]); grid [N, Ho, Wo, 2] holding (x, y) in [-1, 1] (or
    [N, Do, Ho, Wo, 3] holding (x, y, z)); output [N, C, Ho, Wo]. A coordinate u maps to the pixel
    coordinate (u + 1) / 2 * (W - 1) with ``align_corners``, else ((u + 1) W - 1) / 2. NEAREST rounds
    half to even; LINEAR weighs the 2^d neighbours; CUBIC the 4x4 neighbours by Keys' kernel with
    A = -0.75 (2-D only). Sample modes: FILL reads 0 outside; CLAMP clips coordinates to the border;
    REFLECT mirrors them about the border (pixel centres with align_corners, edges otherwise). For
    CUBIC the mode applies to each tap, as PyTorch does. Computed in float32.
    """
    x, grid = compute(inputs[0]), compute(inputs[1])
    align = bool(node.attr("align_corners"))
    interpolation, mode = node.attr("interpolation_mode"), node.attr("sample_mode")
    if mode not in (_SAMPLE.FILL, _SAMPLE.CLAMP, _SAMPLE.REFLECT):
        raise Unsupported(f"grid sample mode {mode.name} (TensorRT allows FILL, CLAMP and REFLECT)")
    spatial = x.shape[2:]
    dims = len(spatial)
    batch = np.arange(x.shape[0]).reshape((-1,) + (1,) * dims)
    # grid's last axis lists coordinates fastest axis first: (x -> W, y -> H, z -> D)
    raw = [grid[..., dims - 1 - a] for a in range(dims)]
    if interpolation == _MODES.CUBIC:
        if dims != 2:
            raise Unsupported("CUBIC grid sampling of a volume (PyTorch and TensorRT define it for 2-D only)")
        coords = [_unnormalize(c, s, align) for c, s in zip(raw, spatial, strict=True)]
        floors = [np.floor(c) for c in coords]
        weights = [_cubic_weights((c - f).astype(FLOAT32)) for c, f in zip(coords, floors, strict=True)]
        out = 0
        for (i, wy), (j, wx) in itertools.product(enumerate(weights[0]), enumerate(weights[1])):
            index = [floors[0].astype(np.int64) + i - 1, floors[1].astype(np.int64) + j - 1]
            out = out + _tap(x, batch, index, mode, align) * (wy * wx)[..., None]
    else:
        coords = [_source(c, s, align, mode) for c, s in zip(raw, spatial, strict=True)]
        if interpolation == _MODES.NEAREST:
            out = _tap(x, batch, [np.rint(c).astype(np.int64) for c in coords], mode, align)
        elif interpolation == _MODES.LINEAR:
            floors = [np.floor(c) for c in coords]
            fractions = [(c - f).astype(FLOAT32) for c, f in zip(coords, floors, strict=True)]
            out = 0
            for corner in itertools.product((0, 1), repeat=dims):
                weight = np.ones_like(fractions[0])
                for bit, fraction in zip(corner, fractions, strict=True):
                    weight = weight * (fraction if bit else 1 - fraction)
                index = [f.astype(np.int64) + bit for f, bit in zip(floors, corner, strict=True)]
                out = out + _tap(x, batch, index, mode, align) * weight[..., None]
        else:
            raise Unsupported(f"grid sample interpolation {interpolation.name}")
    return np.ascontiguousarray(np.moveaxis(np.asarray(out, FLOAT32), -1, 1))

"""Sliding-window geometry shared by convolution, deconvolution and pooling.

Shorthand (TensorRT's ``PaddingMode`` documentation): I input length, B pre-padding, A post-padding,
S stride, DK = 1 + D * (F - 1) the dilated window, M = I + B + A.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from netdef.backend import trt


@dataclass(frozen=True)
class AxisWindow:
    """Where the windows of one spatial axis fall.

    ``pre``/``post`` are the padding that counts as "padded input"; ``extra`` is the further zero
    padding past ``post`` that EXPLICIT_ROUND_UP's last window may reach; ``out`` the output length.
    """

    pre: int
    post: int
    extra: int
    out: int


def forward_window(mode, size: int, window: int, stride: int, pre: int, post: int) -> AxisWindow:
    """Output length and padding of a convolution or pooling axis under ``PaddingMode`` ``mode``.

    - EXPLICIT_ROUND_DOWN: O = floor((M - DK) / S) + 1
    - EXPLICIT_ROUND_UP:   O = ceil((M - DK) / S) + 1
    - SAME_UPPER / SAME_LOWER: O = ceil(I / S), P = floor((I - 1) / S) * S + DK - I (at least 0),
      the smaller half floor(P / 2) goes before (UPPER) or after (LOWER) the data; explicit padding
      is ignored.
    """
    if mode in (trt.PaddingMode.SAME_UPPER, trt.PaddingMode.SAME_LOWER):
        out = -(-size // stride)
        total = max((size - 1) // stride * stride + window - size, 0)
        small = total // 2
        pre, post = (small, total - small) if mode == trt.PaddingMode.SAME_UPPER else (total - small, small)
    else:
        span = size + pre + post - window
        if mode == trt.PaddingMode.EXPLICIT_ROUND_UP:
            out = -(-span // stride) + 1
        else:
            out = span // stride + 1
    extra = max(0, (out - 1) * stride + window - (size + pre + post))
    return AxisWindow(pre, post, extra, out)


def deconv_window(mode, size: int, window: int, stride: int, pre: int, post: int) -> AxisWindow:
    """Output length and cropping of a deconvolution axis.

    The full transposed output has length (I - 1) * S + DK; B elements are cropped from its start
    and A from its end: O = (I - 1) * S + DK - (B + A) for both EXPLICIT modes. SAME modes use
    P = max(DK - S, 0) split as for convolution, giving O = min(I * S, (I - 1) * S + DK).
    """
    if mode in (trt.PaddingMode.SAME_UPPER, trt.PaddingMode.SAME_LOWER):
        total = max(window - stride, 0)
        small = total // 2
        pre, post = (small, total - small) if mode == trt.PaddingMode.SAME_UPPER else (total - small, small)
    full = (size - 1) * stride + window
    return AxisWindow(pre, post, 0, full - pre - post)


def pad(x: np.ndarray, before: list[int], after: list[int], value: float = 0.0) -> np.ndarray:
    """Pad (or, for negative amounts, crop) the trailing ``len(before)`` axes of ``x``."""
    lead = x.ndim - len(before)
    if all(b == 0 for b in before) and all(a == 0 for a in after):
        return x
    crop = tuple(
        [slice(None)] * lead
        + [
            slice(max(-b, 0), x.shape[lead + i] - max(-a, 0))
            for i, (b, a) in enumerate(zip(before, after, strict=True))
        ]
    )
    x = x[crop]
    widths = [(0, 0)] * lead + [(max(b, 0), max(a, 0)) for b, a in zip(before, after, strict=True)]
    if any(w != (0, 0) for w in widths):
        x = np.pad(x, widths, constant_values=value)
    return x


def strided_slices(
    x: np.ndarray,
    window: tuple[int, ...],
    stride: tuple[int, ...],
    dilation: tuple[int, ...],
    out: tuple[int, ...],
):
    """For each window offset, the (offset, view) of ``x``'s trailing axes sampled at that offset.

    ``view[..., o0, o1, ...] == x[..., o0 * s0 + k0 * d0, o1 * s1 + k1 * d1, ...]`` for offset ``k``.
    """
    lead = (slice(None),) * (x.ndim - len(window))
    for offset in itertools.product(*(range(k) for k in window)):
        index = tuple(
            slice(k * d, k * d + (n - 1) * s + 1, s) for k, d, n, s in zip(offset, dilation, out, stride, strict=True)
        )
        yield offset, x[lead + index]

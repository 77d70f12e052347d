"""Grid sampling vs PyTorch's grid_sample (and ONNX GridSample for volumes); LRN vs ONNX LRN and PyTorch."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st
from onnx_oracle import onnx_op
from refhelpers import FEW, Net, close, rand, t

from netdef.backend import trt

_INTERPOLATION = {"nearest": trt.InterpolationMode.NEAREST, "bilinear": trt.InterpolationMode.LINEAR,
                  "bicubic": trt.InterpolationMode.CUBIC}  # fmt: skip
_PADDING = {"zeros": trt.SampleMode.FILL, "border": trt.SampleMode.CLAMP, "reflection": trt.SampleMode.REFLECT}


def _grid_sample(x, grid, mode, padding, align):
    net = Net()
    layer = net.network.add_grid_sample(net.input("x", x), net.input("grid", grid))
    layer.interpolation_mode = _INTERPOLATION[mode]
    layer.sample_mode = _PADDING[padding]
    layer.align_corners = align
    return net.compute(layer)


@FEW
@given(
    st.sampled_from(list(_INTERPOLATION)),
    st.sampled_from(list(_PADDING)),
    st.booleans(),
    st.integers(1, 5),
    st.integers(1, 5),
    st.integers(0, 2**16),
)
def test_grid_sample_2d_matches_torch(mode, padding, align, height, width, seed):
    rng = np.random.default_rng(seed)
    x = rand(rng, 2, 3, height, width)
    grid = (rng.uniform(-1.4, 1.4, size=(2, 4, 5, 2))).astype(np.float32)  # some coordinates fall outside
    if mode == "nearest":
        grid = np.round(grid * 8) / 8 + 1 / 64  # keep clear of exact rounding ties
    expected = F.grid_sample(t(x), t(grid), mode=mode, padding_mode=padding, align_corners=align)
    close(_grid_sample(x, grid, mode, padding, align), expected, rtol=1e-4, atol=1e-5)


@FEW
@given(st.sampled_from(["nearest", "bilinear"]), st.sampled_from(list(_PADDING)), st.booleans(), st.integers(0, 99))
def test_grid_sample_3d_matches_torch_and_onnx(mode, padding, align, seed):
    rng = np.random.default_rng(seed)
    x = rand(rng, 1, 2, 3, 4, 5)
    grid = rng.uniform(-1.2, 1.2, size=(1, 2, 3, 4, 3)).astype(np.float32)
    if mode == "nearest":
        grid = np.round(grid * 8) / 8 + 1 / 64
    got = _grid_sample(x, grid, mode, padding, align)
    close(got, F.grid_sample(t(x), t(grid), mode=mode, padding_mode=padding, align_corners=align), 1e-4, 1e-5)
    onnx_mode = {"nearest": "nearest", "bilinear": "linear"}[mode]
    expected = onnx_op("GridSample", [x, grid], mode=onnx_mode, padding_mode=padding, align_corners=int(align))[0]
    close(got, expected, 1e-4, 1e-5)


@FEW
@given(st.integers(1, 4).map(lambda k: 2 * k - 1), st.floats(1e-3, 1.0), st.floats(0.1, 1.5), st.floats(0.5, 3.0),
       st.integers(1, 7), st.integers(0, 999))  # fmt: skip
def test_lrn_matches_onnx_and_torch(window, alpha, beta, k, channels, seed):
    # onnx.reference's LRN loops over axis 0 where it means the channels, so batch = channels keeps it right
    x = rand(np.random.default_rng(seed), channels, channels, 3, 4, scale=2.0)
    net = Net()
    layer = net.network.add_lrn(net.input("x", x), window, alpha, beta, k)
    got = net.compute(layer)
    expected = onnx_op("LRN", [x], size=window, alpha=alpha, beta=beta, bias=k)[0]
    close(got, expected, rtol=1e-5, atol=1e-6)
    # PyTorch's LocalResponseNorm uses the same window (size // 2 before, (size - 1) // 2 after) for odd sizes
    close(got, torch.nn.LocalResponseNorm(window, alpha, beta, k)(t(x)), rtol=1e-5, atol=1e-6)

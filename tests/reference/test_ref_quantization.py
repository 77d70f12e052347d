"""Quantize and Dequantize: INT8 and FP8, per tensor and per channel, against torch."""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import given
from hypothesis import strategies as st
from refhelpers import SETTINGS, Net, close, rand, t

from netdef.backend import trt

POWERS_OF_TWO = [2.0**e for e in range(-6, 2)]


def _torch_quantize(x: torch.Tensor, scale: torch.Tensor) -> np.ndarray:
    """int8 quantization in torch: torch.round rounds half to even."""
    return torch.clamp(torch.round(x / scale), -128, 127).to(torch.int8).numpy()


@SETTINGS
@given(st.sampled_from(POWERS_OF_TWO + [0.1, 0.3]), st.integers(0, 2**31))
def test_quantize_int8_per_tensor_matches_torch(scale, seed):
    x = rand(np.random.default_rng(seed), 2, 3, 4, scale=50 * scale)
    net = Net()
    layer = net.network.add_quantize(net.input("x", x), net.constant(np.array(scale, np.float32)), trt.int8)
    got = net.compute(layer)
    assert got.dtype == np.int8
    expected = _torch_quantize(t(x), torch.tensor(scale))
    np.testing.assert_array_equal(got, expected)


@SETTINGS
@given(st.lists(st.sampled_from(POWERS_OF_TWO), min_size=3, max_size=3), st.integers(0, 2), st.integers(0, 2**31))
def test_quantize_int8_per_channel_matches_torch(scales, axis, seed):
    shape = [3, 3, 3]
    x = rand(np.random.default_rng(seed), *shape, scale=20)
    scales = np.array(scales, np.float32)
    net = Net()
    layer = net.network.add_quantize(net.constant(x), net.constant(scales), trt.int8)
    layer.axis = axis
    got = net.compute(layer)
    expected = _torch_quantize(t(x), t(scales).reshape([-1] + [1] * (2 - axis)))
    np.testing.assert_array_equal(got, expected)


def test_quantize_rounds_half_to_even_and_clamps():
    x = np.array([0.25, 0.75, -0.25, -0.75, 1.25, 100.0, -100.0], np.float32)
    net = Net()
    layer = net.network.add_quantize(net.input("x", x), net.constant(np.array(0.5, np.float32)), trt.int8)
    np.testing.assert_array_equal(net.compute(layer), [0, 2, 0, -2, 2, 127, -128])


@SETTINGS
@given(st.sampled_from([0.01, 0.1, 1.0, 3.0]), st.integers(0, 2**31))
def test_quantize_fp8_matches_torch_float8(scale, seed):
    x = rand(np.random.default_rng(seed), 4, 8, scale=300 * scale)
    net = Net()
    layer = net.network.add_quantize(net.input("x", x), net.constant(np.array(scale, np.float32)), trt.fp8)
    got = net.compute(layer)
    expected = torch.clamp(t(x) / torch.tensor(scale, dtype=torch.float32), -448, 448).to(torch.float8_e4m3fn)
    np.testing.assert_array_equal(got.astype(np.float32), expected.float().numpy())


@SETTINGS
@given(st.sampled_from(POWERS_OF_TWO), st.integers(0, 2**31))
def test_dequantize_int8_per_tensor(scale, seed):
    q = np.random.default_rng(seed).integers(-128, 128, (2, 5)).astype(np.int8)
    net = Net()
    layer = net.network.add_dequantize(net.input("q", q), net.constant(np.array(scale, np.float32)), trt.float32)
    got = net.compute(layer)
    expected = torch.from_numpy(q).float() * scale
    assert got.dtype == np.float32
    close(got, expected, 0, 0)


@SETTINGS
@given(st.integers(0, 2**31))
def test_weight_qdq_per_channel_then_convolution(seed):
    """The ONNX/ModelOpt pattern: int8 weights -> per-channel dequantize -> convolution kernel input."""
    rng = np.random.default_rng(seed)
    q = rng.integers(-127, 128, (4, 2, 3, 3)).astype(np.int8)
    scales = rng.uniform(0.001, 0.1, 4).astype(np.float32)
    x = rand(rng, 1, 2, 6, 6)
    net = Net()
    dq = net.network.add_dequantize(net.constant(q), net.constant(scales), trt.float32)
    dq.axis = 0
    conv = net.network.add_convolution_nd(net.input("x", x), 4, (3, 3), trt.Weights(), None)
    conv.set_input(1, dq.get_output(0))
    weights = torch.from_numpy(q).float() * t(scales).reshape(4, 1, 1, 1)
    close(net.compute(conv), torch.nn.functional.conv2d(t(x), weights), 1e-4, 1e-4)


def test_quantize_int4_clamps_to_its_range():
    x = np.array([[-20.0, -8.4, -0.5, 0.5, 1.5, 6.6, 20.0]], np.float32)
    net = Net()
    layer = net.network.add_quantize(net.constant(x), net.constant(np.array(1.0, np.float32)), trt.int4)
    got = net.compute(layer)
    np.testing.assert_array_equal(got.astype(np.int8), [[-8, -8, 0, 0, 2, 7, 7]])

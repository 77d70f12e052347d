"""float16 and bfloat16 tensors are rounded to their type after every layer, so precision loss shows."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st
from refhelpers import SETTINGS, Net, close, rand, t

from netdef.backend import trt

BF16 = np.dtype(ml_dtypes.bfloat16)


def test_fp16_sum_is_rounded_to_half():
    a = np.array([1.0, 1000.0, 0.1], np.float16)
    b = np.array([2.0**-11, 0.3, 0.2], np.float16)
    net = Net()
    layer = net.network.add_elementwise(net.input("a", a), net.input("b", b), trt.ElementWiseOperation.SUM)
    got = net.compute(layer)
    exact = a.astype(np.float32) + b.astype(np.float32)
    assert got.dtype == np.float16
    np.testing.assert_array_equal(got, exact.astype(np.float16))
    assert got[0] == 1.0 and exact[0] != 1.0  # 1 + 2^-11 is a tie in fp16 and rounds to even


def test_fp16_rounding_between_layers_accumulates():
    """x * (1/3) * 3 in fp16: each product is rounded, so the result drifts from x where fp32 would not."""
    x = np.linspace(1, 2, 64, dtype=np.float16).reshape(1, 64)
    net = Net()
    third = net.constant(np.full((1, 1), 1 / 3, np.float16))
    three = net.constant(np.full((1, 1), 3, np.float16))
    prod = trt.ElementWiseOperation.PROD
    first = net.network.add_elementwise(net.input("x", x), third, prod)
    second = net.network.add_elementwise(first.get_output(0), three, prod)
    got = net.compute(second)
    step = (x.astype(np.float32) * np.float32(np.float16(1 / 3))).astype(np.float16)
    expected = (step.astype(np.float32) * np.float32(3)).astype(np.float16)
    np.testing.assert_array_equal(got, expected)
    assert np.any(got != x)


@SETTINGS
@given(st.integers(0, 2**31))
def test_fp16_convolution_accumulates_in_fp32_and_rounds_once(seed):
    rng = np.random.default_rng(seed)
    x = rand(rng, 1, 8, 6, 6, dtype=np.float16)
    kernel = rand(rng, 4, 8, 3, 3, dtype=np.float16)
    net = Net()
    layer = net.network.add_convolution_nd(net.input("x", x), 4, (3, 3), net.keep(kernel))
    got = net.compute(layer)
    wide = F.conv2d(t(x).double(), t(kernel).double()).numpy()
    assert got.dtype == np.float16
    close(got, wide.astype(np.float16), rtol=0, atol=float(np.abs(wide).max()) * 2**-10)
    assert np.any(got.astype(np.float64) != wide)  # the fp16 output lost precision


@SETTINGS
@given(st.integers(0, 2**31))
def test_bf16_elementwise_rounds_to_bfloat16(seed):
    rng = np.random.default_rng(seed)
    a = rand(rng, 3, 17).astype(BF16)
    b = rand(rng, 3, 17).astype(BF16)
    net = Net()
    layer = net.network.add_elementwise(
        net.input("a", a, trt.bfloat16), net.input("b", b, trt.bfloat16), trt.ElementWiseOperation.SUM
    )
    got = net.compute(layer)
    exact = a.astype(np.float32) + b.astype(np.float32)
    assert got.dtype == BF16
    np.testing.assert_array_equal(got.astype(np.float32), exact.astype(BF16).astype(np.float32))
    assert np.any(got.astype(np.float32) != exact)
    expected = torch.from_numpy(a.astype(np.float32)).bfloat16() + torch.from_numpy(b.astype(np.float32)).bfloat16()
    np.testing.assert_array_equal(got.astype(np.float32), expected.float().numpy())


def test_bf16_constant_weights_are_read_back():
    values = np.array([[1.5, -2.25, 3.0e-3]], np.float32).astype(BF16)
    x = np.array([[1.0, 1.0, 1.0]], np.float32).astype(BF16)
    net = Net()
    raw = net.keep(values.view(np.uint16))
    constant = net.network.add_constant((1, 3), trt.Weights(trt.bfloat16, raw.ctypes.data, 3))
    layer = net.network.add_elementwise(
        net.input("x", x, trt.bfloat16), constant.get_output(0), trt.ElementWiseOperation.PROD
    )
    np.testing.assert_array_equal(net.compute(layer).astype(np.float32), values.astype(np.float32))


def test_cast_to_half_and_back_loses_precision():
    x = np.array([[0.1, 1 / 3, 12345.678, 70000.0]], np.float32)
    net = Net()
    half = net.network.add_cast(net.input("x", x), trt.float16)
    back = net.network.add_cast(half.get_output(0), trt.float32)
    got = net.compute(back)
    with np.errstate(over="ignore"):
        np.testing.assert_array_equal(got, x.astype(np.float16).astype(np.float32))
    assert np.isinf(got[0, 3]) and np.all(got[0, :3] != x[0, :3])

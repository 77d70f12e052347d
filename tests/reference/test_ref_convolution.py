"""Convolution and deconvolution against torch.nn.functional."""

from __future__ import annotations

import math

import numpy as np
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st
from refhelpers import SETTINGS, Net, close, rand, t

from netdef.backend import trt


@st.composite
def conv_case(draw, spatial=2):
    groups = draw(st.integers(1, 3))
    case = {
        "n": draw(st.integers(1, 2)),
        "groups": groups,
        "cin": groups * draw(st.integers(1, 3)),
        "cout": groups * draw(st.integers(1, 3)),
        "kernel": tuple(draw(st.integers(1, 3)) for _ in range(spatial)),
        "stride": tuple(draw(st.integers(1, 3)) for _ in range(spatial)),
        "dilation": tuple(draw(st.integers(1, 2)) for _ in range(spatial)),
        "pre": tuple(draw(st.integers(0, 2)) for _ in range(spatial)),
        "post": tuple(draw(st.integers(0, 2)) for _ in range(spatial)),
        "bias": draw(st.booleans()),
        "seed": draw(st.integers(0, 2**31)),
    }
    dk = [1 + d * (k - 1) for d, k in zip(case["dilation"], case["kernel"], strict=True)]
    case["size"] = tuple(
        draw(st.integers(max(1, m - p - q), m - p - q + 6))
        for m, p, q in zip(dk, case["pre"], case["post"], strict=True)
    )
    return case


def _add_conv(net: Net, x, case, rng):
    kernel = rand(rng, case["cout"], case["cin"] // case["groups"], *case["kernel"])
    bias = rand(rng, case["cout"]) if case["bias"] else None
    layer = net.network.add_convolution_nd(
        x, case["cout"], case["kernel"], net.keep(kernel), net.keep(bias) if bias is not None else None
    )
    layer.stride_nd = case["stride"]
    layer.dilation_nd = case["dilation"]
    layer.pre_padding = case["pre"]
    layer.post_padding = case["post"]
    layer.num_groups = case["groups"]
    return layer, kernel, bias


def _torch_conv(x, kernel, bias, case, pads):
    flat = [p for pair in reversed(pads) for p in pair]  # F.pad wants last axis first
    padded = F.pad(t(x), flat)
    conv = F.conv2d if len(case["kernel"]) == 2 else F.conv3d
    return conv(
        padded,
        t(kernel),
        None if bias is None else t(bias),
        case["stride"],
        0,
        case["dilation"],
        case["groups"],
    )


@SETTINGS
@given(conv_case())
def test_convolution_2d_matches_torch(case):
    rng = np.random.default_rng(case["seed"])
    net = Net()
    x = rand(rng, case["n"], case["cin"], *case["size"])
    layer, kernel, bias = _add_conv(net, net.input("x", x), case, rng)
    got = net.compute(layer)
    expected = _torch_conv(x, kernel, bias, case, list(zip(case["pre"], case["post"], strict=True)))
    close(got, expected, rtol=1e-4, atol=1e-4)


@SETTINGS
@given(conv_case(spatial=3))
def test_convolution_3d_matches_torch(case):
    rng = np.random.default_rng(case["seed"])
    net = Net()
    x = rand(rng, case["n"], case["cin"], *case["size"])
    layer, kernel, bias = _add_conv(net, net.input("x", x), case, rng)
    got = net.compute(layer)
    expected = _torch_conv(x, kernel, bias, case, list(zip(case["pre"], case["post"], strict=True)))
    close(got, expected, rtol=1e-4, atol=1e-4)


def _mode_padding(mode, size, dk, stride, pre, post):
    """Padding (before, after) of a convolution axis under ``mode``, from the PaddingMode formulas."""
    if mode in (trt.PaddingMode.SAME_UPPER, trt.PaddingMode.SAME_LOWER):
        total = max((math.ceil(size / stride) - 1) * stride + dk - size, 0)
        small = total // 2
        return (small, total - small) if mode == trt.PaddingMode.SAME_UPPER else (total - small, small)
    out = math.ceil((size + pre + post - dk) / stride) + 1
    return pre, max(post, (out - 1) * stride + dk - size - pre)


@SETTINGS
@given(conv_case(), st.sampled_from(["SAME_UPPER", "SAME_LOWER", "EXPLICIT_ROUND_UP"]))
def test_convolution_padding_modes(case, mode_name):
    mode = getattr(trt.PaddingMode, mode_name)
    rng = np.random.default_rng(case["seed"])
    net = Net()
    x = rand(rng, case["n"], case["cin"], *case["size"])
    layer, kernel, bias = _add_conv(net, net.input("x", x), case, rng)
    layer.padding_mode = mode
    got = net.compute(layer)
    pads = [
        _mode_padding(mode, size, 1 + d * (k - 1), s, p, q)
        for size, d, k, s, p, q in zip(
            case["size"],
            case["dilation"],
            case["kernel"],
            case["stride"],
            case["pre"],
            case["post"],
            strict=True,
        )
    ]
    expected = _torch_conv(x, kernel, bias, case, pads)
    close(got, expected, rtol=1e-4, atol=1e-4)
    if mode != trt.PaddingMode.EXPLICIT_ROUND_UP:
        assert got.shape[2:] == tuple(math.ceil(i / s) for i, s in zip(case["size"], case["stride"], strict=True))


@SETTINGS
@given(st.integers(1, 4), st.integers(1, 3), st.integers(1, 3), st.integers(1, 2), st.integers(0, 2**31))
def test_depthwise_convolution_with_channel_multiplier(channels, multiplier, stride, dilation, seed):
    rng = np.random.default_rng(seed)
    net = Net()
    x = rand(rng, 1, channels, 9, 7)
    kernel = rand(rng, channels * multiplier, 1, 3, 3)
    layer = net.network.add_convolution_nd(net.input("x", x), channels * multiplier, (3, 3), net.keep(kernel))
    layer.num_groups = channels
    layer.stride_nd = (stride, stride)
    layer.dilation_nd = (dilation, dilation)
    layer.padding_nd = (1, 1)
    got = net.compute(layer)
    expected = F.conv2d(t(x), t(kernel), None, stride, 1, dilation, channels)
    close(got, expected, rtol=1e-4, atol=1e-4)


def test_convolution_kernel_and_bias_from_input_tensors():
    rng = np.random.default_rng(0)
    net = Net()
    x = rand(rng, 1, 4, 6, 6)
    kernel, bias = rand(rng, 2, 4, 3, 3), rand(rng, 2)
    layer = net.network.add_convolution_nd(net.input("x", x), 2, (3, 3), trt.Weights(), trt.Weights())
    layer.set_input(1, net.constant(kernel))
    layer.set_input(2, net.constant(bias))
    got = net.compute(layer)
    close(got, F.conv2d(t(x), t(kernel), t(bias)), rtol=1e-4, atol=1e-4)


@st.composite
def deconv_case(draw):
    groups = draw(st.integers(1, 3))
    kernel = tuple(draw(st.integers(1, 4)) for _ in range(2))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(2))
    dk = [1 + d * (k - 1) for d, k in zip(dilation, kernel, strict=True)]
    pre = tuple(draw(st.integers(0, max(0, (m - 1) // 2))) for m in dk)
    post = tuple(draw(st.integers(0, max(0, (m - 1) // 2))) for m in dk)
    return {
        "groups": groups,
        "cin": groups * draw(st.integers(1, 3)),
        "cout": groups * draw(st.integers(1, 3)),
        "kernel": kernel,
        "stride": tuple(draw(st.integers(1, 3)) for _ in range(2)),
        "dilation": dilation,
        "pre": pre,
        "post": post,
        "size": tuple(draw(st.integers(1, 6)) for _ in range(2)),
        "bias": draw(st.booleans()),
        "seed": draw(st.integers(0, 2**31)),
    }


@SETTINGS
@given(deconv_case())
def test_deconvolution_matches_torch_conv_transpose(case):
    rng = np.random.default_rng(case["seed"])
    net = Net()
    x = rand(rng, 2, case["cin"], *case["size"])
    kernel = rand(rng, case["cin"], case["cout"] // case["groups"], *case["kernel"])
    bias = rand(rng, case["cout"]) if case["bias"] else None
    layer = net.network.add_deconvolution_nd(
        net.input("x", x),
        case["cout"],
        case["kernel"],
        net.keep(kernel),
        net.keep(bias) if bias is not None else None,
    )
    layer.stride_nd = case["stride"]
    layer.dilation_nd = case["dilation"]
    layer.pre_padding = case["pre"]
    layer.post_padding = case["post"]
    layer.num_groups = case["groups"]
    got = net.compute(layer)
    full = F.conv_transpose2d(
        t(x),
        t(kernel),
        None if bias is None else t(bias),
        case["stride"],
        0,
        0,
        case["groups"],
        case["dilation"],
    )
    (b0, b1), (a0, a1) = case["pre"], case["post"]
    expected = full[:, :, b0 : full.shape[2] - a0, b1 : full.shape[3] - a1]
    close(got, expected, rtol=1e-4, atol=1e-4)


@SETTINGS
@given(st.integers(1, 4), st.integers(1, 3), st.sampled_from(["SAME_UPPER", "SAME_LOWER"]), st.integers(0, 2**31))
def test_deconvolution_same_padding(kernel, stride, mode_name, seed):
    rng = np.random.default_rng(seed)
    net = Net()
    x = rand(rng, 1, 2, 5, 4)
    weights = rand(rng, 2, 3, kernel, kernel)
    layer = net.network.add_deconvolution_nd(net.input("x", x), 3, (kernel, kernel), net.keep(weights))
    layer.stride_nd = (stride, stride)
    layer.padding_mode = getattr(trt.PaddingMode, mode_name)
    got = net.compute(layer)
    full = F.conv_transpose2d(t(x), t(weights), None, stride)
    total = max(kernel - stride, 0)
    before = total // 2 if mode_name == "SAME_UPPER" else total - total // 2
    after = total - before
    expected = full[:, :, before : full.shape[2] - after, before : full.shape[3] - after]
    close(got, expected, rtol=1e-4, atol=1e-4)
    assert got.shape[2:] == (min(5 * stride, 4 * stride + kernel), min(4 * stride, 3 * stride + kernel))

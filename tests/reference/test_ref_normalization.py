"""Normalization (layer, instance, group; v1 and v2) and Scale (UNIFORM, CHANNEL, ELEMENTWISE)."""

from __future__ import annotations

import numpy as np
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st
from refhelpers import SETTINGS, Net, close, rand, t

from netdef.backend import trt


@SETTINGS
@given(st.integers(1, 3), st.integers(2, 4), st.floats(1e-6, 1e-2), st.integers(0, 2**31))
def test_layer_norm_over_trailing_axes(trailing, rank_extra, epsilon, seed):
    rng = np.random.default_rng(seed)
    shape = (2, 3, 4, 5)[: max(trailing + 1, rank_extra)]
    x = rand(rng, *shape, scale=3)
    normalized = shape[-trailing:]
    gamma, beta = rand(rng, *normalized), rand(rng, *normalized)
    full = (1,) * (len(shape) - trailing) + normalized
    net = Net()
    mask = sum(1 << a for a in range(len(shape) - trailing, len(shape)))
    layer = net.network.add_normalization_v2(
        net.input("x", x), net.constant(gamma.reshape(full)), net.constant(beta.reshape(full)), mask
    )
    layer.epsilon = epsilon
    expected = F.layer_norm(t(x), normalized, t(gamma), t(beta), float(np.float32(epsilon)))
    close(net.compute(layer), expected, rtol=1e-4, atol=1e-4)


@SETTINGS
@given(st.sampled_from([2, 3, 6]), st.booleans(), st.integers(0, 2**31))
def test_group_norm_v1_and_v2(groups, v2, seed):
    rng = np.random.default_rng(seed)
    x = rand(rng, 2, 6, 4, 3, scale=2)
    gamma, beta = rand(rng, 6), rand(rng, 6)
    net = Net()
    if v2:
        scale, bias = gamma, beta
        add = net.network.add_normalization_v2
    else:  # the original layer takes one scale/bias value per group
        gamma, beta = np.repeat(gamma[:groups], 6 // groups), np.repeat(beta[:groups], 6 // groups)
        scale, bias = gamma[:: 6 // groups], beta[:: 6 // groups]
        add = net.network.add_normalization
    layer = add(
        net.input("x", x),
        net.constant(scale.reshape(1, -1, 1, 1)),
        net.constant(bias.reshape(1, -1, 1, 1)),
        0b1100,
    )
    layer.num_groups = groups
    expected = F.group_norm(t(x), groups, t(gamma), t(beta), 1e-5)
    close(net.compute(layer), expected, rtol=1e-4, atol=1e-4)


@SETTINGS
@given(st.integers(0, 2**31))
def test_instance_norm(seed):
    rng = np.random.default_rng(seed)
    x = rand(rng, 2, 3, 5, 4, scale=2)
    gamma, beta = rand(rng, 3), rand(rng, 3)
    net = Net()
    layer = net.network.add_normalization_v2(
        net.input("x", x),
        net.constant(gamma.reshape(1, 3, 1, 1)),
        net.constant(beta.reshape(1, 3, 1, 1)),
        0b1100,
    )
    expected = F.instance_norm(t(x), weight=t(gamma), bias=t(beta), eps=1e-5)
    close(net.compute(layer), expected, rtol=1e-4, atol=1e-4)


@SETTINGS
@given(
    st.sampled_from(["UNIFORM", "CHANNEL", "ELEMENTWISE"]),
    st.integers(1, 3),
    st.lists(st.booleans(), min_size=3, max_size=3),
    st.integers(0, 2**31),
)
def test_scale_nd_all_modes(mode, channel_axis, present, seed):
    rng = np.random.default_rng(seed)
    x = np.abs(rand(rng, 2, 3, 4, 5)) + np.float32(0.5)
    count = {
        "UNIFORM": 1,
        "CHANNEL": x.shape[channel_axis],
        "ELEMENTWISE": int(np.prod(x.shape[channel_axis:])),
    }[mode]
    coefficient_shape = {
        "UNIFORM": (),
        "CHANNEL": (-1,) + (1,) * (3 - channel_axis),
        "ELEMENTWISE": x.shape[channel_axis:],
    }[mode]
    shift = np.abs(rand(rng, count)) if present[0] else None
    scale = np.abs(rand(rng, count)) + np.float32(0.1) if present[1] else None
    power = rng.uniform(0.5, 2, count).astype(np.float32) if present[2] else None
    net = Net()
    layer = net.network.add_scale_nd(
        net.input("x", x),
        getattr(trt.ScaleMode, mode),
        *(net.keep(w) if w is not None else None for w in (shift, scale, power)),
        channel_axis,
    )
    expected = x.astype(np.float64)
    if scale is not None:
        expected = expected * scale.reshape(coefficient_shape)
    if shift is not None:
        expected = expected + shift.reshape(coefficient_shape)
    if power is not None:
        expected = expected ** power.reshape(coefficient_shape)
    close(net.compute(layer), expected, rtol=1e-5, atol=1e-5)


def test_scale_channel_default_axis():
    x = rand(np.random.default_rng(7), 2, 3, 4, 5)
    scale = np.array([1.0, 2.0, 3.0], np.float32)
    net = Net()
    layer = net.network.add_scale(net.input("x", x), trt.ScaleMode.CHANNEL, None, net.keep(scale), None)
    close(net.compute(layer), x * scale.reshape(1, 3, 1, 1))

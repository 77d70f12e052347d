"""Every ActivationType, and parametric ReLU, against torch."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st
from refhelpers import SETTINGS, Net, close, rand, t

from netdef.backend import trt

EXPECTED = {
    "RELU": lambda x, a, b: torch.relu(x),
    "SIGMOID": lambda x, a, b: torch.sigmoid(x),
    "TANH": lambda x, a, b: torch.tanh(x),
    "LEAKY_RELU": lambda x, a, b: F.leaky_relu(x, a),
    "ELU": lambda x, a, b: F.elu(x, a),
    "SELU": lambda x, a, b: b * torch.where(x > 0, x, a * torch.expm1(x)),
    "SOFTSIGN": lambda x, a, b: F.softsign(x),
    "SOFTPLUS": lambda x, a, b: a * torch.log1p(torch.exp(b * x)),
    "CLIP": lambda x, a, b: torch.clamp(x, min(a, b), max(a, b)) if a <= b else torch.full_like(x, a),
    "HARD_SIGMOID": lambda x, a, b: torch.clamp(a * x + b, 0, 1),
    "SCALED_TANH": lambda x, a, b: a * torch.tanh(b * x),
    "THRESHOLDED_RELU": lambda x, a, b: F.threshold(x, a, 0.0),
    "GELU_ERF": lambda x, a, b: F.gelu(x),
    "GELU_TANH": lambda x, a, b: F.gelu(x, approximate="tanh"),
}


def test_every_activation_type_is_covered():
    names = {name for name in dir(trt.ActivationType) if name.isupper()}
    assert names == set(EXPECTED)


@SETTINGS
@given(
    st.sampled_from(sorted(EXPECTED)),
    st.floats(-2, 2, width=32),
    st.floats(-2, 2, width=32),
    st.booleans(),
    st.integers(0, 2**31),
)
def test_activation_matches_torch(kind, alpha, beta, set_parameters, seed):
    x = rand(np.random.default_rng(seed), 2, 3, 4, 5, scale=3)
    net = Net()
    layer = net.network.add_activation(net.input("x", x), getattr(trt.ActivationType, kind))
    if set_parameters:
        layer.alpha, layer.beta = alpha, beta
    a, b = float(np.float32(layer.alpha)), float(np.float32(layer.beta))
    got = net.compute(layer)
    with torch.no_grad():
        expected = EXPECTED[kind](t(x).double(), a, b)
    close(got, expected, rtol=2e-5, atol=2e-5)


def test_activation_defaults_match_documentation():
    x = np.linspace(-3, 3, 25, dtype=np.float32).reshape(1, 25)
    net = Net()
    tensor = net.input("x", x)
    selu = net.network.add_activation(tensor, trt.ActivationType.SELU)
    hard = net.network.add_activation(tensor, trt.ActivationType.HARD_SIGMOID)
    net.output(selu)
    net.output(hard)
    result = net.run()
    close(result.layers[selu.name][0], F.selu(t(x)), 1e-6, 1e-6)
    close(result.layers[hard.name][0], np.clip(0.2 * x + 0.5, 0, 1), 1e-6, 1e-6)


@SETTINGS
@given(st.integers(1, 4), st.integers(0, 2**31))
def test_parametric_relu_matches_torch(channels, seed):
    rng = np.random.default_rng(seed)
    x = rand(rng, 2, channels, 3, 3)
    slope = rand(rng, 1, channels, 1, 1)
    net = Net()
    layer = net.network.add_parametric_relu(net.input("x", x), net.constant(slope))
    close(net.compute(layer), F.prelu(t(x), t(slope.reshape(-1))))


def test_softplus_does_not_overflow():
    x = np.array([[-100.0, 0.0, 100.0]], np.float32)
    net = Net()
    layer = net.network.add_activation(net.input("x", x), trt.ActivationType.SOFTPLUS)
    close(net.compute(layer), [[math.log1p(math.exp(-100.0)), math.log(2.0), 100.0]])

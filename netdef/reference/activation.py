"""Activation functions and parametric ReLU."""

from __future__ import annotations

import numpy as np

from netdef.reference import costs
from netdef.reference.dtypes import compute
from netdef.reference.mathfns import erf
from netdef.reference.node import Unsupported
from netdef.reference.registry import register

_SQRT_HALF = np.float32(np.sqrt(0.5))
_SQRT_2_OVER_PI = np.float32(np.sqrt(2.0 / np.pi))


def _sigmoid(x, a, b):
    """1 / (1 + exp(-x)) in one buffer (SiLU-heavy detection networks call it on every feature map)."""
    y = np.negative(x)
    with np.errstate(over="ignore"):  # exp overflow gives inf, and 1 / inf = 0 as it should
        np.exp(y, out=y)
    y += np.float32(1)
    return np.reciprocal(y, out=y)


def _softplus(x, a, b):
    return a * np.logaddexp(np.float32(0), b * x)


_FUNCTIONS = {
    "RELU": lambda x, a, b: np.maximum(x, np.float32(0)),
    "SIGMOID": _sigmoid,
    "TANH": lambda x, a, b: np.tanh(x),
    "LEAKY_RELU": lambda x, a, b: np.where(x >= 0, x, a * x),
    "ELU": lambda x, a, b: np.where(x >= 0, x, a * (np.exp(x) - 1)),
    "SELU": lambda x, a, b: np.where(x > 0, b * x, b * (a * np.exp(x) - a)),
    "SOFTSIGN": lambda x, a, b: x / (1 + np.abs(x)),
    "SOFTPLUS": _softplus,
    "CLIP": lambda x, a, b: np.maximum(a, np.minimum(b, x)),
    "HARD_SIGMOID": lambda x, a, b: np.maximum(np.float32(0), np.minimum(np.float32(1), a * x + b)),
    "SCALED_TANH": lambda x, a, b: a * np.tanh(b * x),
    "THRESHOLDED_RELU": lambda x, a, b: np.where(x > a, x, np.float32(0)),
    "GELU_ERF": lambda x, a, b: np.float32(0.5) * x * (1 + erf(_SQRT_HALF * x)),
    "GELU_TANH": lambda x, a, b: (
        np.float32(0.5) * x * (1 + np.tanh(_SQRT_2_OVER_PI * (np.float32(0.044715) * x**3 + x)))
    ),
}


@register(
    "ACTIVATION",
    "IActivationLayer",
    ("type", "alpha", "beta"),
    family="activation",
    flops=costs.per_output(1),
    detail=lambda layer: costs.enum_text(layer.type),
)
def activation(node, inputs):
    """Elementwise activation f(x; alpha, beta), same shape as the input, computed in float32.

    RELU max(x, 0); SIGMOID 1 / (1 + exp(-x)); TANH tanh(x); LEAKY_RELU x >= 0 ? x : alpha * x;
    ELU x >= 0 ? x : alpha * (exp(x) - 1); SELU x > 0 ? beta * x : beta * (alpha * exp(x) - alpha);
    SOFTSIGN x / (1 + |x|); SOFTPLUS alpha * log(exp(beta * x) + 1); CLIP max(alpha, min(beta, x));
    HARD_SIGMOID max(0, min(1, alpha * x + beta)); SCALED_TANH alpha * tanh(beta * x);
    THRESHOLDED_RELU x > alpha ? x : 0; GELU_ERF 0.5 * x * (1 + erf(x / sqrt(2)));
    GELU_TANH 0.5 * x * (1 + tanh(sqrt(2 / pi) * (0.044715 * x^3 + x))).
    alpha and beta are the layer's (float32) values; their defaults depend on the type.
    """
    kind = node.attr("type")
    function = _FUNCTIONS.get(kind.name)
    if function is None:
        raise Unsupported(f"activation type {kind.name}")
    x = compute(inputs[0])
    alpha, beta = np.float32(node.attr("alpha")), np.float32(node.attr("beta"))
    with np.errstate(over="ignore"):
        return function(x, alpha, beta).astype(x.dtype, copy=False)


@register("PARAMETRIC_RELU", "IParametricReLULayer", family="activation", flops=costs.per_output(1))
def parametric_relu(node, inputs):
    """Leaky ReLU with a slope tensor: y = x >= 0 ? x : slope * x, slope broadcast to x (same rank)."""
    x, slope = compute(inputs[0]), compute(inputs[1])
    return np.where(x >= 0, x, slope * x)

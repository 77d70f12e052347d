"""ElementWise (every operation, broadcasting, integer and bool types) and Unary (every operation)."""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import given
from hypothesis import strategies as st
from refhelpers import SETTINGS, Net, close, rand, t

from netdef.backend import trt

FLOAT_BINARY = {
    "SUM": torch.add,
    "PROD": torch.mul,
    "MAX": torch.maximum,
    "MIN": torch.minimum,
    "SUB": torch.sub,
    "DIV": torch.div,
    "POW": torch.pow,
    "FLOOR_DIV": lambda a, b: torch.floor(a / b),
    "EQUAL": torch.eq,
    "GREATER": torch.gt,
    "LESS": torch.lt,
}
INT_BINARY = {
    "SUM": torch.add,
    "PROD": torch.mul,
    "MAX": torch.maximum,
    "MIN": torch.minimum,
    "SUB": torch.sub,
    "DIV": lambda a, b: torch.div(a, b, rounding_mode="trunc"),
    "FLOOR_DIV": lambda a, b: torch.div(a, b, rounding_mode="floor"),
    "EQUAL": torch.eq,
    "GREATER": torch.gt,
    "LESS": torch.lt,
}
BOOL_BINARY = {"AND": torch.logical_and, "OR": torch.logical_or, "XOR": torch.logical_xor}


def test_every_elementwise_operation_is_covered():
    names = {name for name in dir(trt.ElementWiseOperation) if name.isupper()}
    assert names == set(FLOAT_BINARY) | set(BOOL_BINARY)


@st.composite
def broadcast_shapes(draw):
    rank = draw(st.integers(1, 4))
    full = [draw(st.integers(1, 4)) for _ in range(rank)]
    a = [1 if draw(st.booleans()) else n for n in full]
    b = [1 if draw(st.booleans()) else n for n in full]
    return tuple(a), tuple(b)


@SETTINGS
@given(st.sampled_from(sorted(FLOAT_BINARY)), broadcast_shapes(), st.integers(0, 2**31))
def test_float_elementwise_broadcasts_like_torch(op, shapes, seed):
    rng = np.random.default_rng(seed)
    a, b = rand(rng, *shapes[0]), rand(rng, *shapes[1])
    if op == "POW":
        a = np.abs(a) + np.float32(0.1)
    if op in ("DIV", "FLOOR_DIV"):
        b = np.where(np.abs(b) < 0.1, np.float32(0.5), b)
    net = Net()
    layer = net.network.add_elementwise(net.input("a", a), net.input("b", b), getattr(trt.ElementWiseOperation, op))
    got = net.compute(layer)
    expected = FLOAT_BINARY[op](t(a), t(b))
    if expected.dtype == torch.bool:
        assert got.dtype == np.bool_
        np.testing.assert_array_equal(got, expected.numpy())
    else:
        close(got, expected, rtol=1e-5, atol=1e-6)


@SETTINGS
@given(
    st.sampled_from(sorted(INT_BINARY)),
    broadcast_shapes(),
    st.sampled_from([np.int32, np.int64]),
    st.integers(0, 2**31),
)
def test_integer_elementwise_matches_torch(op, shapes, dtype, seed):
    rng = np.random.default_rng(seed)
    a = rng.integers(-50, 50, shapes[0]).astype(dtype)
    b = rng.integers(-9, 9, shapes[1]).astype(dtype)
    b[b == 0] = 3
    net = Net()
    layer = net.network.add_elementwise(net.input("a", a), net.input("b", b), getattr(trt.ElementWiseOperation, op))
    got = net.compute(layer)
    expected = INT_BINARY[op](t(a), t(b)).numpy()
    assert got.dtype == expected.dtype
    np.testing.assert_array_equal(got, expected)


@SETTINGS
@given(st.sampled_from(sorted(BOOL_BINARY)), broadcast_shapes(), st.integers(0, 2**31))
def test_bool_elementwise_matches_torch(op, shapes, seed):
    rng = np.random.default_rng(seed)
    a, b = rng.random(shapes[0]) < 0.5, rng.random(shapes[1]) < 0.5
    net = Net()
    layer = net.network.add_elementwise(net.input("a", a), net.input("b", b), getattr(trt.ElementWiseOperation, op))
    np.testing.assert_array_equal(net.compute(layer), BOOL_BINARY[op](t(a), t(b)).numpy())


# operation -> (torch function, input low, input high)
UNARY = {
    "EXP": (torch.exp, -5, 5),
    "LOG": (torch.log, 0.01, 10),
    "SQRT": (torch.sqrt, 0, 10),
    "RECIP": (torch.reciprocal, 0.1, 10),
    "ABS": (torch.abs, -5, 5),
    "NEG": (torch.neg, -5, 5),
    "SIN": (torch.sin, -5, 5),
    "COS": (torch.cos, -5, 5),
    "TAN": (torch.tan, -1.2, 1.2),
    "SINH": (torch.sinh, -4, 4),
    "COSH": (torch.cosh, -4, 4),
    "ASIN": (torch.asin, -0.99, 0.99),
    "ACOS": (torch.acos, -0.99, 0.99),
    "ATAN": (torch.atan, -5, 5),
    "ASINH": (torch.asinh, -5, 5),
    "ACOSH": (torch.acosh, 1.01, 10),
    "ATANH": (torch.atanh, -0.99, 0.99),
    "CEIL": (torch.ceil, -5, 5),
    "FLOOR": (torch.floor, -5, 5),
    "ERF": (torch.erf, -3, 3),
    "SIGN": (torch.sign, -5, 5),
    "ROUND": (torch.round, -5, 5),
    "ISINF": (torch.isinf, -5, 5),
    "ISNAN": (torch.isnan, -5, 5),
}


def test_every_unary_operation_is_covered():
    names = {name for name in dir(trt.UnaryOperation) if name.isupper()}
    assert names == set(UNARY) | {"NOT"}


@SETTINGS
@given(st.sampled_from(sorted(UNARY)), st.integers(0, 2**31))
def test_unary_matches_torch(op, seed):
    function, low, high = UNARY[op]
    rng = np.random.default_rng(seed)
    x = rng.uniform(low, high, (3, 4, 5)).astype(np.float32)
    if op in ("ROUND", "SIGN"):
        x.flat[:4] = [0.5, 1.5, -2.5, 0.0]  # ties go to even; sign of zero is zero
    if op in ("ISINF", "ISNAN"):
        x.flat[:3] = [np.inf, -np.inf, np.nan]
    net = Net()
    layer = net.network.add_unary(net.input("x", x), getattr(trt.UnaryOperation, op))
    got = net.compute(layer)
    expected = function(t(x))
    if expected.dtype == torch.bool:
        np.testing.assert_array_equal(got, expected.numpy())
    else:
        close(got, expected, rtol=2e-6, atol=1e-6)


def test_unary_not_and_integer_abs():
    flags = np.array([True, False, True])
    ints = np.array([-3, 0, 7], np.int32)
    net = Net()
    negated = net.network.add_unary(net.input("flags", flags), trt.UnaryOperation.NOT)
    absolute = net.network.add_unary(net.input("ints", ints), trt.UnaryOperation.ABS)
    net.output(negated)
    net.output(absolute)
    result = net.run()
    np.testing.assert_array_equal(result.layers[negated.name][0], ~flags)
    assert result.layers[absolute.name][0].dtype == np.int32
    np.testing.assert_array_equal(result.layers[absolute.name][0], np.abs(ints))

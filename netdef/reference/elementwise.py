"""Binary elementwise operations with broadcasting, and unary operations."""

from __future__ import annotations

import numpy as np

from netdef.reference import costs
from netdef.reference.dtypes import compute, is_float
from netdef.reference.mathfns import erf
from netdef.reference.node import Unsupported
from netdef.reference.registry import register


def _int_div(a, b):
    """Integer division truncating toward zero (C semantics)."""
    quotient = np.floor_divide(a, b)
    inexact = (quotient * b != a) & ((a < 0) != (b < 0))
    return quotient + inexact.astype(quotient.dtype)


def _pow(a, b):
    if is_float(a.dtype):
        return np.power(a, b)
    return np.trunc(np.power(a.astype(np.float64), b.astype(np.float64))).astype(a.dtype)


_BINARY = {
    "SUM": np.add,
    "PROD": np.multiply,
    "MAX": np.maximum,
    "MIN": np.minimum,
    "SUB": np.subtract,
    "DIV": lambda a, b: np.divide(a, b) if is_float(a.dtype) else _int_div(a, b),
    "POW": _pow,
    "FLOOR_DIV": lambda a, b: np.floor(a / b) if is_float(a.dtype) else np.floor_divide(a, b),
    "AND": np.logical_and,
    "OR": np.logical_or,
    "XOR": np.logical_xor,
    "EQUAL": np.equal,
    "GREATER": np.greater,
    "LESS": np.less,
}


@register(
    "ELEMENTWISE",
    "IElementWiseLayer",
    ("op",),
    family="elementwise",
    flops=costs.per_output(1),
    detail=lambda layer: costs.enum_text(layer.op),
)
def elementwise(node, inputs):
    """Binary op on two same-rank tensors broadcast along length-1 axes: y = a op b.

    Output length per axis: the common length, or the one that is not 1. SUM a+b, PROD a*b,
    MAX, MIN, SUB a-b, DIV a/b (integers truncate toward zero), POW a^b, FLOOR_DIV floor(a/b),
    AND/OR/XOR on bools, EQUAL/GREATER/LESS give bools. Floating types compute in float32.
    """
    op = node.attr("op").name
    function = _BINARY.get(op)
    if function is None:
        raise Unsupported(f"elementwise operation {op}")
    a, b = compute(inputs[0]), compute(inputs[1])
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        return np.asarray(function(a, b))


_UNARY = {
    "EXP": np.exp,
    "LOG": np.log,
    "SQRT": np.sqrt,
    "RECIP": lambda x: np.float32(1) / x,
    "ABS": np.abs,
    "NEG": np.negative,
    "SIN": np.sin,
    "COS": np.cos,
    "TAN": np.tan,
    "SINH": np.sinh,
    "COSH": np.cosh,
    "ASIN": np.arcsin,
    "ACOS": np.arccos,
    "ATAN": np.arctan,
    "ASINH": np.arcsinh,
    "ACOSH": np.arccosh,
    "ATANH": np.arctanh,
    "CEIL": np.ceil,
    "FLOOR": np.floor,
    "ERF": erf,
    "NOT": np.logical_not,
    "SIGN": np.sign,
    "ROUND": np.rint,
    "ISINF": np.isinf,
    "ISNAN": np.isnan,
}


@register(
    "UNARY",
    "IUnaryLayer",
    ("op",),
    family="activation",
    flops=costs.per_output(1),
    detail=lambda layer: costs.enum_text(layer.op),
)
def unary(node, inputs):
    """Elementwise unary op y = op(x), same shape; floating types compute in float32.

    EXP, LOG (natural), SQRT, RECIP 1/x, ABS, NEG, SIN, COS, TAN, SINH, COSH, ASIN, ACOS, ATAN,
    ASINH, ACOSH, ATANH, CEIL, FLOOR, ERF, NOT (bool), SIGN (-1, 0 or 1), ROUND (half to even),
    ISINF and ISNAN (give bools).
    """
    op = node.attr("op").name
    function = _UNARY.get(op)
    if function is None:
        raise Unsupported(f"unary operation {op}")
    x = compute(inputs[0])
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        return np.asarray(function(x))

"""Matrix multiplication and Einstein summation."""

from __future__ import annotations

import math

import numpy as np

from netdef.backend import trt
from netdef.reference import costs
from netdef.reference.dtypes import compute
from netdef.reference.registry import register


def _as_matrix(x: np.ndarray, op, first: bool) -> tuple[np.ndarray, bool]:
    """Apply a MatrixOperation; returns the matrix and whether a vector axis was added."""
    if op == trt.MatrixOperation.VECTOR:
        return (x[..., None, :] if first else x[..., :, None]), True
    if op == trt.MatrixOperation.TRANSPOSE:
        return np.swapaxes(x, -1, -2), False
    return x, False


_MARKS = {"none": "", "transpose": "ᵀ", "vector": " (vector)"}


def _matmul_detail(layer) -> str:
    first, second = (_MARKS.get(costs.enum_text(op), "") for op in (layer.op0, layer.op1))
    return f"A{first} · B{second}"


def _matmul_flops(layer) -> int | None:
    """2 * K per output element, K the inner length of A."""
    a, out = costs.input_shape(layer), costs.numel(costs.output_shape(layer))
    if a is None or out is None:
        return None
    op = costs.enum_text(layer.op0)
    if op == "vector" or len(a) == 1:
        inner = a[-1]
    else:
        inner = a[-2] if op == "transpose" else a[-1]
    return 2 * out * max(inner, 1)


def _einsum_flops(layer) -> int | None:
    """2 per combination of all the equation's indices (the product of their lengths), as a plain loop nest."""
    operands = layer.equation.replace(" ", "").split("->")[0].split(",")
    sizes: dict[str, int] = {}
    for i, letters in enumerate(operands):
        dims = costs.input_shape(layer, i)
        if dims is None or "." in letters:
            return None
        sizes.update({letter: max(d, 1) for letter, d in zip(letters, dims, strict=False)})
    return 2 * math.prod(sizes.values())


@register(
    "MATRIX_MULTIPLY",
    "IMatrixMultiplyLayer",
    ("op0", "op1"),
    family="matmul",
    flops=_matmul_flops,
    detail=_matmul_detail,
)
def matrix_multiply(node, inputs):
    """Batched matrix product op0(A) @ op1(B), broadcasting batch axes of length 1.

    NONE treats the last two axes as the matrix; TRANSPOSE swaps them; VECTOR treats the last
    axis as a vector (A: [..., K] is a row vector, B: [..., K] a column vector) and drops it from
    the result: [..., M, K] x [..., K, N] -> [..., M, N]; matrix x vector -> [..., M];
    vector x matrix -> [..., N]; vector x vector -> [...]. Batch axes must have equal count.
    Floating types accumulate in float32.
    """
    a, row = _as_matrix(compute(inputs[0]), node.attr("op0"), first=True)
    b, col = _as_matrix(compute(inputs[1]), node.attr("op1"), first=False)
    out = np.matmul(a, b)
    if row and col:
        return out[..., 0, 0]
    if row:
        return out[..., 0, :]
    if col:
        return out[..., :, 0]
    return out


@register("EINSUM", "IEinsumLayer", ("equation",), family="matmul", flops=_einsum_flops)
def einsum(node, inputs):
    """Einstein summation over the inputs as the equation states (numpy.einsum semantics), float32."""
    return np.asarray(np.einsum(node.attr("equation"), *[compute(x) for x in inputs]))

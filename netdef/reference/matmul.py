"""Matrix multiplication and Einstein summation."""

from __future__ import annotations

import numpy as np

from netdef.backend import trt
from netdef.reference.dtypes import compute
from netdef.reference.registry import register


def _as_matrix(x: np.ndarray, op, first: bool) -> tuple[np.ndarray, bool]:
    """Apply a MatrixOperation; returns the matrix and whether a vector axis was added."""
    if op == trt.MatrixOperation.VECTOR:
        return (x[..., None, :] if first else x[..., :, None]), True
    if op == trt.MatrixOperation.TRANSPOSE:
        return np.swapaxes(x, -1, -2), False
    return x, False


@register("MATRIX_MULTIPLY", "IMatrixMultiplyLayer", ("op0", "op1"))
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


@register("EINSUM", "IEinsumLayer", ("equation",))
def einsum(node, inputs):
    """Einstein summation over the inputs as the equation states (numpy.einsum semantics), float32."""
    return np.asarray(np.einsum(node.attr("equation"), *[compute(x) for x in inputs]))

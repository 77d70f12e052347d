"""The fill layer: evenly spaced values (LINSPACE) and random draws (RANDOM_UNIFORM, RANDOM_NORMAL)."""

from __future__ import annotations

import zlib

import numpy as np

from netdef.backend import trt
from netdef.reference import costs
from netdef.reference.node import Unsupported
from netdef.reference.registry import register

RANDOM_SEED = 0
"""Random fills draw from ``numpy.random.default_rng((RANDOM_SEED, crc32(layer name)))``: the same layer gives
the same values in every run and in every precision of a network, so runs stay comparable."""


def _scalar(value) -> float | int:
    value = np.asarray(value)
    return value.reshape(()).item() if value.size == 1 else value


def _describe(layer) -> dict:
    params = {"operation": layer.operation, "to_type": layer.to_type}
    for index, name in ((0, "shape"), (1, "alpha"), (2, "beta")):
        dynamic = layer.num_inputs > index and layer.get_input(index) is not None
        params[name] = f"input {index}" if dynamic else getattr(layer, name)
    return params


@register("FILL", "IFillLayer", _describe, family="generator", flops=costs.free)
def fill(node, inputs):
    """A generated tensor: LINSPACE y[i] = alpha + sum_k beta[k] * i_k; RANDOM_UNIFORM in [alpha, beta); RANDOM_NORMAL.

    The shape is ``shape`` or the 1-D input 0; alpha and beta are attributes or inputs 1 and 2 (for
    LINSPACE, input 2 holds one step per axis; a static beta is one step, allowed on 1-D outputs only).
    LINSPACE computes in float64 for float outputs (then rounds to float32) and in int64 for int32/int64
    outputs. RANDOM_NORMAL has mean alpha and standard deviation beta. Random values are drawn once per
    run from a generator seeded by the layer's name (see ``RANDOM_SEED``): they match TensorRT's in
    distribution, shape and type, not value by value.
    """
    dtype = node.output_dtypes[0]
    shape = tuple(int(v) for v in np.asarray(inputs[0]).reshape(-1)) if _given(inputs, 0) else node.dims("shape")
    alpha = _scalar(inputs[1]) if _given(inputs, 1) else node.attr("alpha")
    beta = np.asarray(inputs[2]).reshape(-1) if _given(inputs, 2) else None
    operation = node.attr("operation")
    if operation == trt.FillOperation.LINSPACE:
        if beta is None:
            if len(shape) != 1:
                raise Unsupported(f"a static beta gives one step, but the output has {len(shape)} axes (use input 2)")
            beta = np.asarray([node.attr("beta")])
        if beta.size != len(shape):
            raise Unsupported(f"LINSPACE needs one step per axis: {beta.size} steps for shape {shape}")
        wide = np.int64 if dtype.kind in "iu" else np.float64
        grid = np.full(shape, alpha, dtype=wide)
        for axis, step in enumerate(beta):
            index = np.arange(shape[axis], dtype=wide).reshape((-1,) + (1,) * (len(shape) - axis - 1))
            grid = grid + wide(step) * index
        return grid.astype(dtype)
    beta_value = float(beta.reshape(()) if beta is not None else node.attr("beta"))
    rng = np.random.default_rng((RANDOM_SEED, zlib.crc32(node.name.encode())))
    if operation == trt.FillOperation.RANDOM_UNIFORM:
        return rng.uniform(float(alpha), beta_value, size=shape).astype(dtype)
    if operation == trt.FillOperation.RANDOM_NORMAL:
        return rng.normal(float(alpha), beta_value, size=shape).astype(dtype)
    raise Unsupported(f"fill operation {operation.name}")


def _given(inputs, index: int) -> bool:
    return len(inputs) > index and inputs[index] is not None

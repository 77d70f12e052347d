"""MatrixMultiply, Einsum, Reduce, Softmax, TopK and Cumulative against torch."""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import given
from hypothesis import strategies as st
from refhelpers import SETTINGS, Net, close, rand, t

from netdef.backend import trt

OPS = ["NONE", "TRANSPOSE", "VECTOR"]


@st.composite
def matmul_case(draw):
    op0, op1 = draw(st.sampled_from(OPS)), draw(st.sampled_from(OPS))
    m, k, n = draw(st.integers(1, 5)), draw(st.integers(1, 5)), draw(st.integers(1, 5))
    batch_rank = draw(st.integers(0 if "VECTOR" not in (op0, op1) else 1, 2))
    batch = [draw(st.integers(1, 3)) for _ in range(batch_rank)]
    batch_a = [1 if draw(st.booleans()) else d for d in batch]
    batch_b = [1 if draw(st.booleans()) else d for d in batch]
    shape_a = {"NONE": [m, k], "TRANSPOSE": [k, m], "VECTOR": [k]}[op0]
    shape_b = {"NONE": [k, n], "TRANSPOSE": [n, k], "VECTOR": [k]}[op1]
    return op0, op1, tuple(batch_a + shape_a), tuple(batch_b + shape_b), draw(st.integers(0, 2**31))


def _torch_operand(x: torch.Tensor, op: str, first: bool) -> torch.Tensor:
    if op == "TRANSPOSE":
        return x.transpose(-1, -2)
    if op == "VECTOR":
        return x.unsqueeze(-2) if first else x.unsqueeze(-1)
    return x


@SETTINGS
@given(matmul_case())
def test_matrix_multiply_matches_torch(case):
    op0, op1, shape_a, shape_b, seed = case
    rng = np.random.default_rng(seed)
    a, b = rand(rng, *shape_a), rand(rng, *shape_b)
    net = Net()
    layer = net.network.add_matrix_multiply(
        net.input("a", a),
        getattr(trt.MatrixOperation, op0),
        net.input("b", b),
        getattr(trt.MatrixOperation, op1),
    )
    got = net.compute(layer)
    expected = torch.matmul(_torch_operand(t(a), op0, True), _torch_operand(t(b), op1, False))
    if op0 == "VECTOR":
        expected = expected.squeeze(-2)
    if op1 == "VECTOR":
        expected = expected.squeeze(-1)
    close(got, expected, rtol=1e-5, atol=1e-5)


def test_einsum_matches_torch():
    rng = np.random.default_rng(3)
    a, b = rand(rng, 2, 3, 4), rand(rng, 2, 4, 5)
    net = Net()
    layer = net.network.add_einsum([net.input("a", a), net.input("b", b)], "bij,bjk->bik")
    close(net.compute(layer), torch.einsum("bij,bjk->bik", t(a), t(b)), 1e-5, 1e-5)


REDUCE = {
    "SUM": lambda x, d, k: torch.sum(x, d, keepdim=k),
    "MAX": lambda x, d, k: torch.amax(x, d, keepdim=k),
    "MIN": lambda x, d, k: torch.amin(x, d, keepdim=k),
    "AVG": lambda x, d, k: torch.mean(x, d, keepdim=k),
}


def _torch_prod(x: torch.Tensor, dims: tuple[int, ...], keep: bool) -> torch.Tensor:
    for d in sorted(dims, reverse=True):
        x = torch.prod(x, d, keepdim=keep)
    return x


@SETTINGS
@given(st.sampled_from(["SUM", "PROD", "MAX", "MIN", "AVG"]), st.integers(1, 4), st.booleans(), st.data())
def test_reduce_matches_torch(op, rank, keep, data):
    shape = [data.draw(st.integers(1, 4)) for _ in range(rank)]
    mask = data.draw(st.integers(1, 2**rank - 1))
    dims = tuple(a for a in range(rank) if mask >> a & 1)
    x = rand(np.random.default_rng(data.draw(st.integers(0, 2**31))), *shape)
    net = Net()
    layer = net.network.add_reduce(net.input("x", x), getattr(trt.ReduceOperation, op), mask, keep)
    got = net.compute(layer)
    expected = _torch_prod(t(x), dims, keep) if op == "PROD" else REDUCE[op](t(x), dims, keep)
    close(got, expected, rtol=1e-5, atol=1e-6)


def test_integer_average_truncates_toward_zero():
    x = np.array([[-7, 0], [7, 0]], np.int32)
    net = Net()
    layer = net.network.add_reduce(net.input("x", x), trt.ReduceOperation.AVG, 0b10, False)
    got = net.compute(layer)
    assert got.dtype == np.int32
    np.testing.assert_array_equal(got, [-3, 3])


@SETTINGS
@given(st.integers(2, 5), st.data())
def test_softmax_along_any_axis_matches_torch(rank, data):
    shape = [data.draw(st.integers(1, 4)) for _ in range(rank)]
    axis = data.draw(st.integers(0, rank - 1))
    x = rand(np.random.default_rng(data.draw(st.integers(0, 2**31))), *shape, scale=3)
    net = Net()
    layer = net.network.add_softmax(net.input("x", x))
    layer.axes = 1 << axis
    close(net.compute(layer), torch.softmax(t(x), axis), rtol=1e-5, atol=1e-6)


@SETTINGS
@given(st.integers(2, 5), st.integers(0, 2**31))
def test_softmax_default_axis_is_rank_minus_three(rank, seed):
    shape = [2, 3, 4, 5, 2][:rank]
    x = rand(np.random.default_rng(seed), *shape)
    net = Net()
    layer = net.network.add_softmax(net.input("x", x))
    close(net.compute(layer), torch.softmax(t(x), max(rank - 3, 0)), rtol=1e-5, atol=1e-6)


@SETTINGS
@given(st.sampled_from(["MAX", "MIN"]), st.integers(1, 6), st.integers(0, 2), st.integers(0, 2**31))
def test_topk_matches_torch(op, k, axis, seed):
    x = rand(np.random.default_rng(seed), 3, 6, 4)
    k = min(k, x.shape[axis])
    net = Net()
    layer = net.network.add_topk(net.input("x", x), getattr(trt.TopKOperation, op), k, 1 << axis)
    net.output(layer, 0)
    net.output(layer, 1)
    values, indices = net.run().layers[layer.name]
    expected = torch.topk(t(x), k, axis, largest=op == "MAX")
    close(values, expected.values)
    assert indices.dtype == np.int32
    np.testing.assert_array_equal(indices, expected.indices.numpy())


@SETTINGS
@given(st.integers(0, 2), st.booleans(), st.booleans(), st.integers(0, 2**31))
def test_cumulative_sum_matches_torch(axis, exclusive, reverse, seed):
    x = rand(np.random.default_rng(seed), 3, 4, 5)
    net = Net()
    layer = net.network.add_cumulative(
        net.input("x", x),
        net.constant(np.array(axis, np.int32)),
        trt.CumulativeOperation.SUM,
        exclusive,
        reverse,
    )
    expected = t(x).flip(axis) if reverse else t(x)
    expected = torch.cumsum(expected, axis)
    if exclusive:
        expected = expected - (t(x).flip(axis) if reverse else t(x))
    if reverse:
        expected = expected.flip(axis)
    close(net.compute(layer), expected, rtol=1e-5, atol=1e-5)

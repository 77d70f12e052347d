"""Shuffle, Concatenation, Slice, Padding, Cast, Identity, Constant, Shape, Gather, Select, (Un)Squeeze."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st
from refhelpers import SETTINGS, Net, close, rand, t

from netdef.backend import trt


@st.composite
def shuffle_case(draw):
    rank = draw(st.integers(1, 4))
    shape = tuple(draw(st.integers(1, 4)) for _ in range(rank))
    first = tuple(draw(st.permutations(range(rank))))
    transposed = tuple(shape[p] for p in first)
    # reshape: split the element count into a few factors, then mark one as -1 and keep some as 0
    target = list(transposed) if draw(st.booleans()) else [math.prod(transposed)]
    if len(target) > 1 and draw(st.booleans()):
        target = [target[0] * target[1]] + target[2:]
    dims = list(target)
    for i in range(len(dims)):
        if i < len(transposed) and dims[i] == transposed[i] and draw(st.booleans()):
            dims[i] = 0
    if draw(st.booleans()):
        dims[draw(st.integers(0, len(dims) - 1))] = -1
    second = tuple(draw(st.permutations(range(len(dims)))))
    return shape, first, tuple(dims), tuple(target), second, draw(st.integers(0, 2**31))


@SETTINGS
@given(shuffle_case())
def test_shuffle_transpose_reshape_transpose(case):
    shape, first, dims, target, second, seed = case
    x = rand(np.random.default_rng(seed), *shape)
    net = Net()
    layer = net.network.add_shuffle(net.input("x", x))
    layer.first_transpose = first
    layer.reshape_dims = dims
    layer.second_transpose = second
    got = net.compute(layer)
    expected = t(x).permute(*first).reshape(target).permute(*second)
    np.testing.assert_array_equal(got, expected.numpy())


def test_shuffle_without_reshape_only_transposes():
    x = rand(np.random.default_rng(0), 2, 3, 4)
    net = Net()
    layer = net.network.add_shuffle(net.input("x", x))
    layer.first_transpose = (2, 0, 1)
    np.testing.assert_array_equal(net.compute(layer), x.transpose(2, 0, 1))


def test_shuffle_zero_is_not_placeholder_gives_empty_axis():
    x = np.zeros((2, 0, 3), np.float32)
    net = Net()
    layer = net.network.add_shuffle(net.input("x", x))
    layer.zero_is_placeholder = False
    layer.reshape_dims = (0, 6)
    assert net.compute(layer).shape == (0, 6)


def test_shuffle_reshape_dims_from_second_input():
    x = rand(np.random.default_rng(1), 2, 3, 4)
    net = Net()
    layer = net.network.add_shuffle(net.input("x", x))
    layer.set_input(1, net.constant(np.array([0, -1], np.int64)))
    np.testing.assert_array_equal(net.compute(layer), x.reshape(2, 12))


@SETTINGS
@given(st.integers(1, 4), st.integers(1, 4), st.data())
def test_concatenation_along_any_axis(rank, count, data):
    axis = data.draw(st.integers(0, rank - 1))
    base = [data.draw(st.integers(1, 3)) for _ in range(rank)]
    rng = np.random.default_rng(data.draw(st.integers(0, 2**31)))
    arrays = []
    for _ in range(count):
        shape = list(base)
        shape[axis] = data.draw(st.integers(1, 3))
        arrays.append(rand(rng, *shape))
    net = Net()
    layer = net.network.add_concatenation([net.input(f"x{i}", a) for i, a in enumerate(arrays)])
    layer.axis = axis
    np.testing.assert_array_equal(net.compute(layer), np.concatenate(arrays, axis))


def test_concatenation_default_axis_is_rank_minus_three():
    a, b = np.ones((1, 2, 3, 4), np.float32), np.zeros((1, 5, 3, 4), np.float32)
    net = Net()
    layer = net.network.add_concatenation([net.input("a", a), net.input("b", b)])
    assert net.compute(layer).shape == (1, 7, 3, 4)


def _numpy_slice(x, start, size, stride, mode, fill=0.0):
    """Sample x at start + i * stride per axis, mapping outside coordinates as the SampleMode says."""
    indices, masks = [], []
    for axis, n in enumerate(x.shape):
        raw = start[axis] + np.arange(size[axis]) * stride[axis]
        if mode == "WRAP":
            idx = np.mod(raw, n)
        elif mode == "CLAMP":
            idx = np.clip(raw, 0, n - 1)
        elif mode == "REFLECT":
            margin = 32  # coordinates drawn stay within [-20, 20]
            table = np.pad(np.arange(n), margin, mode="reflect") if n > 1 else np.zeros(2 * margin + 1, int)
            idx = table[raw + margin]
        else:
            idx = np.clip(raw, 0, n - 1)
        indices.append(idx)
        masks.append((raw >= 0) & (raw < n))
    out = x[np.ix_(*indices)]
    if mode == "FILL":
        mask = np.logical_and.reduce(np.meshgrid(*masks, indexing="ij"))
        out = np.where(mask, out, np.float32(fill))
    return out


@SETTINGS
@given(st.sampled_from(["STRICT_BOUNDS", "WRAP", "CLAMP", "FILL", "REFLECT"]), st.integers(1, 3), st.data())
def test_slice_modes(mode, rank, data):
    shape = [data.draw(st.integers(1, 5)) for _ in range(rank)]
    start, size, stride = [], [], []
    for n in shape:
        s = data.draw(st.integers(-3, 3).filter(lambda v: v != 0))
        k = data.draw(st.integers(1, 5))
        if mode == "STRICT_BOUNDS":
            k = data.draw(st.integers(1, n))
            s = data.draw(st.integers(1, 2))
            k = min(k, (n - 1) // s + 1)
            b = data.draw(st.integers(0, n - 1 - (k - 1) * s))
        else:
            b = data.draw(st.integers(-4, n + 3))
        start.append(b)
        size.append(k)
        stride.append(s)
    x = rand(np.random.default_rng(data.draw(st.integers(0, 2**31))), *shape)
    net = Net()
    layer = net.network.add_slice(net.input("x", x), start, size, stride)
    layer.mode = getattr(trt.SampleMode, mode)
    fill = 0.0
    if mode == "FILL" and data.draw(st.booleans()):
        fill = 7.5
        layer.set_input(4, net.constant(np.array(fill, np.float32)))
    np.testing.assert_array_equal(net.compute(layer), _numpy_slice(x, start, size, stride, mode, fill))


def test_slice_with_axes_and_dynamic_start():
    x = rand(np.random.default_rng(2), 3, 6, 4)
    net = Net()
    layer = net.network.add_slice(net.input("x", x), (0,), (2,), (2,))
    layer.axes = (-2,)
    layer.set_input(1, net.constant(np.array([1], np.int32)))
    np.testing.assert_array_equal(net.compute(layer), x[:, 1:5:2, :])


@SETTINGS
@given(st.lists(st.integers(-1, 3), min_size=4, max_size=4), st.integers(0, 2**31))
def test_padding_pads_or_crops_last_two_axes(amounts, seed):
    x = rand(np.random.default_rng(seed), 2, 3, 4, 5)
    net = Net()
    layer = net.network.add_padding_nd(net.input("x", x), amounts[:2], amounts[2:])
    expected = F.pad(t(x), (amounts[1], amounts[3], amounts[0], amounts[2]))
    np.testing.assert_array_equal(net.compute(layer), expected.numpy())


CASTS = [
    (np.float32, trt.int32, np.int32),
    (np.float32, trt.int64, np.int64),
    (np.float32, trt.float16, np.float16),
    (np.float32, trt.bool, np.bool_),
    (np.int32, trt.float32, np.float32),
    (np.float16, trt.float32, np.float32),
    (np.bool_, trt.float32, np.float32),
    (np.int64, trt.int32, np.int32),
]


@SETTINGS
@given(st.sampled_from(CASTS), st.integers(0, 2**31))
def test_cast_matches_torch(case, seed):
    source, target, numpy_target = case
    rng = np.random.default_rng(seed)
    x = (rng.standard_normal((3, 7)) * 10).astype(source) if source != np.bool_ else rng.random((3, 7)) < 0.5
    if source == np.float32:
        x.flat[:4] = [2.5, -2.5, 0.0, -0.7]
    net = Net()
    layer = net.network.add_cast(net.input("x", x), target)
    got = net.compute(layer)
    expected = (
        torch.from_numpy(x)
        .to(getattr(torch, np.dtype(numpy_target).name if numpy_target != np.bool_ else "bool"))
        .numpy()
    )
    assert got.dtype == numpy_target
    np.testing.assert_array_equal(got, expected)


def test_cast_float_to_int_saturates_and_maps_nan_to_zero():
    x = np.array([3e10, -3e10, np.nan, 1.9, -1.9], np.float32)
    net = Net()
    layer = net.network.add_cast(net.input("x", x), trt.int32)
    np.testing.assert_array_equal(net.compute(layer), [2**31 - 1, -(2**31), 0, 1, -1])


def test_identity_constant_and_shape():
    values = rand(np.random.default_rng(4), 2, 3)
    net = Net()
    x = net.input("x", np.zeros((5, 1, 2), np.float32))
    identity = net.network.add_identity(x)
    constant = net.network.add_constant((3, 2), net.keep(values))
    shape = net.network.add_shape(x)
    for layer in (identity, constant, shape):
        net.output(layer)
    result = net.run()
    np.testing.assert_array_equal(result.layers[identity.name][0], np.zeros((5, 1, 2)))
    np.testing.assert_array_equal(result.layers[constant.name][0], values.reshape(3, 2))
    assert result.layers[shape.name][0].dtype == np.int64
    np.testing.assert_array_equal(result.layers[shape.name][0], [5, 1, 2])


@SETTINGS
@given(st.integers(0, 2), st.integers(0, 2), st.integers(0, 2**31))
def test_gather_default_matches_numpy_take(axis, index_rank, seed):
    rng = np.random.default_rng(seed)
    data = rand(rng, 3, 4, 5)
    indices = rng.integers(-data.shape[axis], data.shape[axis], size=(2,) * index_rank).astype(np.int32)
    net = Net()
    layer = net.network.add_gather(net.input("data", data), net.constant(indices), axis)
    np.testing.assert_array_equal(net.compute(layer), np.take(data, indices, axis=axis))


@SETTINGS
@given(st.integers(0, 2), st.integers(0, 2**31))
def test_gather_element_matches_torch_gather(axis, seed):
    rng = np.random.default_rng(seed)
    data = rand(rng, 3, 4, 5)
    shape = list(data.shape)
    shape[axis] = 2
    indices = rng.integers(0, data.shape[axis], size=shape).astype(np.int64)
    net = Net()
    layer = net.network.add_gather_v2(net.input("data", data), net.constant(indices), trt.GatherMode.ELEMENT)
    layer.axis = axis
    expected = torch.gather(t(data), axis, torch.from_numpy(indices))
    np.testing.assert_array_equal(net.compute(layer), expected.numpy())


def test_gather_nd_matches_numpy_indexing():
    rng = np.random.default_rng(5)
    data = rand(rng, 3, 4, 5)
    indices = np.array([[0, 1], [2, 3], [1, 0]], np.int32)
    net = Net()
    layer = net.network.add_gather_v2(net.input("data", data), net.constant(indices), trt.GatherMode.ND)
    np.testing.assert_array_equal(net.compute(layer), data[indices[:, 0], indices[:, 1]])


@SETTINGS
@given(st.integers(0, 2**31))
def test_select_broadcasts(seed):
    rng = np.random.default_rng(seed)
    condition = rng.random((2, 1, 4)) < 0.5
    a, b = rand(rng, 2, 3, 4), rand(rng, 1, 3, 1)
    net = Net()
    layer = net.network.add_select(net.input("c", condition), net.input("a", a), net.input("b", b))
    np.testing.assert_array_equal(net.compute(layer), np.where(condition, a, b))


def test_squeeze_and_unsqueeze():
    x = rand(np.random.default_rng(6), 2, 1, 3, 1)
    net = Net()
    tensor = net.input("x", x)
    squeeze = net.network.add_squeeze(tensor, net.constant(np.array([1, -1], np.int64)))
    unsqueeze = net.network.add_unsqueeze(tensor, net.constant(np.array([0, -1], np.int64)))
    net.output(squeeze)
    net.output(unsqueeze)
    result = net.run()
    np.testing.assert_array_equal(result.layers[squeeze.name][0], x.reshape(2, 3))
    np.testing.assert_array_equal(result.layers[unsqueeze.name][0], x.reshape(1, 2, 1, 3, 1, 1))
    close(result.layers[unsqueeze.name][0].sum(), x.sum())

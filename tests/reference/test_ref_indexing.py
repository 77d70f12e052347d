"""Scatter, one-hot, non-zero and reverse-sequence vs ONNX's reference implementation of the same operators."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from onnx_oracle import onnx_op
from refhelpers import FEW, Net, rand

from netdef.backend import create_builder, trt
from netdef.errors import UnsupportedLayerError
from netdef.reference import run


def _shape(draw, rank_low=1, rank_high=3, low=1, high=4):
    return tuple(draw(st.integers(low, high)) for _ in range(draw(st.integers(rank_low, rank_high))))


@FEW
@given(st.data())
def test_scatter_element_matches_onnx_scatter_elements(data):
    shape = _shape(data.draw)
    axis = data.draw(st.integers(0, len(shape) - 1))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    x = rand(rng, *shape)
    # a permutation along the axis keeps indices unique, so the write order cannot matter
    index_shape = tuple(data.draw(st.integers(1, n)) for n in shape)
    index_shape = index_shape[:axis] + (shape[axis],) + index_shape[axis + 1 :]
    indices = np.argsort(rng.random(index_shape), axis=axis)[tuple(slice(0, n) for n in index_shape)]
    indices = indices.astype(np.int32)
    if data.draw(st.booleans()):
        indices = indices - shape[axis]  # negative indices count from the end
    updates = rand(rng, *index_shape)
    net = Net()
    layer = net.network.add_scatter(
        net.input("x", x), net.input("i", indices), net.input("u", updates), trt.ScatterMode.ELEMENT
    )
    layer.axis = axis
    expected = onnx_op("ScatterElements", [x, indices.astype(np.int64), updates], axis=axis)[0]
    np.testing.assert_array_equal(net.compute(layer), expected)


@FEW
@given(st.data())
def test_scatter_nd_matches_onnx_scatter_nd(data):
    shape = _shape(data.draw, 1, 3, 2, 4)
    depth = data.draw(st.integers(1, len(shape)))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    positions = list(np.ndindex(*shape[:depth]))
    count = data.draw(st.integers(1, len(positions)))
    chosen = [positions[i] for i in rng.permutation(len(positions))[:count]]
    indices = np.asarray(chosen, np.int32).reshape(count, depth)
    x, updates = rand(rng, *shape), rand(rng, count, *shape[depth:])
    net = Net()
    layer = net.network.add_scatter(
        net.input("x", x), net.input("i", indices), net.input("u", updates), trt.ScatterMode.ND
    )
    expected = onnx_op("ScatterND", [x, indices.astype(np.int64), updates])[0]
    np.testing.assert_array_equal(net.compute(layer), expected)


@FEW
@given(st.data())
def test_one_hot_matches_onnx(data):
    shape = _shape(data.draw, 1, 3)
    depth = data.draw(st.integers(1, 5))
    axis = data.draw(st.integers(-len(shape) - 1, len(shape)))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    indices = rng.integers(-depth - 1, depth + 1, size=shape).astype(np.int32)  # includes out-of-range ones
    values = np.array([-1.5, 2.0], np.float32)
    net = Net()
    layer = net.network.add_one_hot(
        net.input("i", indices), net.input("v", values), net.constant(np.array(depth, np.int32)), axis
    )
    expected = onnx_op("OneHot", [indices.astype(np.int64), np.array(depth, np.int64), values], axis=axis)[0]
    np.testing.assert_array_equal(net.compute(layer), expected)


@FEW
@given(st.data())
def test_non_zero_matches_onnx_and_has_a_data_dependent_length(data):
    shape = _shape(data.draw, 1, 3, 1, 4)
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    x = (rng.random(shape) < 0.4).astype(np.float32) * rand(rng, *shape)
    net = Net()
    layer = net.network.add_non_zero(net.input("x", x), trt.int64)
    assert tuple(layer.get_output(0).shape) == (len(shape), -1)
    np.testing.assert_array_equal(net.compute(layer), onnx_op("NonZero", [x])[0])


def test_non_zero_is_accepted_but_not_built_by_tensorrt_rtx_on_the_cpu():
    """TensorRT-RTX has no CPU-side runner for NonZero: the definition is accepted, the build is refused."""
    net = Net()
    layer = net.network.add_non_zero(net.input("x", np.eye(3, dtype=np.float32)))
    net.output(layer)
    assert run(net.network, net.feeds).outputs[layer.get_output(0).name].shape == (2, 3)
    builder = create_builder()
    assert builder.build_serialized_network(net.network, builder.create_builder_config()) is None


@FEW
@given(st.data())
def test_reverse_sequence_matches_onnx(data):
    batch, steps = data.draw(st.integers(1, 4)), data.draw(st.integers(1, 5))
    batch_axis = data.draw(st.integers(0, 1))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    shape = (batch, steps, 2) if batch_axis == 0 else (steps, batch, 2)
    x = rand(rng, *shape)
    lengths = rng.integers(1, steps + 1, size=batch).astype(np.int32)
    net = Net()
    layer = net.network.add_reverse_sequence(net.input("x", x), net.input("lens", lengths))
    layer.batch_axis, layer.sequence_axis = batch_axis, 1 - batch_axis
    expected = onnx_op(
        "ReverseSequence", [x, lengths.astype(np.int64)], batch_axis=batch_axis, time_axis=1 - batch_axis
    )[0]
    np.testing.assert_array_equal(net.compute(layer), expected)


def test_scatter_out_of_range_index_is_refused_naming_the_layer():
    net = Net()
    x = net.input("x", np.zeros((2, 3), np.float32))
    layer = net.network.add_scatter(
        x, net.input("i", np.array([[5, 0, 0]], np.int32)), net.input("u", np.ones((1, 3), np.float32)),
        trt.ScatterMode.ELEMENT,
    )  # fmt: skip
    layer.name = "bad_scatter"
    net.output(layer)
    with pytest.raises(UnsupportedLayerError, match=r"'bad_scatter' \(SCATTER\).*outside"):
        run(net.network, net.feeds)

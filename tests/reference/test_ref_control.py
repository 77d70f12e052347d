"""Loops (trip limits, iterators, recurrences, loop outputs) and if/else conditionals vs NumPy written from the spec."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from refhelpers import SETTINGS, Net, rand

from netdef.backend import create_builder, trt
from netdef.errors import LayerExecutionError, UnsupportedLayerError
from netdef.reference import run

SUM = trt.ElementWiseOperation.SUM
PROD = trt.ElementWiseOperation.PROD


def _scalar(net: Net, value, dtype=np.int32):
    return net.constant(np.array(value, dtype))


def _running_sum_loop(net: Net, x, h0, trips, *, reverse_iterator=False, axis=0, out_axis=0, kind=None):
    """h = h0; for each slice s of x along axis: h = h + s. Returns (loop, last value, stacked output)."""
    loop = net.network.add_loop()
    count = _scalar(net, trips)
    loop.add_trip_limit(count, trt.TripLimit.COUNT)
    iterator = loop.add_iterator(x, axis, reverse_iterator)
    state = loop.add_recurrence(h0)
    step = net.network.add_elementwise(state.get_output(0), iterator.get_output(0), SUM)
    state.set_input(1, step.get_output(0))
    last = loop.add_loop_output(state.get_output(0), trt.LoopOutput.LAST_VALUE, 0)
    stacked = loop.add_loop_output(step.get_output(0), kind or trt.LoopOutput.CONCATENATE, out_axis)
    stacked.set_input(1, count)
    return loop, net.output(last), net.output(stacked)


@SETTINGS
@given(
    st.integers(1, 5),
    st.lists(st.integers(1, 3), min_size=1, max_size=3),
    st.booleans(),
    st.sampled_from(["CONCATENATE", "REVERSE"]),
    st.data(),
)
def test_scan_with_recurrence_iterator_and_stacked_outputs(trips, shape, reverse, kind, data):
    axis = data.draw(st.integers(0, len(shape)))
    out_axis = data.draw(st.integers(0, len(shape)))
    rng = np.random.default_rng(trips)
    full = list(shape)
    full.insert(axis, trips)
    x_value, h_value = rand(rng, *full), rand(rng, *shape)
    net = Net()
    _, last, stacked = _running_sum_loop(
        net,
        net.input("x", x_value),
        net.input("h0", h_value),
        trips,
        reverse_iterator=reverse,
        axis=axis,
        out_axis=out_axis,
        kind=getattr(trt.LoopOutput, kind),
    )
    result = net.run()
    slices = np.moveaxis(x_value, axis, 0)
    if reverse:
        slices = slices[::-1]
    states = h_value + np.cumsum(slices, axis=0)  # the value after each iteration
    if kind == "REVERSE":
        states = states[::-1]
    np.testing.assert_allclose(result.outputs[last.name], h_value + slices.sum(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(result.outputs[stacked.name], np.moveaxis(states, 0, out_axis), rtol=1e-5, atol=1e-6)


def test_concatenated_output_longer_than_the_trip_count_is_zero_padded():
    x_value = np.arange(6, dtype=np.float32).reshape(3, 2)
    net = Net()
    x = net.input("x", x_value)
    loop = net.network.add_loop()
    loop.add_trip_limit(_scalar(net, 2), trt.TripLimit.COUNT)
    it = loop.add_iterator(x, 0, False)
    out = loop.add_loop_output(it.get_output(0), trt.LoopOutput.CONCATENATE, 0)
    out.set_input(1, _scalar(net, 4))
    np.testing.assert_array_equal(net.compute(out), [[0, 1], [2, 3], [0, 0], [0, 0]])


def test_while_loop_doubles_until_the_condition_fails():
    """while x < limit: x = 2 x, elementwise on a scalar; also counts the iterations."""
    net = Net()
    start = net.input("start", np.array(3.0, np.float32))
    limit = _scalar(net, 100.0, np.float32)
    loop = net.network.add_loop()
    value = loop.add_recurrence(start)
    steps = loop.add_recurrence(_scalar(net, 0))
    below = net.network.add_elementwise(value.get_output(0), limit, trt.ElementWiseOperation.LESS)
    loop.add_trip_limit(below.get_output(0), trt.TripLimit.WHILE)
    doubled = net.network.add_elementwise(value.get_output(0), _scalar(net, 2.0, np.float32), PROD)
    counted = net.network.add_elementwise(steps.get_output(0), _scalar(net, 1), SUM)
    value.set_input(1, doubled.get_output(0))
    steps.set_input(1, counted.get_output(0))
    final = net.output(loop.add_loop_output(value.get_output(0), trt.LoopOutput.LAST_VALUE, 0))
    count = net.output(loop.add_loop_output(steps.get_output(0), trt.LoopOutput.LAST_VALUE, 0))
    for begin in (3.0, 100.0, 0.5, 99.0):
        expected, n = begin, 0
        while expected < 100:
            expected, n = expected * 2, n + 1
        out = run(net.network, {"start": np.array(begin, np.float32)}).outputs
        assert out[final.name] == pytest.approx(expected) and out[count.name] == n


def test_count_and_while_limits_stop_at_whichever_ends_first():
    net = Net()
    start = net.input("start", np.array(1.0, np.float32))
    loop = net.network.add_loop()
    value = loop.add_recurrence(start)
    loop.add_trip_limit(_scalar(net, 3), trt.TripLimit.COUNT)
    below = net.network.add_elementwise(
        value.get_output(0), _scalar(net, 1e6, np.float32), trt.ElementWiseOperation.LESS
    )
    loop.add_trip_limit(below.get_output(0), trt.TripLimit.WHILE)
    tenfold = net.network.add_elementwise(value.get_output(0), _scalar(net, 10.0, np.float32), PROD)
    value.set_input(1, tenfold.get_output(0))
    final = net.output(loop.add_loop_output(value.get_output(0), trt.LoopOutput.LAST_VALUE, 0))
    assert run(net.network, {"start": np.array(1.0, np.float32)}).outputs[final.name] == 1000.0  # COUNT first
    assert run(net.network, {"start": np.array(5e4, np.float32)}).outputs[final.name] == 5e6  # WHILE first


def test_zero_trip_loop_gives_initial_value_and_zero_rows():
    net = Net()
    x = net.input("x", np.ones((2, 3), np.float32))
    h0 = net.input("h0", np.full(3, 7.0, np.float32))
    _, last, stacked = _running_sum_loop(net, x, h0, 0)
    result = run(net.network, net.feeds)  # the body never runs, so its tensors are not captured
    np.testing.assert_array_equal(result.outputs[last.name], np.full(3, 7.0))
    assert result.outputs[stacked.name].shape == (0, 3)


def test_nested_loops_sum_a_matrix_row_by_row():
    x_value = rand(np.random.default_rng(3), 3, 4)
    net = Net()
    x = net.input("x", x_value)
    outer = net.network.add_loop()
    outer.name = "rows"
    outer.add_trip_limit(_scalar(net, 3), trt.TripLimit.COUNT)
    row = outer.add_iterator(x, 0, False)
    total = outer.add_recurrence(_scalar(net, 0.0, np.float32))
    inner = net.network.add_loop()
    inner.name = "columns"
    inner.add_trip_limit(_scalar(net, 4), trt.TripLimit.COUNT)
    item = inner.add_iterator(row.get_output(0), 0, False)
    acc = inner.add_recurrence(total.get_output(0))
    acc.set_input(1, net.network.add_elementwise(acc.get_output(0), item.get_output(0), SUM).get_output(0))
    row_total = inner.add_loop_output(acc.get_output(0), trt.LoopOutput.LAST_VALUE, 0)
    total.set_input(1, row_total.get_output(0))
    result = net.output(outer.add_loop_output(total.get_output(0), trt.LoopOutput.LAST_VALUE, 0))
    assert net.run().outputs[result.name] == pytest.approx(float(x_value.sum()), rel=1e-5)


def test_loop_networks_are_accepted_by_tensorrt():
    net = Net()
    x = net.input("x", np.ones((4, 2), np.float32))
    h0 = net.input("h0", np.ones(2, np.float32))
    _running_sum_loop(net, x, h0, 4)
    builder = create_builder()
    assert builder.build_serialized_network(net.network, builder.create_builder_config()) is not None


def test_failure_inside_a_loop_names_the_layer():
    net = Net()
    x = net.input("x", np.ones((2, 3), np.float32))
    shape = net.input("shape", np.array([4, 4], np.int64))
    loop = net.network.add_loop()
    loop.add_trip_limit(_scalar(net, 2), trt.TripLimit.COUNT)
    it = loop.add_iterator(x, 0, False)
    bad = net.network.add_shuffle(it.get_output(0))
    bad.set_input(1, shape)
    bad.name = "bad_reshape"
    out = loop.add_loop_output(bad.get_output(0), trt.LoopOutput.CONCATENATE, 0)
    out.set_input(1, _scalar(net, 2))
    net.output(out)
    with pytest.raises(LayerExecutionError, match=r"'bad_reshape' \(SHUFFLE\)"):
        run(net.network, net.feeds)


def test_iterator_past_its_axis_is_refused_naming_the_loop():
    net = Net()
    x = net.input("x", np.ones((2, 3), np.float32))
    loop = net.network.add_loop()
    loop.name = "too_long"
    loop.add_trip_limit(_scalar(net, 5), trt.TripLimit.COUNT)
    it = loop.add_iterator(x, 0, False)
    out = loop.add_loop_output(it.get_output(0), trt.LoopOutput.CONCATENATE, 0)
    out.set_input(1, _scalar(net, 5))
    net.output(out)
    with pytest.raises(UnsupportedLayerError, match=r"loop 'too_long'.*slice 2 of an axis of length 2"):
        run(net.network, net.feeds)


# --------------------------------------------------------------------------- conditionals


def _if_else(net: Net, flag, a, b):
    """if flag: a * 2 (shape of a) else: b + 1 (shape of b); only the chosen branch may run."""
    cond = net.network.add_if_conditional()
    cond.name = "branch"
    cond.set_condition(flag)
    a_in, b_in = cond.add_input(a), cond.add_input(b)
    two = net.constant(np.full((1,) * len(a.shape), 2, np.float32))
    one = net.constant(np.full((1,) * len(b.shape), 1, np.float32))
    then = net.network.add_elementwise(a_in.get_output(0), two, PROD)
    otherwise = net.network.add_elementwise(b_in.get_output(0), one, SUM)
    then.name, otherwise.name = "then", "otherwise"
    return cond.add_output(then.get_output(0), otherwise.get_output(0))


@pytest.mark.parametrize("flag", [True, False])
def test_if_else_picks_the_branch(flag):
    net = Net()
    a_value, b_value = rand(np.random.default_rng(1), 2, 3), rand(np.random.default_rng(2), 2, 3)
    out = _if_else(net, net.input("flag", np.array(flag)), net.input("a", a_value), net.input("b", b_value))
    expected = a_value * 2 if flag else b_value + 1
    net.output(out)
    result = run(net.network, net.feeds, capture=True)
    np.testing.assert_allclose(result.outputs[out.get_output(0).name], expected, rtol=1e-6)
    assert ("then" in result.layers) == flag and ("otherwise" in result.layers) != flag


def test_if_else_runs_only_the_chosen_branch():
    """The false branch would fail (bad reshape); choosing true must not run it."""
    net = Net()
    flag = net.input("flag", np.array(True))
    x = net.input("x", np.ones((2, 3), np.float32))
    shape = net.input("shape", np.array([5, 5], np.int64))
    cond = net.network.add_if_conditional()
    cond.set_condition(flag)
    inside = cond.add_input(x)
    bad = net.network.add_shuffle(inside.get_output(0))
    bad.set_input(1, shape)
    good = net.network.add_identity(inside.get_output(0))
    out = net.output(cond.add_output(good.get_output(0), bad.get_output(0)))
    assert run(net.network, net.feeds).outputs[out.name].shape == (2, 3)
    with pytest.raises(LayerExecutionError, match="SHUFFLE"):
        run(net.network, {**net.feeds, "flag": np.array(False)})


def test_last_value_of_a_body_tensor_is_its_value_in_the_last_iteration():
    """TensorRT's builder wants LAST_VALUE on a recurrence; on another body tensor the executor gives its last value."""
    net = Net()
    x = net.input("x", np.arange(4, dtype=np.float32))
    loop = net.network.add_loop()
    loop.add_trip_limit(_scalar(net, 4), trt.TripLimit.COUNT)
    item = loop.add_iterator(x, 0, False)
    doubled = net.network.add_elementwise(item.get_output(0), _scalar(net, 2.0, np.float32), PROD)
    out = net.output(loop.add_loop_output(doubled.get_output(0), trt.LoopOutput.LAST_VALUE, 0))
    assert run(net.network, net.feeds).outputs[out.name] == 6.0

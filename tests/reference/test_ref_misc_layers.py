"""FP4 and dynamic quantization, ragged softmax, assertions, collectives, plugins, and 0-d results."""

from __future__ import annotations

import dataclasses

import ml_dtypes
import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator
from refhelpers import FEW, Net, close, rand, t

from netdef.backend import trt
from netdef.errors import LayerExecutionError
from netdef.reference import ReferenceExecutor, register_plugin, run, supported_layer_types, unregister_plugin
from netdef.reference.plugins import plugin_name


def _onnx_fp4_roundtrip(x: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """ONNX QuantizeLinear to FLOAT4E2M1 then DequantizeLinear (opset 23), by onnx.reference."""
    zero = helper.make_tensor("zero", TensorProto.FLOAT4E2M1, list(scale.shape), np.zeros(scale.size).tolist())
    block = {} if scale.ndim == 0 else {"axis": -1, "block_size": x.shape[-1] // scale.shape[-1]}
    nodes = [helper.make_node("QuantizeLinear", ["x", "s", "zero"], ["q"], **block),
             helper.make_node("DequantizeLinear", ["q", "s", "zero"], ["y"], **block)]  # fmt: skip
    graph = helper.make_graph(
        nodes, "fp4",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, x.shape),
         helper.make_tensor_value_info("s", TensorProto.FLOAT, scale.shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], initializer=[zero],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 23)])
    return ReferenceEvaluator(model).run(None, {"x": x, "s": scale})[0]


@FEW
@given(st.booleans(), st.integers(0, 2**16))
def test_quantize_to_fp4_matches_onnx_quantize_linear(blocked, seed):
    rng = np.random.default_rng(seed)
    x = rand(rng, 4, 32, scale=3.0)
    scale = (rng.uniform(0.2, 1.0, size=(4, 2)) if blocked else np.array(rng.uniform(0.2, 1.0))).astype(np.float32)
    net = Net()
    layer = net.network.add_quantize(net.input("x", x), net.constant(scale), trt.fp4)
    q = net.compute(layer)
    assert q.dtype == np.dtype(ml_dtypes.float4_e2m1fn)
    dequantized = q.astype(np.float32) * (np.repeat(scale, 16, axis=1) if blocked else scale)
    np.testing.assert_array_equal(dequantized, _onnx_fp4_roundtrip(x, scale))


def test_dynamic_quantize_nvfp4_and_mxfp8_from_the_block_amax():
    rng = np.random.default_rng(3)
    x = rand(rng, 4, 64, scale=4.0)
    x[1, :16] = 0  # an all-zero block
    global_scale = np.float32(0.05)
    net = Net()
    layer = net.network.add_dynamic_quantize(net.input("x", x), 1, 16, trt.fp4, trt.fp8)
    layer.set_input(1, net.constant(np.array(global_scale)))
    net.output(layer, 0), net.output(layer, 1)
    out = net.run()
    q, scales = out.outputs[layer.get_output(0).name], out.outputs[layer.get_output(1).name]
    assert q.shape == (4, 64) and scales.shape == (4, 4) and scales.dtype == np.dtype(ml_dtypes.float8_e4m3fn)
    amax = np.abs(x.reshape(4, 4, 16)).max(axis=-1)
    expected_scales = (amax / 6 / global_scale).astype(ml_dtypes.float8_e4m3fn)
    np.testing.assert_array_equal(scales.astype(np.float32), expected_scales.astype(np.float32))
    step = np.repeat(scales.astype(np.float32) * global_scale, 16, axis=1)
    reconstructed = q.astype(np.float32) * step
    assert np.all(reconstructed[1, :16] == 0)
    # every value within half a FP4 step (of the largest spacing, 2 units) of its block scale, or saturated
    assert np.all(np.abs(reconstructed - x) <= step * 1.0 + np.abs(x) * 0.07)

    net = Net()
    layer = net.network.add_dynamic_quantize_v2(net.input("x", x), (1, 32), trt.fp8, trt.e8m0)
    net.output(layer, 0), net.output(layer, 1)
    out = net.run()
    q, scales = out.outputs[layer.get_output(0).name], out.outputs[layer.get_output(1).name]
    scales = scales.astype(np.float32)
    amax = np.abs(x.reshape(4, 2, 32)).max(axis=-1)
    positive = amax > 0
    assert np.all(np.log2(scales[positive]) == np.ceil(np.log2(amax[positive] / 448)))  # powers of two
    np.testing.assert_array_equal(q, (x / np.repeat(scales, 32, axis=1)).astype(ml_dtypes.float8_e4m3fn))


@FEW
@given(st.integers(1, 3), st.integers(1, 6), st.integers(0, 2**16))
def test_ragged_softmax_matches_torch_on_each_row_prefix(rows, length, seed):
    rng = np.random.default_rng(seed)
    x = rand(rng, 1, rows, length)
    bounds = rng.integers(0, length + 1, size=(1, rows, 1)).astype(np.int32)
    net = Net()
    got = net.compute(net.network.add_ragged_softmax(net.input("x", x), net.input("bounds", bounds)))
    for z in range(rows):
        n = int(bounds[0, z, 0])
        close(got[0, z, :n], torch.softmax(t(x[0, z, :n]), dim=0), rtol=1e-6, atol=1e-7)
        assert np.all(got[0, z, n:] == 0)


def test_failing_assertion_names_the_layer_and_message_and_runs_without_outputs_depending_on_it():
    net = Net()
    x = net.input("x", np.array([1.0, -2.0, 3.0], np.float32))
    positive = net.network.add_elementwise(x, net.constant(np.zeros(3, np.float32)), trt.ElementWiseOperation.GREATER)
    check = net.network.add_assertion(positive.get_output(0), "inputs must be positive")
    check.name = "positive_check"
    net.output(net.network.add_identity(x))
    with pytest.raises(LayerExecutionError, match=r"'positive_check' \(ASSERTION\).*inputs must be positive.*\(1,\)"):
        run(net.network, net.feeds)
    assert run(net.network, {"x": np.ones(3, np.float32)}).outputs


def test_dist_collective_runs_the_single_rank_case():
    net = Net()
    x = net.input("x", rand(np.random.default_rng(0), 2, 3))
    layer = net.network.add_dist_collective(x, trt.CollectiveOperation.ALL_REDUCE, trt.ReduceOperation.SUM, -1, [])
    np.testing.assert_array_equal(net.compute(layer), net.feeds["x"])


class _PluginLayerStandIn:
    """tensorrt_rtx has no add_plugin*: a plugin layer's readable surface (its plugin's name), nothing more."""

    def __init__(self, name):
        self.plugin = type("Plugin", (), {"plugin_type": name})()


def test_plugins_are_refused_naming_the_plugin_unless_registered():
    from netdef.reference.registry import lookup

    op = lookup(trt.LayerType.PLUGIN_V2)
    layer = _PluginLayerStandIn("MyGelu")
    assert plugin_name(layer) == "MyGelu"
    assert "register_plugin('MyGelu', fn)" in op.refusal(layer)
    register_plugin("MyGelu", lambda inputs, plugin: [inputs[0] * 2])
    try:
        assert op.refusal(layer) is None
        node = type("N", (), {"layer": layer})()
        np.testing.assert_array_equal(op.fn(node, [np.ones(2, np.float32)])[0], [2, 2])
    finally:
        unregister_plugin("MyGelu")
    assert op.refusal(layer) is not None
    with pytest.raises(TypeError, match="needs a function"):
        register_plugin("MyGelu", None)
    assert trt.LayerType.PLUGIN_V2 not in supported_layer_types()


def test_0d_shuffle_and_scalar_gather_stay_0d():
    net = Net()
    x = net.input("x", np.array([5.0], np.float32))
    squeeze = net.network.add_shuffle(x)
    squeeze.reshape_dims = ()
    shape = net.network.add_shape(net.input("m", np.zeros((2, 7), np.float32)))
    last = net.network.add_gather(shape.get_output(0), net.constant(np.array(-1, np.int64)), 0)
    net.output(squeeze), net.output(last)
    out = net.run().outputs
    assert out[squeeze.get_output(0).name].shape == () and out[last.get_output(0).name].shape == ()
    assert int(out[last.get_output(0).name]) == 7


def test_any_exception_inside_a_layer_is_a_layer_execution_error():
    net = Net()
    x = net.input("x", np.ones((2, 3), np.float32))
    layer = net.network.add_unary(x, trt.UnaryOperation.EXP)
    layer.name = "boom"
    net.output(layer)
    executor = ReferenceExecutor(net.network)

    def explode(node, inputs):
        raise TypeError("not a number")

    executor.nodes[0].op = dataclasses.replace(executor.nodes[0].op, fn=explode)
    with pytest.raises(LayerExecutionError, match=r"'boom' \(UNARY\) failed on inputs \[float32\[2, 3\]\]: TypeError"):
        executor.run(net.feeds)

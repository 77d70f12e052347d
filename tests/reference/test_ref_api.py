"""The executor's public API: run/ReferenceExecutor/Result, input validation, errors, semantics, describe."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest
from refhelpers import Net, rand

from netdef.backend import trt
from netdef.errors import LayerExecutionError, NetdefError, NetworkInputError, UnsupportedLayerError
from netdef.reference import (
    ReferenceExecutor,
    describe_layer,
    documentation,
    registry,
    run,
    semantics,
    supported_layer_types,
)


def _two_input_network():
    net = Net()
    a = net.network.add_input("a", trt.float32, (-1, 3))
    b = net.network.add_input("b", trt.float32, (1, 3))
    layer = net.network.add_elementwise(a, b, trt.ElementWiseOperation.SUM)
    layer.name = "add"
    layer.get_output(0).name = "sum"
    net.network.mark_output(layer.get_output(0))
    return net


def test_run_returns_outputs_and_capture_returns_every_tensor_and_layer():
    net = _two_input_network()
    a, b = np.ones((4, 3), np.float32), np.arange(3, dtype=np.float32).reshape(1, 3)
    plain = run(net.network, {"a": a, "b": b})
    assert list(plain.outputs) == ["sum"] and plain.tensors == {} and plain.layers == {}
    np.testing.assert_array_equal(plain.outputs["sum"], a + b)
    captured = run(net.network, {"a": a, "b": b}, capture=True)
    assert set(captured.tensors) == {"a", "b", "sum"}
    np.testing.assert_array_equal(captured.layers["add"][0], a + b)


def test_executor_runs_many_times_with_dynamic_batch():
    net = _two_input_network()
    executor = ReferenceExecutor(net.network)
    b = np.ones((1, 3), np.float32)
    for batch in (1, 5, 2):
        a = np.full((batch, 3), batch, np.float32)
        np.testing.assert_array_equal(executor.run({"a": a, "b": b}).outputs["sum"], a + 1)


def test_missing_inputs_are_listed_together():
    net = _two_input_network()
    with pytest.raises(NetworkInputError, match=r"missing inputs: 'a', 'b'"):
        run(net.network, {})


def test_unknown_input_is_named():
    net = _two_input_network()
    feeds = {"a": np.ones((1, 3), np.float32), "b": np.ones((1, 3), np.float32), "c": np.ones(1)}
    with pytest.raises(NetworkInputError, match=r"unknown inputs: 'c'"):
        run(net.network, feeds)


def test_wrong_shape_and_dtype_name_the_input_with_expected_and_actual():
    net = _two_input_network()
    with pytest.raises(NetworkInputError) as caught:
        run(net.network, {"a": np.ones((2, 4), np.float32), "b": np.ones((1, 3), np.float64)})
    message = str(caught.value)
    assert "input 'a': expected shape (?, 3), got (2, 4)" in message
    assert "input 'b': expected dtype float32, got float64" in message
    assert isinstance(caught.value, NetdefError)


def test_wrong_rank_is_reported():
    net = _two_input_network()
    with pytest.raises(NetworkInputError, match=r"input 'b': expected shape \(1, 3\), got \(3,\)"):
        run(net.network, {"a": np.ones((1, 3), np.float32), "b": np.ones(3, np.float32)})


def test_bfloat16_input_needs_ml_dtypes_bfloat16():
    net = Net()
    x = net.network.add_input("x", trt.bfloat16, (2,))
    net.network.mark_output(net.network.add_identity(x).get_output(0))
    with pytest.raises(NetworkInputError, match="expected dtype bfloat16, got float32"):
        run(net.network, {"x": np.ones(2, np.float32)})
    out = run(net.network, {"x": np.ones(2, ml_dtypes.bfloat16)}).outputs
    assert next(iter(out.values())).dtype == np.dtype(ml_dtypes.bfloat16)


def test_unsupported_layer_names_the_layer_and_its_type(monkeypatch):
    """A type without a registry entry (here LRN, taken out for the test) is refused, naming each layer."""
    registry.lookup(trt.LayerType.LRN)  # load the registry before taking the entry out
    monkeypatch.delitem(registry._REGISTRY, trt.LayerType.LRN)
    net = Net()
    x = net.input("x", rand(np.random.default_rng(0), 1, 4, 3, 3))
    lrn = net.network.add_lrn(x, 3, 1e-4, 0.75, 1.0)
    lrn.name = "my_lrn"
    net.output(lrn)
    with pytest.raises(UnsupportedLayerError, match=r"'my_lrn' of type LRN"):
        ReferenceExecutor(net.network)


def test_unsupported_setting_names_the_layer():
    net = Net()
    x = net.input("x", np.zeros((2, 3), np.float32))
    layer = net.network.add_slice(x, (0, 0), (2, 5), (1, 1))
    layer.name = "overreach"
    net.output(layer)
    with pytest.raises(UnsupportedLayerError, match=r"'overreach' \(SLICE\).*outside"):
        run(net.network, net.feeds)


def test_layer_failure_names_the_layer():
    net = Net()
    x = net.input("x", np.zeros((2, 3), np.float32))
    layer = net.network.add_shuffle(x)
    layer.set_input(1, net.network.add_input("shape", trt.int64, (2,)))
    layer.name = "bad_reshape"
    net.output(layer)
    with pytest.raises(LayerExecutionError, match=r"'bad_reshape' \(SHUFFLE\)"):
        run(net.network, {"x": np.zeros((2, 3), np.float32), "shape": np.array([4, 4], np.int64)})


def test_semantics_is_the_first_docstring_line_for_every_supported_type():
    for kind in supported_layer_types():
        line = semantics(kind)
        assert line and "\n" not in line
        assert documentation(kind).startswith(line)
    assert semantics("convolution") == semantics(trt.LayerType.CONVOLUTION)
    assert "Local response normalization" in semantics(trt.LayerType.LRN)
    with pytest.raises(ValueError):
        semantics("no_such_layer")


def test_required_layer_types_are_supported():
    required = {
        "CONVOLUTION",
        "DECONVOLUTION",
        "POOLING",
        "ACTIVATION",
        "SOFTMAX",
        "MATRIX_MULTIPLY",
        "CONSTANT",
        "ELEMENTWISE",
        "UNARY",
        "SCALE",
        "REDUCE",
        "SHUFFLE",
        "CONCATENATION",
        "SLICE",
        "CAST",
        "IDENTITY",
        "NORMALIZATION",
        "RESIZE",
        "PADDING",
        "QUANTIZE",
        "DEQUANTIZE",
    }
    assert required <= {kind.name for kind in supported_layer_types()}


def test_describe_layer_reads_parameters_back_from_a_plain_ilayer():
    net = Net()
    x = net.input("x", np.zeros((1, 3, 8, 8), np.float32))
    conv = net.network.add_convolution_nd(x, 4, (3, 3), net.keep(np.ones((4, 3, 3, 3), np.float32)))
    conv.name = "conv"
    conv.stride_nd = (2, 2)
    conv.num_groups = 1
    shuffle = net.network.add_shuffle(conv.get_output(0))
    shuffle.first_transpose = (0, 2, 3, 1)
    plain = net.network.get_layer(0)
    info = describe_layer(plain)
    assert info["name"] == "conv" and info["type"] == "CONVOLUTION"
    assert info["semantics"] == semantics(trt.LayerType.CONVOLUTION)
    assert info["inputs"][0] == {"name": "x", "shape": (1, 3, 8, 8), "dtype": "FLOAT"}
    assert info["outputs"][0]["shape"] == (1, 4, 3, 3)
    assert info["params"]["stride_nd"] == (2, 2) and info["params"]["padding_mode"] == "EXPLICIT_ROUND_DOWN"
    assert describe_layer(net.network.get_layer(1))["params"]["first_transpose"] == (0, 2, 3, 1)


def test_constant_outputs_cannot_corrupt_later_runs():
    net = Net()
    layer = net.network.add_constant((2,), net.keep(np.array([1.0, 2.0], np.float32)))
    net.output(layer)
    executor = ReferenceExecutor(net.network)
    first = next(iter(executor.run({}).outputs.values()))
    with pytest.raises(ValueError):
        first[0] = 100.0
    np.testing.assert_array_equal(next(iter(executor.run({}).outputs.values())), [1.0, 2.0])


def test_a_netdef_network_passed_directly_stays_alive_while_it_runs():
    """``run(arch.build_network(...), x)``: nothing else holds the Network, whose weights TensorRT only points at."""
    import gc

    import architectures
    from netdef.weights import Checkpoint

    root = __import__("pathlib").Path(__file__).resolve().parents[2]
    checkpoint = Checkpoint.load(root / "weights" / "lenet_digits.safetensors")
    x = np.random.default_rng(0).random((2, 1, 28, 28), dtype=np.float32)
    kept = architectures.get("lenet").build_network(checkpoint, batch=2)
    expected = run(kept, {"input": x}).outputs["prob"]
    executor = ReferenceExecutor(architectures.get("lenet").build_network(checkpoint, batch=2))
    gc.collect()
    np.testing.assert_array_equal(executor.run({"input": x}).outputs["prob"], expected)

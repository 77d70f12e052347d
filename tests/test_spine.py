"""The network's parts and single sources: the dtype table, the weight table, the tensor spec and input matcher."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from netdef import dtypes
from netdef.backend import trt
from netdef.errors import CalibrationError, NetworkDefinitionError, NetworkInputError
from netdef.network import Network
from netdef.tensorspec import TensorSpec, match_inputs, shape_text

# --------------------------------------------------------------------------- dtypes


@pytest.mark.parametrize("row", [d for d in dtypes.DTYPES if d.trt and hasattr(trt.DataType, d.trt)], ids=str)
def test_every_tensorrt_dtype_round_trips_through_numpy_and_its_names(row):
    trt_type = getattr(trt.DataType, row.trt)
    assert dtypes.lookup(trt_type) is row
    assert dtypes.trt_dtype(dtypes.numpy_dtype(trt_type)) == trt_type
    assert dtypes.dtype_name(trt_type) == row.name == dtypes.numpy_dtype(row.name).name
    assert dtypes.lookup(row.trt) is row  # TensorRT's own spelling ("HALF")
    if row.short:
        assert dtypes.lookup(row.short) is row


@pytest.mark.parametrize("row", [d for d in dtypes.DTYPES if d.safetensors], ids=str)
def test_safetensors_codes_round_trip(row):
    assert dtypes.from_safetensors(row.safetensors) == row.numpy
    assert dtypes.safetensors_code(row.numpy) == row.safetensors


@pytest.mark.parametrize("name", ["float32", "float16", "bfloat16", "float8_e4m3fn", "int64", "int8", "bool"])
def test_torch_dtypes_and_tensors_map_both_ways(name):
    torch_type = dtypes.torch_dtype(name)
    assert torch_type == getattr(torch, name) and dtypes.numpy_dtype(torch_type).name == name
    array = np.arange(6).reshape(2, 3).astype(dtypes.numpy_dtype(name))
    tensor = dtypes.numpy_to_torch(array)
    assert tensor.dtype == torch_type
    back = dtypes.torch_to_numpy(tensor)
    assert back.dtype == array.dtype and np.array_equal(back.view(np.uint8), array.view(np.uint8))


def test_is_float_and_unknown_dtypes():
    assert dtypes.is_float("bf16") and dtypes.is_float(trt.float16) and dtypes.is_float(np.float64)
    assert not dtypes.is_float(np.int8) and not dtypes.is_float(trt.bool)
    assert dtypes.is_integer("int4") and not dtypes.is_integer(np.bool_)
    with pytest.raises(dtypes.DTypeError, match="unknown dtype 'float7'"):
        dtypes.numpy_dtype("float7")
    with pytest.raises(dtypes.DTypeError, match="float64 has no TensorRT equivalent"):
        dtypes.trt_dtype(np.float64)
    with pytest.raises(dtypes.DTypeError, match="expected one of"):
        dtypes.parse_float("int8")


def test_ml_dtypes_is_imported_only_for_the_dtypes_that_need_it():
    code = (
        "import sys, numpy as np\n"
        "from netdef.network import Network\n"
        "net = Network({'w': np.ones(3, np.float32)}, precision='fp16')\n"
        "net.output(net.add(net.input('x', (1, 3)), net.parameter('w', (3,))), 'y')\n"
        "print('ml_dtypes' in sys.modules)\n"
        "from netdef.dtypes import bfloat16\n"
        "print('ml_dtypes' in sys.modules, bfloat16)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "True", "bfloat16"]


# --------------------------------------------------------------------------- the weight table


def _folded_network(rng, precision="fp32"):
    ckpt = {"conv.weight": rng.standard_normal((4, 3, 3, 3)).astype(np.float32)}
    ckpt |= {
        f"bn.{p}": rng.random(4).astype(np.float32) + 0.5 for p in ("weight", "bias", "running_mean", "running_var")
    }
    ckpt |= {"fc.weight": rng.standard_normal((2, 4)).astype(np.float32), "fc.bias": np.zeros(2, np.float32)}
    net = Network(ckpt, precision=precision)
    x = net.conv2d(net.input("x", (1, 3, 8, 8)), "conv", 4, 3, bias=False, bn="bn")
    x = net.adaptive_avg_pool2d(x, 4, name="pool")  # 6 -> 4 bins: constant averaging matrices
    x = net.linear(net.flatten(net.mean(x, (2, 3), keepdim=True)), "fc")
    net.output(net.gather(x, [1, 0], dim=1, name="pick"), "y")
    net.check()
    return net


def test_weight_table_entries_hold_role_sources_layer_and_dtype(rng):
    net = _folded_network(rng, "fp16")
    table = net.weight_table
    conv_w, conv_b = table["conv.weight"], table["conv.bias"]
    bn = [f"bn.{p}" for p in ("weight", "bias", "running_mean", "running_var")]
    assert (conv_w.role, conv_w.sources, conv_w.layer) == ("derived", ("conv.weight", *bn), "conv")
    assert (conv_b.role, conv_b.sources, conv_b.refittable) == ("derived", tuple(bn), True)
    fc = table["fc.weight"]
    assert (fc.role, fc.sources, fc.layer, fc.array.dtype) == ("checkpoint", ("fc.weight",), "fc.weight", np.float16)
    fixed = table.entries("fixed")
    assert {e.name for e in fixed} == {"pool.rows", "pool.columns", "pick.indices"}
    assert all(not e.refittable and e.sources == () for e in fixed)
    assert table["pick.indices"].array.dtype == np.int32  # integer constants keep their dtype
    assert net.weights.keys() == {"conv.weight", "conv.bias", "fc.weight", "fc.bias"}
    assert net.derived == {"conv.weight": ["conv.weight", *bn], "conv.bias": bn}
    meta = table.metadata()
    assert meta["weights"]["fc.weight"] == {"shape": [2, 4], "dtype": "float16"}
    assert meta["derived_weights"] == net.derived
    for entry in table:  # TensorRT knows each by its name
        assert net.trt_network.set_weights_name(entry.trt, entry.name)


def test_int8_scales_are_table_entries_of_role_scale(rng):
    net = _folded_network(rng)
    scales = {name: 0.02 for name in net.quantization_points}
    int8 = Network(net.checkpoint, precision="int8", calibration=scales)
    x = int8.conv2d(int8.input("x", (1, 3, 8, 8)), "conv", 4, 3, bias=False, bn="bn")
    int8.output(x, "y")
    int8.check()
    assert {e.name for e in int8.weight_table.entries("scale")} == {"conv.input.scale", "conv.weight.scale"}
    assert set(int8.quantization_scales) == {"conv.input.scale", "conv.weight.scale"}
    assert int8.weight_table["conv.weight"].layer == "conv.weight"  # int8: the kernel is a constant layer


def test_weights_no_layer_uses_are_refused(rng):
    net = Network({})
    x = net.input("x", (1, 4))
    net._weights("orphan", np.ones(4, np.float32))
    with pytest.raises(NetworkDefinitionError, match="'orphan': TensorRT refused the name"):
        net.relu(x)
    net = Network({})
    net._weights("unused", np.ones(4, np.float32))
    with pytest.raises(NetworkDefinitionError, match=r"weights \['unused'\] were added but no layer uses them"):
        net.check()


# --------------------------------------------------------------------------- tensor spec and input matcher


def test_shape_text_forms():
    assert shape_text((-1, 1, 28, 28)) == "(?, 1, 28, 28)" and shape_text((3,)) == "(3,)"
    assert shape_text((-1, 3, 224, 224), compact=True) == "?x3x224x224" and shape_text((), compact=True) == "scalar"
    assert shape_text(None) == "unknown"


def test_matcher_names_casts_and_lists_every_problem():
    specs = [TensorSpec("image", "input", (-1, 1, 4, 4), np.dtype(np.float32))]
    matched = match_inputs(specs, np.zeros((2, 1, 4, 4), np.float64), source="x.npy")
    assert matched["image"].dtype == np.float32  # float data takes the declared float type
    with pytest.raises(NetworkInputError) as info:
        match_inputs(specs, np.zeros((1, 4, 4), np.float32), source="one.npy")
    assert str(info.value) == (
        "one.npy: input 'image': expected shape (?, 1, 4, 4), got (1, 4, 4) (4 dimensions, not 3): "
        "it looks like one sample: add the batch axis (x[None])"
    )
    with pytest.raises(NetworkInputError) as info:
        match_inputs(specs, {"img": np.zeros((1, 1, 4, 4), np.uint8)}, source="named.npz")
    assert info.value.problems == [
        "missing inputs: 'image'",
        "unknown inputs: 'img' (the network's inputs are ['image'])",
    ]
    with pytest.raises(NetworkInputError, match="expected dtype float32, got float64"):
        match_inputs(specs, np.zeros((2, 1, 4, 4)), casting="no")


def test_matcher_checks_sample_sets_for_calibration():
    specs = [
        TensorSpec("a", "input", (-1, 2), np.dtype(np.float32)),
        TensorSpec("b", "input", (-1, 3), np.dtype(np.float32)),
    ]
    data = {"a": np.zeros((4, 2), np.float32), "b": np.zeros((5, 2), np.int64)}
    with pytest.raises(CalibrationError) as info:
        match_inputs(specs, data, samples=True, error=CalibrationError)
    assert info.value.problems == [
        "input 'b': expected samples of shape (3,), got (2,)",
        "input 'b': expected dtype float32, got int64 (give floating point data, already preprocessed)",
        "inputs have different numbers of samples: [4, 5]",
    ]

"""netdef.reference.compare: layer-by-layer comparison against PyTorch and between two netdef networks.

The comparison must point at the first layer that is wrong: errors are injected into one layer of
the PyTorch model (or one weight of a network) and the report must name exactly that layer first.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from torch import nn
from torch_models import LeNet, randomize, state_dict_arrays, torchvision_twin

import architectures
from netdef.errors import ComparisonError, NetworkInputError
from netdef.network import Network
from netdef.reference.compare import (
    ComparisonReport,
    compare_networks,
    compare_with_torch,
    layer_error,
    random_inputs,
    torch_module_names,
)
from netdef.weights import Checkpoint

SIZE = 64  # ResNet-18 input side: small enough for the reference executor, layer4 still 2x2


@pytest.fixture(scope="module")
def lenet(lenet_weights):
    checkpoint = Checkpoint.load(lenet_weights)
    model = LeNet()
    model.load_state_dict({name: torch.from_numpy(np.array(checkpoint[name])) for name in checkpoint})
    return checkpoint, model.eval()


@pytest.fixture(scope="module")
def digits8():
    from netdef.datasets import digits_split

    return digits_split().x_test[:8]


@pytest.fixture(scope="module")
def resnet18():
    model = randomize(torchvision_twin("resnet18", num_classes=10), seed=3)
    checkpoint = state_dict_arrays(model)
    net = architectures.get("resnet18").build_network(checkpoint, input_shape=(3, SIZE, SIZE))
    return net, model, checkpoint


def images(n: int = 1, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, 3, SIZE, SIZE)).astype(np.float32)


# ---------------------------------------------------------------------------------------------- the error measure


def test_layer_error_basics():
    a = np.array([[1.0, -2.0], [3.0, 4.0]], np.float32)
    assert layer_error(a, a) == (0.0, 4.0, "")
    b = a.copy()
    b[1, 0] = 3.5
    assert layer_error(a, b) == (0.5, 4.0, "")
    nan = np.array([np.nan, np.inf, 1.0])
    assert layer_error(nan, nan.copy())[0] == 0.0  # same non-finite values agree
    assert layer_error(np.array([np.nan, np.inf, 1.0]), np.array([0.0, np.inf, 1.0]))[0] == math.inf
    assert layer_error(np.array([-np.inf]), np.array([np.inf]))[0] == math.inf
    max_abs, _, note = layer_error(a.reshape(4), a)
    assert max_abs == 0.0 and note == "reshaped (4,) to (2, 2)"
    max_abs, _, note = layer_error(a[:1], a)
    assert max_abs == math.inf and note == "shape (1, 2) vs (2, 2)"


@settings(max_examples=25, deadline=None)
@given(arrays(np.float32, st.integers(1, 12), elements=st.floats(-1e3, 1e3, width=32)), st.data())
def test_layer_error_is_the_largest_absolute_difference(expected, data):
    actual = data.draw(arrays(np.float32, expected.shape, elements=st.floats(-1e3, 1e3, width=32)))
    max_abs, scale, _ = layer_error(actual, expected)
    assert max_abs == float(np.max(np.abs(actual.astype(np.float64) - expected.astype(np.float64))))
    assert scale == float(np.max(np.abs(expected)))


# ---------------------------------------------------------------------------------------------- module names


def test_module_names_follow_scopes_and_folded_batch_norm(resnet18):
    net, model, _ = resnet18
    names = torch_module_names(net)
    assert names["layer1.0.bn1"] == "layer1.0.conv1"
    assert names["layer2.0.downsample.1"] == "layer2.0.downsample.0"
    assert names["bn1"] == "conv1"
    assert "layer1.0.conv1" not in names and "conv1" not in names  # pre-BatchNorm outputs do not exist
    assert names["layer1.0"] == "layer1.0.relu_1"  # a block's output is its last layer
    assert names["layer2.0.downsample"] == "layer2.0.downsample.0"
    assert names["fc"] == "fc.bias_add"
    batch_norms = {path for path, m in model.named_modules() if isinstance(m, nn.BatchNorm2d)}
    assert batch_norms <= set(names)


# ---------------------------------------------------------------------------------------------- against PyTorch


def test_resnet18_matches_pytorch_layer_by_layer(resnet18):
    net, model, _ = resnet18
    report = compare_with_torch(net, model, images(2, seed=1), rtol=1e-4)
    print(report)
    assert report.ok, report.summary()
    compared = {name for row in report.rows for name in row.counterpart.split(" = ")}
    batch_norms = {path for path, m in model.named_modules() if isinstance(m, nn.BatchNorm2d)}
    assert batch_norms <= compared  # every folded BatchNorm was compared with its convolution
    assert report["layer3.1.bn2"].layer == "layer3.1.conv2"
    assert {"layer1", "layer4", "avgpool", "fc", "maxpool"} <= compared
    assert not any("conv" in name and "no layer" in name for name in report.unmatched)  # folded convs are expected
    assert [row.index for row in report.rows] == sorted(row.index for row in report.rows)
    assert 0 < report.worst.max_rel <= 1e-4


def test_small_vit_compares_attention_tuple_outputs():
    """MultiheadAttention returns (output, weights): its first element is compared with the attention scope."""
    sizes = {"patch_size": 8, "num_layers": 2, "num_heads": 4, "hidden_dim": 64, "mlp_dim": 128}
    model = randomize(torchvision_twin("vit_b_16", num_classes=10, image_size=32, **sizes), seed=1)
    net = architectures.get("vit_b_16").build_network(state_dict_arrays(model), input_shape=(3, 32, 32), **sizes)
    x = np.random.default_rng(4).standard_normal((2, 3, 32, 32)).astype(np.float32)
    report = compare_with_torch(net, model, x, rtol=1e-4)
    compared = {name for row in report.rows for name in row.counterpart.split(" = ")}
    assert report.ok, report.summary()
    assert {f"encoder.layers.encoder_layer_{i}.self_attention" for i in (0, 1)} <= compared
    assert {"encoder.ln", "heads.head", "conv_proj"} <= compared
    assert not any("not a tensor" in name for name in report.unmatched)


def test_injected_batch_norm_error_is_the_first_failure(resnet18):
    """Perturb one BatchNorm statistic in PyTorch: its folded convolution is the first layer out of tolerance."""
    net, _, _ = resnet18
    model = randomize(torchvision_twin("resnet18", num_classes=10), seed=3)
    with torch.no_grad():
        model.layer3[0].bn2.running_mean[5] += 0.5
    report = compare_with_torch(net, model, images(1, seed=2), rtol=1e-4)
    first = report.first_failure
    print(report.summary())
    assert first is not None and first.layer == "layer3.0.conv2" and first.counterpart == "layer3.0.bn2"
    assert all(row.ok for row in report.rows if row.index < first.index)
    assert not report["layer4"].ok  # the error propagates downstream
    assert "FAIL <- first" in next(line for line in str(report).splitlines() if "layer3.0.bn2" in line)


@pytest.mark.parametrize(("parameter", "module"), [("conv2.weight", "conv2"), ("fc1.bias", "fc1")])
def test_injected_weight_error_in_lenet(lenet, digits8, parameter, module):
    checkpoint, _ = lenet
    net = architectures.get("lenet").build_network(checkpoint, batch=-1)
    model = LeNet()
    model.load_state_dict({name: torch.from_numpy(np.array(checkpoint[name])) for name in checkpoint})
    with torch.no_grad():
        model.get_parameter(parameter).view(-1)[7] += 0.05
    report = compare_with_torch(net, model.eval(), digits8, rtol=1e-5)
    assert report.first_failure.counterpart == module
    order = [row.counterpart for row in report.rows]
    assert all(row.ok for row in report.rows[: order.index(module)])
    assert not report.ok and report.failures[0] is report.first_failure


def test_mapping_overrides_and_errors(lenet, digits8):
    checkpoint, model = lenet
    net = architectures.get("lenet").build_network(checkpoint, batch=-1)
    report = compare_with_torch(net, model, digits8, rtol=1e-5, mapping={"fc2": None, "fc1": "fc1"})
    assert [row.counterpart for row in report.rows] == ["conv1", "conv2", "fc1"]
    assert report["fc1"].layer == "fc1"  # the matrix multiply before the bias: not fc1's output
    assert not report["fc1"].ok and report.first_failure.counterpart == "fc1"
    with pytest.raises(ComparisonError, match=r"mapping names layers the network lacks: \['nope'\]"):
        compare_with_torch(net, model, digits8, mapping={"fc1": "nope"})
    with pytest.raises(ComparisonError, match="no module of Sequential matches a layer of lenet fp32"):
        compare_with_torch(net, nn.Sequential(nn.Identity()), digits8)
    with pytest.raises(NetworkInputError, match=r"input 'input': expected shape \(\?, 1, 28, 28\), got \(8, 28, 28\)"):
        compare_with_torch(net, model, digits8[:, 0])


# ---------------------------------------------------------------------------------------------- netdef vs netdef


def test_identical_networks_agree_exactly(lenet, digits8):
    checkpoint, _ = lenet
    a = architectures.get("lenet").build_network(checkpoint, batch=-1)
    b = architectures.get("lenet").build_network(checkpoint, batch=-1)
    report = compare_networks(a, b, digits8, rtol=0.0)
    assert report.ok and report.unmatched == []
    assert len(report.rows) == a.num_layers
    assert all(row.max_abs == 0.0 for row in report.rows + report.outputs)


def test_fp16_against_fp32_matches_layers_by_name(lenet, digits8):
    checkpoint, _ = lenet
    half = architectures.get("lenet").build_network(checkpoint, precision="fp16", batch=-1)
    full = architectures.get("lenet").build_network(checkpoint, batch=-1)
    report = compare_networks(half, full, digits8)
    print(report)
    assert report.title == "lenet fp16 vs lenet fp32"
    assert {"input.cast (only in lenet fp16)", "prob.cast (only in lenet fp16)"} == set(report.unmatched)
    assert [row.layer for row in report.outputs] == ["prob"]
    assert all(row.max_abs > 0 for row in report.rows if row.type in ("CONVOLUTION", "MATRIX_MULTIPLY"))
    assert report.ok  # default rtol 1e-2
    strict = compare_networks(half, full, digits8, rtol=1e-4)
    assert strict.first_failure.layer == "conv1"  # fp16 rounding shows in the first computing layer


def test_perturbed_weight_is_the_first_failing_layer(lenet, digits8):
    checkpoint, _ = lenet
    changed = {name: np.array(checkpoint[name]) for name in checkpoint}
    changed["conv2.weight"][3, 4, 2, 2] += 0.1
    good = architectures.get("lenet").build_network(checkpoint, batch=-1)
    bad = architectures.get("lenet").build_network(changed, batch=-1)
    report = compare_networks(bad, good, digits8, rtol=1e-6)
    assert report.first_failure.layer == "conv2"
    assert [row.layer for row in report.rows if not row.ok][:3] == ["conv2", "max_pool_1", "flatten"]
    data = json.loads(json.dumps(report.as_dict()))
    assert data["first_failure"] == "conv2" and len(data["rows"]) == len(report.rows)


def test_network_comparison_errors():
    def tiny(name: str, inputs: int = 1) -> Network:
        net = Network({}, name=name)
        xs = [net.input(f"x{i}", (2, 3)) for i in range(inputs)]
        y = xs[0] if inputs == 1 else net.add(xs[0], xs[1], name="sum")
        net.output(net.relu(y, name=f"{name}_relu"), "y")
        return net

    x = np.ones((2, 3), np.float32)
    with pytest.raises(ComparisonError, match="a fp32 and b fp32 have no layer name in common"):
        compare_networks(tiny("a"), tiny("b"), x)
    with pytest.raises(ComparisonError, match=r"the network has 2 inputs \['x0', 'x1'\]: give a mapping name -> array"):
        compare_networks(tiny("c", 2), tiny("c", 2), x)
    report = compare_networks(tiny("c", 2), tiny("c", 2), {"x0": x, "x1": -x})
    assert isinstance(report, ComparisonReport) and report.ok


def test_random_inputs_fill_dynamic_batch(lenet):
    checkpoint, _ = lenet
    net = architectures.get("lenet").build_network(checkpoint, batch=-1)
    first, again = random_inputs(net, batch=3, seed=5), random_inputs(net, batch=3, seed=5)
    assert first["input"].shape == (3, 1, 28, 28) and first["input"].dtype == np.float32
    assert np.array_equal(first["input"], again["input"])
    assert not np.array_equal(first["input"], random_inputs(net, batch=3, seed=6)["input"])

"""INT8 explicit quantization: Q/DQ placement, calibration methods, the calibration cache, accuracy, builds, CLI.

Accuracy is measured on the CPU with the NumPy reference executor (which emulates Q/DQ: round half to
even, clamp to [-128, 127]); building goes through TensorRT-RTX on the CPU; running the engine needs a
supported GPU and skips with the reason otherwise.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from typer.testing import CliRunner

from architectures import get
from netdef import backend
from netdef.backend import trt
from netdef.calibration import (
    CACHE_FORMAT,
    Calibration,
    calibrate,
    entropy_amax,
    entropy_divergences,
    histogram,
    load_or_calibrate,
    percentile_amax,
    weights_fingerprint,
)
from netdef.errors import CalibrationError, CheckpointError, NetworkDefinitionError
from netdef.network import Network
from netdef.network.quantization import fake_quantize, weight_scales
from netdef.reference import ReferenceExecutor
from netdef.reference.readback import layer_type
from netdef.weights import Checkpoint

CAPS = backend.capabilities()
LT = trt.LayerType


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def digits():
    from netdef.datasets import digits_split

    return digits_split()


@pytest.fixture(scope="module")
def lenet_ckpt(lenet_weights):
    return Checkpoint.load(lenet_weights)


@pytest.fixture(scope="module")
def lenet_fp32(lenet_ckpt):
    return get("lenet").build_network(lenet_ckpt, precision="fp32")


@pytest.fixture(scope="module")
def fp32_test_probs(lenet_fp32, digits):
    return ReferenceExecutor(lenet_fp32.trt_network).run({"input": digits.x_test}).outputs["prob"]


@pytest.fixture(scope="module")
def lenet_calibrations(lenet_fp32, digits):
    """Each method calibrated on all 1,437 training images (none of the held-out ones)."""
    return {m: calibrate(lenet_fp32, digits.x_train, m, batch_size=512) for m in ("max", "percentile", "entropy")}


def _unit_scales(network: Network) -> dict[str, float]:
    return {name: 0.01 for name in network.quantization_points}


def _lenet_int8(ckpt, calibration):
    return get("lenet").build_network(ckpt, precision="int8", calibration=calibration)


def _producers(net) -> dict[str, object]:
    producers = {}
    for i in range(net.num_layers):
        layer = net.get_layer(i)
        for j in range(layer.num_outputs):
            producers[layer.get_output(j).name] = layer
    return producers


def _constant_values(layer) -> np.ndarray:
    layer.__class__ = trt.IConstantLayer
    return np.asarray(layer.weights).reshape(tuple(layer.shape))


def _cast(layer, cls):
    layer.__class__ = cls
    return layer


# --------------------------------------------------------------------------- Q/DQ placement


def test_qdq_sits_on_both_inputs_of_every_conv_and_matmul(lenet_ckpt, lenet_fp32):
    net8 = _lenet_int8(lenet_ckpt, _unit_scales(lenet_fp32))
    net = net8.trt_network
    producers = _producers(net)
    weighted = [net.get_layer(i) for i in range(net.num_layers)]
    weighted = [layer for layer in weighted if layer_type(layer) in (LT.CONVOLUTION, LT.MATRIX_MULTIPLY)]
    assert [layer.name for layer in weighted] == ["conv1", "conv2", "fc1", "fc2"]
    for layer in weighted:
        name = layer.name
        act_dq, w_dq = producers[layer.get_input(0).name], producers[layer.get_input(1).name]
        assert (act_dq.name, w_dq.name) == (f"{name}.input.dequantize", f"{name}.weight.dequantize")
        assert layer_type(act_dq) == layer_type(w_dq) == LT.DEQUANTIZE
        act_q, w_q = producers[act_dq.get_input(0).name], producers[w_dq.get_input(0).name]
        assert layer_type(act_q) == layer_type(w_q) == LT.QUANTIZE
        assert act_q.get_output(0).dtype == w_q.get_output(0).dtype == trt.int8
        assert act_dq.get_output(0).dtype == w_dq.get_output(0).dtype == trt.float32
        assert layer.get_output(0).dtype == trt.float32  # tensors between weighted layers stay fp32
        # the activation Q reads the same tensor the fp32 network feeds this layer (the calibration key)
        assert net8.quantization_points[act_q.get_input(0).name] == [name]
        # both Q and DQ read one named scale constant: a scalar for activations, per channel for weights
        assert act_q.get_input(1).name == act_dq.get_input(1).name == f"{name}.input.scale"
        assert w_q.get_input(1).name == w_dq.get_input(1).name == f"{name}.weight.scale"
        assert _constant_values(producers[f"{name}.input.scale"]).shape == ()
        weight_const = producers[w_q.get_input(0).name]
        assert (layer_type(weight_const), weight_const.name) == (LT.CONSTANT, f"{name}.weight")
        weight = net8.weights[f"{name}.weight"]
        scales = _constant_values(producers[f"{name}.weight.scale"])
        np.testing.assert_array_equal(scales, np.abs(weight).reshape(len(weight), -1).max(1).astype(np.float32) / 127)
        axis = _cast(w_q, trt.IQuantizeLayer).axis
        assert axis == _cast(w_dq, trt.IDequantizeLayer).axis
        assert axis == (0 if layer_type(layer) == LT.CONVOLUTION else len(weight_const.get_output(0).shape) - 2)
        assert weight_const.get_output(0).shape[axis] == len(weight) == scales.size


def test_quantized_convolution_reads_its_kernel_from_input_1(lenet_ckpt, lenet_fp32):
    net8 = _lenet_int8(lenet_ckpt, _unit_scales(lenet_fp32))
    conv = next(
        net8.trt_network.get_layer(i) for i in range(net8.num_layers) if net8.trt_network.get_layer(i).name == "conv1"
    )
    conv = _cast(conv, trt.IConvolutionLayer)
    assert conv.kernel.size == 0 and conv.bias.size == 20
    assert conv.get_input(1).name == "conv1.weight.dequantize"


def test_fp32_networks_have_no_qdq_but_record_what_int8_would_quantize(lenet_fp32):
    types = {layer_type(lenet_fp32.trt_network.get_layer(i)) for i in range(lenet_fp32.num_layers)}
    assert LT.QUANTIZE not in types and LT.DEQUANTIZE not in types
    assert lenet_fp32.quantization_points == {
        "input": ["conv1"],
        "max_pool": ["conv2"],
        "flatten": ["fc1"],
        "relu": ["fc2"],
    }
    assert lenet_fp32.quantization_scales == {}


def test_int8_network_keeps_refittable_weight_names_and_names_every_scale(lenet_ckpt, lenet_fp32):
    net8 = _lenet_int8(lenet_ckpt, _unit_scales(lenet_fp32))
    assert list(net8.weights) == list(lenet_fp32.weights)
    for name in net8.weights:
        np.testing.assert_array_equal(net8.weights[name], lenet_fp32.weights[name])
    layers = ("conv1", "conv2", "fc1", "fc2")
    assert sorted(net8.quantization_scales) == sorted(f"{n}.{w}.scale" for n in layers for w in ("input", "weight"))


# --------------------------------------------------------------------------- quantization arithmetic


def test_weight_scales_are_per_output_channel_max_over_127(rng):
    w = rng.standard_normal((6, 3, 3, 3)).astype(np.float32)
    w[2] = 0.0
    expected = np.array([np.abs(w[c]).max() / 127 if c != 2 else 1.0 for c in range(6)], np.float32)
    np.testing.assert_allclose(weight_scales(w), expected, rtol=1e-7)
    np.testing.assert_allclose(weight_scales(w.transpose(1, 0, 2, 3), axis=1), expected, rtol=1e-7)


def test_fake_quantize_rounds_half_to_even_and_clamps():
    x = np.array([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 126.6, 300.0, -300.0, -128.4], np.float32)
    np.testing.assert_array_equal(fake_quantize(x, 1.0), [0, 2, 2, 0, -2, -2, 127, 127, -128, -128])
    np.testing.assert_array_equal(fake_quantize(x, 2.0), 2 * np.array([0, 1, 1, 0, -1, -1, 63, 127, -128, -64]))


def _int8_conv_network(scale_in: float, weight: np.ndarray, bias: np.ndarray) -> Network:
    net = Network({"c.weight": weight, "c.bias": bias}, precision="int8", calibration={"input": scale_in})
    x = net.input("input", (-1, weight.shape[1], 9, 9))
    net.output(net.conv2d(x, "c", weight.shape[0], weight.shape[2:], padding=1), "out")
    net.check()
    return net


def test_reference_executor_computes_qdq_conv_as_fake_quantized_torch_conv(rng):
    weight = (
        rng.standard_normal((5, 3, 3, 3)).astype(np.float32)
        * np.array([1, 10, 0.1, 3, 0.01], np.float32)[:, None, None, None]
    )
    bias = rng.standard_normal(5).astype(np.float32)
    x = rng.standard_normal((2, 3, 9, 9)).astype(np.float32) * 2
    scale = float(np.abs(x).max() / 127 * 0.7)  # some values clip
    net = _int8_conv_network(scale, weight, bias)
    got = ReferenceExecutor(net.trt_network).run({"input": x}).outputs["out"]
    xq = torch.from_numpy(fake_quantize(x, scale))
    wq = torch.from_numpy(fake_quantize(weight, weight_scales(weight), axis=0))
    expected = F.conv2d(xq.double(), wq.double(), torch.from_numpy(bias).double(), padding=1).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-4)
    unquantized = F.conv2d(torch.from_numpy(x), torch.from_numpy(weight), torch.from_numpy(bias), padding=1).numpy()
    assert np.abs(got - unquantized).max() > 1e-3  # the quantization error is really there


def test_reference_executor_computes_qdq_linear_on_tokens_per_output_row(rng):
    weight = rng.standard_normal((6, 8)).astype(np.float32) * np.geomspace(0.01, 10, 6, dtype=np.float32)[:, None]
    bias = rng.standard_normal(6).astype(np.float32)
    x = rng.standard_normal((2, 5, 8)).astype(np.float32)
    scale = float(np.abs(x).max() / 127)
    net = Network({"fc.weight": weight, "fc.bias": bias}, precision="int8", calibration={"input": scale})
    net.output(net.linear(net.input("input", (-1, 5, 8)), "fc"), "out")
    net.check()
    got = ReferenceExecutor(net.trt_network).run({"input": x}).outputs["out"]
    wq = fake_quantize(weight, weight_scales(weight), axis=0).astype(np.float64)
    expected = fake_quantize(x, scale).astype(np.float64) @ wq.T + bias
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


# --------------------------------------------------------------------------- calibration statistics


def _entropy_by_hand(hist: np.ndarray, levels: int) -> list[float]:
    """Migacz's pseudo-code, one bin at a time, in plain Python."""
    out = []
    n = len(hist)
    for i in range(levels, n + 1):
        p = [float(v) for v in hist[:i]]
        p[i - 1] += float(sum(hist[i:]))
        width = i // levels
        q = [0.0] * i
        for j in range(levels):
            lo, hi = j * width, ((j + 1) * width if j < levels - 1 else i)
            used = [b for b in range(lo, hi) if p[b] != 0]
            for b in used:
                q[b] = float(sum(hist[lo:hi])) / len(used)
        q = [1e-4 if (p[b] > 0 and q[b] == 0) else q[b] for b in range(i)]
        ps, qs = sum(p), sum(q[b] for b in range(i) if p[b] > 0)
        out.append(sum(p[b] / ps * math.log((p[b] / ps) / (q[b] / qs)) for b in range(i) if p[b] > 0))
    return out


@pytest.mark.parametrize("levels,bins", [(8, 40), (16, 77)])
def test_entropy_divergences_match_a_bin_by_bin_computation(rng, levels, bins):
    hist = rng.poisson(rng.uniform(0, 30, bins)).astype(np.int64)
    hist[rng.integers(0, bins, bins // 5)] = 0  # empty bins, as in real histograms
    hist[-1] = 3  # an outlier bin
    np.testing.assert_allclose(entropy_divergences(hist, levels), _entropy_by_hand(hist, levels), rtol=1e-9)
    top = 7.0
    best = levels + int(np.argmin(_entropy_by_hand(hist, levels)))
    assert entropy_amax(hist, top, levels) == pytest.approx(min((best + 0.5) * top / bins, top))


def test_histogram_counts_absolute_values_with_the_top_in_the_last_bin():
    values = np.array([-1.0, 0.0, 0.24, 0.25, 0.99, 1.0, -0.5], np.float32)
    np.testing.assert_array_equal(histogram(values, 1.0, bins=4), [2, 1, 1, 3])


def test_percentile_agrees_with_numpy_within_one_bin(rng):
    x = rng.laplace(size=200_000).astype(np.float32)
    top = float(np.abs(x).max())
    counts = histogram(x, top, 2048)
    for p in (50.0, 99.0, 99.99):
        exact = np.percentile(np.abs(x), p)
        got = percentile_amax(counts, top, p)
        assert exact - 1e-6 <= got <= exact + top / 2048, (p, got, exact)
    assert percentile_amax(counts, top, 100.0) == pytest.approx(top)


def test_entropy_keeps_a_uniform_range_and_clips_isolated_outliers(rng):
    uniform = rng.uniform(-3, 3, 500_000).astype(np.float32)
    top = float(np.abs(uniform).max())
    assert entropy_amax(histogram(uniform, top), top) >= 0.99 * top
    gauss = np.concatenate([rng.standard_normal(500_000), np.full(5, 50.0)]).astype(np.float32)
    counts = histogram(gauss, 50.0)
    amax = entropy_amax(counts, 50.0)
    assert 3.0 < amax < 0.2 * 50.0  # keeps the Gaussian's bulk, drops the outliers
    assert percentile_amax(counts, 50.0, 100.0) == 50.0  # which max (and the 100th percentile) keep


def _two_tensor_network(seed: int = 0) -> Network:
    """input -> conv (calibrates 'input') -> relu -> conv (calibrates 'relu')."""
    g = np.random.default_rng(seed)
    ckpt = {
        "a.weight": g.standard_normal((4, 2, 3, 3)).astype(np.float32),
        "a.bias": g.standard_normal(4).astype(np.float32),
        "b.weight": g.standard_normal((3, 4, 1, 1)).astype(np.float32),
        "b.bias": np.zeros(3, np.float32),
    }
    net = Network(ckpt, name="two")
    x = net.input("input", (-1, 2, 6, 6))
    net.output(net.conv2d(net.relu(net.conv2d(x, "a", 4, 3)), "b", 3, 1), "out")
    return net


@pytest.mark.parametrize("method", ["max", "percentile", "entropy"])
def test_calibrate_measures_the_tensors_the_executor_computes(rng, method):
    net = _two_tensor_network()
    data = rng.standard_normal((37, 2, 6, 6)).astype(np.float32)
    data[3, 0, 0, 0] = 40.0  # one outlier in the input
    calib = calibrate(net, data, method, batch_size=10, percentile=99.5, bins=512)
    assert set(calib.amax) == {"input", "relu"} and calib.samples == 37
    relu = ReferenceExecutor(net.trt_network).run({"input": data}, capture=True).tensors["relu"]
    for name, values in (("input", data), ("relu", relu)):
        top = float(np.abs(values).max())
        expected = {
            "max": top,
            "percentile": percentile_amax(histogram(values, top, 512), top, 99.5),
            "entropy": entropy_amax(histogram(values, top, 512), top),
        }[method]
        assert calib.amax[name] == pytest.approx(expected, rel=1e-6)
    if method != "max":
        assert calib.amax["input"] < 20.0  # the outlier (40) is clipped; entropy's least candidate is 128/512 bins


def test_calibration_refuses_bad_data_listing_every_problem(rng):
    net = _two_tensor_network()
    with pytest.raises(CalibrationError) as err:
        calibrate(net, {"input": np.zeros((4, 3, 6, 6), np.float32), "extra": np.zeros(4)}, "max")
    assert "expected samples of shape (2, 6, 6), got (3, 6, 6)" in str(err.value)
    assert "'extra'" in str(err.value)
    with pytest.raises(CalibrationError, match="floating point"):
        calibrate(net, np.zeros((4, 2, 6, 6), np.uint8), "max")
    with pytest.raises(CalibrationError, match="unknown calibration method 'kl'"):
        calibrate(net, np.zeros((4, 2, 6, 6), np.float32), "kl")
    int8 = Network({}, precision="int8", calibration={})
    with pytest.raises(CalibrationError, match="fp32 definition"):
        calibrate(int8, np.zeros((1, 2, 6, 6), np.float32), "max")


# --------------------------------------------------------------------------- the cache


def test_cache_round_trip_keeps_every_field_and_scales_are_amax_over_127(tmp_path, rng):
    net = _two_tensor_network()
    calib = calibrate(net, rng.standard_normal((8, 2, 6, 6)).astype(np.float32), "percentile", bins=256)
    path = calib.save(tmp_path / "cache.json")
    data = json.loads(path.read_text())
    assert data["format"] == CACHE_FORMAT and data["method"] == "percentile" and data["architecture"] == "two"
    assert data["tensors"]["relu"]["layers"] == ["b"]
    assert data["tensors"]["input"]["scale"] == pytest.approx(data["tensors"]["input"]["amax"] / 127)
    loaded = Calibration.load(path)
    assert loaded == calib
    assert loaded.weights_sha256 == weights_fingerprint(net.weights)


def test_damaged_caches_are_refused_with_every_problem_and_the_file_name(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"format": "x", "version": 9, "method": "kl", "tensors": {"a": {"amax": -1}}}))
    with pytest.raises(CalibrationError) as err:
        Calibration.load(path)
    text = str(err.value)
    assert str(path) in text and "4 problem(s)" in text
    for fragment in ("format is 'x'", "version is 9", "method is 'kl'", "tensor 'a': amax must be"):
        assert fragment in text
    path.write_text("{not json")
    with pytest.raises(CalibrationError, match="not valid JSON"):
        Calibration.load(path)
    with pytest.raises(CalibrationError, match="does not exist"):
        Calibration.load(tmp_path / "missing.json")


def test_load_or_calibrate_writes_once_then_reuses_the_cache(tmp_path, lenet_weights, digits, monkeypatch):
    cache = tmp_path / "lenet.json"
    first = load_or_calibrate("lenet", lenet_weights, digits.x_train[:64], cache=cache, method="max")
    assert cache.is_file() and first.samples == 64

    def must_not_run(*args, **kwargs):
        raise AssertionError("the cache should have been reused")

    monkeypatch.setattr("netdef.calibration.calibrate", must_not_run)
    again = load_or_calibrate("lenet", lenet_weights, None, cache=cache, method="max")
    assert again == first
    with pytest.raises(CalibrationError, match="made with method 'max', not 'entropy'"):
        load_or_calibrate("lenet", lenet_weights, None, cache=cache, method="entropy")
    with pytest.raises(CalibrationError, match="made for architecture 'lenet', not 'resnet18'"):
        load_or_calibrate("resnet18", lenet_weights, None, cache=cache, method="max")


def test_int8_network_reads_a_cache_file_and_reports_missing_or_bad_scales_together(tmp_path, lenet_ckpt):
    with pytest.raises(CalibrationError) as err:
        _lenet_int8(lenet_ckpt, {"input": 0.0, "max_pool": float("nan"), "flatten": 0.1})
    text = str(err.value)
    assert "3 calibration problem(s)" in text
    assert "tensor 'input' (input of layer 'conv1'): scale must be finite and > 0" in text
    assert "tensor 'max_pool' (input of layer 'conv2')" in text
    assert "calibration has no scale for tensor 'relu' (input of layer 'fc2')" in text
    other = Calibration({"input": 1.0}, "max", architecture="resnet18")
    with pytest.raises(CalibrationError, match="made for 'resnet18', this network is 'lenet'"):
        _lenet_int8(lenet_ckpt, other)
    with pytest.raises(NetworkDefinitionError, match="only int8 uses one"):
        get("lenet").build_network(lenet_ckpt, precision="fp16", calibration={"input": 1.0})


def test_weight_problems_are_reported_before_calibration_problems(lenet_ckpt):
    broken = {k: v for k, v in lenet_ckpt.items() if k != "fc1.bias"}
    with pytest.raises(CheckpointError, match="fc1.bias"):
        get("lenet").build_network(broken, precision="int8")


# --------------------------------------------------------------------------- accuracy (reference executor)


@pytest.mark.parametrize("method", ["max", "percentile", "entropy"])
def test_lenet_int8_within_one_percent_of_fp32_on_held_out_digits(
    lenet_ckpt, digits, fp32_test_probs, lenet_calibrations, method
):
    calibration = lenet_calibrations[method]
    network = _lenet_int8(lenet_ckpt, calibration)  # keep it: it owns the weight memory TensorRT points at
    probs = ReferenceExecutor(network.trt_network).run({"input": digits.x_test}).outputs["prob"]
    fp32_acc = float((fp32_test_probs.argmax(1) == digits.y_test).mean())
    int8_acc = float((probs.argmax(1) == digits.y_test).mean())
    agreement = float((probs.argmax(1) == fp32_test_probs.argmax(1)).mean())
    print(f"\n{method}: fp32 {fp32_acc:.4f}, int8 {int8_acc:.4f}, top-1 agreement {agreement:.4f}")
    assert abs(int8_acc - fp32_acc) <= 0.01
    assert not np.array_equal(probs, fp32_test_probs)  # quantization really happened
    assert calibration.amax["input"] <= 1.0  # digits pixels are in [0, 1]


@pytest.mark.slow
@pytest.mark.parametrize("method", ["max", "percentile", "entropy"])
def test_resnet18_int8_top1_agreement_with_fp32(method):
    """Seeded random weights with randomized BatchNorm statistics, random inputs (no data set needed)."""
    from torch_models import randomize, state_dict_arrays, torchvision_model

    from netdef.errors import NetdefError

    try:
        arch = get("resnet18")
    except NetdefError as exc:
        pytest.skip(f"resnet18 is not registered here: {exc}")
    ckpt = state_dict_arrays(randomize(torchvision_model("resnet18"), seed=0))
    g = np.random.default_rng(0)
    x_cal = g.standard_normal((16, 3, 224, 224)).astype(np.float32)
    x_eval = g.standard_normal((32, 3, 224, 224)).astype(np.float32)
    fp32 = arch.build_network(ckpt, precision="fp32")
    calibration = calibrate(fp32, x_cal, method, batch_size=8)
    assert len(calibration.amax) == 18  # 21 weighted layers; each downsample shares its block's input
    int8 = arch.build_network(ckpt, precision="int8", calibration=calibration)
    y32 = np.concatenate(
        [ReferenceExecutor(fp32.trt_network).run({"input": b}).outputs["logits"] for b in np.split(x_eval, 4)]
    )
    executor = ReferenceExecutor(int8.trt_network)
    y8 = np.concatenate([executor.run({"input": b}).outputs["logits"] for b in np.split(x_eval, 4)])
    agreement = float((y8.argmax(1) == y32.argmax(1)).mean())
    rel = float(np.linalg.norm(y8 - y32) / np.linalg.norm(y32))
    print(f"\nresnet18 {method}: top-1 agreement {agreement:.3f} on {len(y8)} inputs, logits relative error {rel:.3f}")
    assert agreement >= 0.9


# --------------------------------------------------------------------------- TensorRT build and GPU run


@pytest.mark.skipif(not CAPS.can_build, reason=f"cannot build engines here: {CAPS.reason}")
def test_int8_lenet_builds_with_tensorrt(lenet_ckpt, lenet_calibrations):
    from netdef.build import BuildConfig, build

    network = get("lenet").build_network(lenet_ckpt, precision="int8", calibration=lenet_calibrations["entropy"])
    engine = build(network, BuildConfig(batch=(1, 64, 512)), definition={"architecture": "lenet", "options": {}})
    assert engine.precision == "int8" and len(engine.plan) > 0
    assert engine.metadata["weights"]["conv1.weight"] == {"shape": [20, 1, 5, 5], "dtype": "float32"}


@pytest.mark.gpu
@pytest.mark.skipif(not CAPS.can_run, reason=f"cannot run engines here: {CAPS.reason}")
def test_int8_lenet_engine_matches_the_reference_executor_on_the_gpu(lenet_ckpt, digits, lenet_calibrations):
    from netdef.build import BuildConfig, build
    from netdef.runtime import run_engine_file

    network = get("lenet").build_network(lenet_ckpt, precision="int8", calibration=lenet_calibrations["entropy"])
    engine = build(network, BuildConfig(batch=(1, 64, 512)))
    got = run_engine_file(engine, {"input": digits.x_test})["prob"]
    expected = ReferenceExecutor(network.trt_network).run({"input": digits.x_test}).outputs["prob"]
    assert float((got.argmax(1) == expected.argmax(1)).mean()) >= 0.99
    assert (
        abs(float((got.argmax(1) == digits.y_test).mean()) - float((expected.argmax(1) == digits.y_test).mean()))
        <= 0.01
    )


# --------------------------------------------------------------------------- CLI


def test_cli_calibrate_then_build_int8(tmp_path, lenet_weights, digits):
    from netdef.cli import app
    from netdef.engine import Engine

    data = tmp_path / "calib.npy"
    np.save(data, digits.x_train[:96])
    cache = tmp_path / "cache.json"
    runner = CliRunner()
    result = runner.invoke(
        app,
        [
            "calibrate",
            "lenet",
            "-w",
            str(lenet_weights),
            "--data",
            str(data),
            "-m",
            "percentile",
            "-o",
            str(cache),
            "-q",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "calibrated" in result.output and "max_pool" in result.output
    calib = Calibration.load(cache)
    assert (calib.method, calib.samples, calib.architecture, calib.percentile) == ("percentile", 96, "lenet", 99.99)
    if not CAPS.can_build:
        pytest.skip(f"cannot build engines here: {CAPS.reason}")
    engine_file = tmp_path / "lenet_int8.engine"
    result = runner.invoke(
        app,
        [
            "build",
            "lenet",
            "-w",
            str(lenet_weights),
            "-p",
            "int8",
            "--calibration",
            str(cache),
            "-o",
            str(engine_file),
            "-q",
        ],
    )
    assert result.exit_code == 0, result.output
    engine = Engine.load(engine_file)
    assert engine.precision == "int8" and engine.metadata["definition"]["calibration"] == str(cache)


def test_cli_errors_name_the_problem(tmp_path, lenet_weights):
    from netdef.cli import app

    bad = tmp_path / "bad.npy"
    np.save(bad, np.zeros((4, 3, 28, 28), np.float32))
    runner = CliRunner()
    result = runner.invoke(
        app, ["calibrate", "lenet", "-w", str(lenet_weights), "--data", str(bad), "-o", str(tmp_path / "c.json")]
    )
    assert isinstance(result.exception, CalibrationError)
    assert "expected samples of shape (1, 28, 28), got (3, 28, 28)" in str(result.exception)
    result = runner.invoke(
        app, ["build", "lenet", "-w", str(lenet_weights), "-p", "int8", "-o", str(tmp_path / "x.engine")]
    )
    assert isinstance(result.exception, CalibrationError)
    assert "4 calibration problem(s)" in str(result.exception)
    assert not (tmp_path / "x.engine").exists()

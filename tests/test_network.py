"""netdef.Network: shapes against TensorRT's own inference and PyTorch, names, precision, weights, errors."""

from __future__ import annotations

import gc
import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from netdef.backend import trt
from netdef.dtypes import bfloat16
from netdef.errors import CheckpointError, NetworkDefinitionError
from netdef.network import Network, num_parameters

LAYER_CLASSES = {
    trt.LayerType.CONVOLUTION: trt.IConvolutionLayer,
    trt.LayerType.CONSTANT: trt.IConstantLayer,
    trt.LayerType.POOLING: trt.IPoolingLayer,
    trt.LayerType.ACTIVATION: trt.IActivationLayer,
    trt.LayerType.SCALE: trt.IScaleLayer,
    trt.LayerType.SOFTMAX: trt.ISoftMaxLayer,
    trt.LayerType.SHUFFLE: trt.IShuffleLayer,
    trt.LayerType.CONCATENATION: trt.IConcatenationLayer,
    trt.LayerType.REDUCE: trt.IReduceLayer,
    trt.LayerType.MATRIX_MULTIPLY: trt.IMatrixMultiplyLayer,
    trt.LayerType.ELEMENTWISE: trt.IElementWiseLayer,
    trt.LayerType.CAST: trt.ICastLayer,
}


def all_layers(net: Network) -> list:
    """Every layer of ``net``, cast to its own interface (TensorRT hands back plain ILayers)."""
    layers = []
    for i in range(net.num_layers):
        layer = net.trt_network.get_layer(i)
        kind = trt.ILayer.type.fget(layer)
        if kind in LAYER_CLASSES:
            layer.__class__ = LAYER_CLASSES[kind]
        layers.append(layer)
    return layers


def layer_named(net: Network, name: str):
    found = [layer for layer in all_layers(net) if layer.name == name]
    assert len(found) == 1, f"{len(found)} layers named {name!r}: {[la.name for la in all_layers(net)]}"
    return found[0]


def shape(tensor) -> tuple[int, ...]:
    return tuple(tensor.shape)


def randn(rng: np.random.Generator, *dims: int) -> np.ndarray:
    return rng.standard_normal(dims).astype(np.float32)


def bn_params(rng: np.random.Generator, prefix: str, channels: int) -> dict[str, np.ndarray]:
    return {
        f"{prefix}.weight": rng.uniform(0.5, 1.5, channels).astype(np.float32),
        f"{prefix}.bias": randn(rng, channels),
        f"{prefix}.running_mean": randn(rng, channels),
        f"{prefix}.running_var": rng.uniform(0.1, 2.0, channels).astype(np.float32),
        f"{prefix}.num_batches_tracked": np.array(100, np.int64),
    }


# --------------------------------------------------------------------------- shapes vs PyTorch


@pytest.mark.parametrize(
    ("cin", "cout", "k", "stride", "padding", "dilation", "groups", "hw"),
    [
        (3, 8, 3, 1, 0, 1, 1, (9, 9)),
        (4, 8, 3, 2, 1, 1, 2, (9, 10)),
        (4, 4, 3, 1, 2, 2, 4, (11, 7)),  # depthwise, dilated
        (6, 9, (1, 3), (2, 1), (0, 1), 1, 3, (8, 8)),
        (2, 4, 5, 3, 2, (2, 1), 1, (15, 12)),
        (1, 20, 5, 1, 0, 1, 1, (28, 28)),
    ],
)
def test_conv2d_shape_matches_pytorch(rng, cin, cout, k, stride, padding, dilation, groups, hw):
    kernel = (k, k) if isinstance(k, int) else k
    weight = randn(rng, cout, cin // groups, *kernel)
    expected = F.conv2d(torch.zeros(2, cin, *hw), torch.from_numpy(weight), stride=stride, padding=padding,
                        dilation=dilation, groups=groups).shape  # fmt: skip
    for batch in (2, -1):
        net = Network({"conv.weight": weight, "conv.bias": randn(rng, cout)})
        x = net.input("x", (batch, cin, *hw))
        y = net.conv2d(x, "conv", cout, k, stride=stride, padding=padding, dilation=dilation, groups=groups)
        assert shape(y) == (batch, *expected[1:])
        assert not net.problems
        layer = layer_named(net, "conv")
        assert np.array_equal(layer.kernel, weight.reshape(-1)), "the kernel is handed over in PyTorch's OIHW layout"
        assert layer.num_groups == groups


def test_conv2d_takes_out_channels_and_kernel_from_the_checkpoint(rng):
    net = Network({"c.weight": randn(rng, 7, 3, 3, 5), "c.bias": randn(rng, 7)})
    y = net.conv2d(net.input("x", (1, 3, 10, 10)), "c")
    assert shape(y) == (1, 7, 8, 6)


POOL_SIZES = [5, 6, 7, 8, 9, 11]


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("ceil_mode", [False, True])
def test_pooling_shapes_match_pytorch(kind, ceil_mode):
    """Default stride = kernel (PyTorch's; TensorRT's is 1), padding, and ceil_mode's dropped last window."""
    net = Network({})
    mismatches, refused = [], []
    torch_pool = getattr(F, f"{kind}_pool2d")
    for i, (h, k, s, p) in enumerate(itertools.product(POOL_SIZES, [1, 2, 3], [None, 1, 2, 3], [0, 1])):
        if p > k // 2:
            continue  # PyTorch's own limit
        x = net.input(f"x{i}", (1, 2, h, h + 1))
        expected = tuple(torch_pool(torch.zeros(1, 2, h, h + 1), k, s, p, ceil_mode=ceil_mode).shape)
        try:
            y = getattr(net, f"{kind}_pool2d")(x, k, s, p, ceil_mode=ceil_mode)
        except NetworkDefinitionError as exc:
            refused.append(((h, k, s, p), str(exc)))
            continue
        if shape(y) != expected:
            mismatches.append(f"{h}x{h + 1} k={k} s={s} p={p}: TensorRT {shape(y)}, PyTorch {expected}")
    assert not mismatches, "\n".join(mismatches)
    # only ceil_mode average pooling that counts padding may be refused, and only with padding
    assert all(kind == "avg" and ceil_mode and case[3] > 0 for case, _ in refused), refused
    assert all("count_include_pad=False" in message for _, message in refused)


@pytest.mark.parametrize("kind", ["max", "avg"])
def test_ceil_mode_pooling_values_match_pytorch_in_the_reference_executor(rng, kind):
    """The padding chosen for ceil_mode selects PyTorch's windows (checked with netdef's NumPy executor)."""
    reference = pytest.importorskip("netdef.reference")
    cases = [(5, 2, 2, 1), (6, 1, 2, 0), (7, 3, 2, 1), (8, 2, 3, 0), (9, 3, 3, 1), (11, 2, 3, 1)]
    for h, k, s, p in cases:
        for include_pad in (True, False) if kind == "avg" else (True,):
            options = {"count_include_pad": include_pad} if kind == "avg" else {}
            net = Network({})
            x = net.input("x", (1, 2, h, h + 1))
            try:
                y = getattr(net, f"{kind}_pool2d")(x, k, s, p, ceil_mode=True, **options)
            except NetworkDefinitionError:
                assert kind == "avg" and include_pad and p > 0
                continue
            net.output(y, "y")
            data = randn(rng, 1, 2, h, h + 1)
            got = reference.run(net.trt_network, {"x": data}).outputs["y"]
            want = getattr(F, f"{kind}_pool2d")(torch.from_numpy(data), k, s, p, ceil_mode=True, **options).numpy()
            np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6, err_msg=f"{h} k={k} s={s} p={p} {options}")


def test_linear_rank_2_and_3(rng):
    weight, bias = randn(rng, 5, 7), randn(rng, 5)
    for dims in [(4, 7), (-1, 7), (2, 3, 7), (-1, 3, 7)]:
        net = Network({"fc.weight": weight, "fc.bias": bias})
        y = net.linear(net.input("x", dims), "fc")
        expected = F.linear(torch.zeros(*[abs(d) for d in dims]), torch.from_numpy(weight)).shape
        assert shape(y) == (*dims[:-1], expected[-1]), dims
        assert not net.problems
    net = Network({"fc.weight": weight})
    assert shape(net.linear(net.input("x", (2, 7)), "fc", bias=False)) == (2, 5) and not net.problems


@pytest.mark.parametrize("start", [0, 1, 2, 3, -1])
def test_flatten(start):
    net = Network({})
    y = net.flatten(net.input("x", (2, 3, 4, 5)), start)
    assert shape(y) == tuple(torch.flatten(torch.zeros(2, 3, 4, 5), start).shape)


def test_flatten_keeps_a_dynamic_batch():
    net = Network({})
    assert shape(net.flatten(net.input("x", (-1, 3, 4, 5)))) == (-1, 60)


@pytest.mark.parametrize("axis", [0, 1, 2, 3, -1, -3])
def test_softmax_axis(axis):
    net = Network({})
    y = net.softmax(net.input("x", (2, 3, 4, 5)), dim=axis, name="sm")
    assert shape(y) == (2, 3, 4, 5)
    assert layer_named(net, "sm").axes == 1 << (axis % 4), "TensorRT's default axis is not PyTorch's"


def test_softmax_default_is_the_last_axis():
    net = Network({})
    net.softmax(net.input("x", (2, 10)), name="sm")
    assert layer_named(net, "sm").axes == 0b10


@pytest.mark.parametrize("axis", [0, 1, -1])
def test_concat(axis):
    net = Network({})
    a, b = net.input("a", (2, 3, 4)), net.input("b", (2, 3, 4))
    expected = torch.cat([torch.zeros(2, 3, 4)] * 2, dim=axis).shape
    assert shape(net.concat([a, b], dim=axis)) == tuple(expected)


@pytest.mark.parametrize("dims", [(0, 2, 3, 1), (3, 2, 1, 0), (0, 1, 3, 2)])
def test_permute(dims):
    net = Network({})
    y = net.permute(net.input("x", (2, 3, 4, 5)), dims)
    assert shape(y) == tuple(torch.zeros(2, 3, 4, 5).permute(*dims).shape)


@pytest.mark.parametrize(("target", "expected"), [((0, -1), (2, 60)), ((0, 0, -1, 5), (2, 3, 4, 5)),
                                                  ((6, 20), (6, 20)), ((-1,), (120,))])  # fmt: skip
def test_reshape_zero_copies_and_minus_one_infers(target, expected):
    net = Network({})
    assert shape(net.reshape(net.input("x", (2, 3, 4, 5)), target)) == expected


@pytest.mark.parametrize("axes", [(1,), (2, 3), (1, 3), (-1,)])
@pytest.mark.parametrize("keepdim", [False, True])
def test_mean(axes, keepdim):
    net = Network({})
    y = net.mean(net.input("x", (2, 3, 4, 5)), axes, keepdim=keepdim)
    assert shape(y) == tuple(torch.zeros(2, 3, 4, 5).mean(dim=axes, keepdim=keepdim).shape)


@pytest.mark.parametrize("output_size", [1, (1, 1), 2, (4, 2)])
def test_adaptive_avg_pool2d(output_size):
    net = Network({})
    y = net.adaptive_avg_pool2d(net.input("x", (2, 3, 8, 8)), output_size)
    assert shape(y) == tuple(F.adaptive_avg_pool2d(torch.zeros(2, 3, 8, 8), output_size).shape)


def test_batch_norm_shape_and_values(rng):
    params = bn_params(rng, "bn", 4)
    net = Network(params)
    y = net.batch_norm(net.input("x", (2, 4, 3, 3)), "bn", eps=1e-3)
    assert shape(y) == (2, 4, 3, 3)
    x = randn(rng, 2, 4, 3, 3)
    scale, shift = net.weights["bn.scale"], net.weights["bn.shift"]
    got = x * scale.reshape(1, -1, 1, 1) + shift.reshape(1, -1, 1, 1)
    t = {k: torch.from_numpy(v) for k, v in params.items()}
    want = F.batch_norm(torch.from_numpy(x), t["bn.running_mean"], t["bn.running_var"], t["bn.weight"],
                        t["bn.bias"], training=False, eps=1e-3).numpy()  # fmt: skip
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    layer = layer_named(net, "bn")
    assert layer.channel_axis == 1 and layer.mode == trt.ScaleMode.CHANNEL
    assert (
        net.derived["bn.scale"]
        == net.derived["bn.shift"]
        == ["bn.weight", "bn.bias", "bn.running_mean", "bn.running_var"]
    )


@pytest.mark.parametrize(
    ("method", "torch_fn", "kind", "alpha", "beta"),
    [
        ("relu", F.relu, trt.ActivationType.RELU, None, None),
        ("relu6", F.relu6, trt.ActivationType.CLIP, 0.0, 6.0),
        ("leaky_relu", F.leaky_relu, trt.ActivationType.LEAKY_RELU, 0.01, None),
        ("sigmoid", torch.sigmoid, trt.ActivationType.SIGMOID, None, None),
        ("tanh", torch.tanh, trt.ActivationType.TANH, None, None),
        ("gelu", F.gelu, trt.ActivationType.GELU_ERF, None, None),
    ],
)
def test_activations(method, torch_fn, kind, alpha, beta):
    net = Network({})
    y = getattr(net, method)(net.input("x", (2, 3, 4)), name="act")
    assert shape(y) == tuple(torch_fn(torch.zeros(2, 3, 4)).shape)
    layer = layer_named(net, "act")
    assert layer.type == kind
    if alpha is not None:
        assert layer.alpha == pytest.approx(alpha)
    if beta is not None:
        assert layer.beta == pytest.approx(beta)


def test_gelu_tanh_approximation():
    net = Network({})
    net.gelu(net.input("x", (2, 3)), approximate="tanh", name="act")
    assert layer_named(net, "act").type == trt.ActivationType.GELU_TANH


def test_silu_and_hardswish_compose_pytorch_functions(rng):
    net = Network({})
    x = net.input("x", (2, 3, 4))
    assert shape(net.silu(x, name="s")) == shape(net.hardswish(x, name="h")) == (2, 3, 4)
    assert layer_named(net, "s.sigmoid").type == trt.ActivationType.SIGMOID
    gate = layer_named(net, "h.gate")
    assert gate.type == trt.ActivationType.HARD_SIGMOID
    v = np.linspace(-5, 5, 101, dtype=np.float32)
    hard_sigmoid = np.clip(gate.alpha * v + gate.beta, 0, 1)  # TensorRT's HARD_SIGMOID
    np.testing.assert_allclose(v * hard_sigmoid, F.hardswish(torch.from_numpy(v)).numpy(), atol=1e-6)


def test_elementwise_broadcasting_across_ranks():
    net = Network({})
    a, b = net.input("a", (2, 3, 4, 5)), net.input("b", (3, 1, 5))
    assert shape(net.add(a, b)) == shape(net.sub(a, b)) == shape(net.mul(b, a)) == (2, 3, 4, 5)
    assert shape(net.add(a, net.scalar(2.0, a))) == (2, 3, 4, 5)


# --------------------------------------------------------------------------- names


def resnet_block_checkpoint(rng) -> dict[str, np.ndarray]:
    return {
        "layer1.0.conv1.weight": randn(rng, 4, 3, 3, 3),
        **bn_params(rng, "layer1.0.bn1", 4),
        "layer1.0.conv2.weight": randn(rng, 4, 4, 3, 3),
        **bn_params(rng, "layer1.0.bn2", 4),
        "fc.weight": randn(rng, 5, 4),
        "fc.bias": randn(rng, 5),
    }


def define_block(net: Network):
    x = net.input("input", (-1, 3, 8, 8))
    with net.scope("layer1"), net.scope(0):
        y = net.relu(net.conv2d(x, "conv1", 4, 3, padding=1, bias=False, bn="bn1"), name="relu1")
        y = net.batch_norm(net.conv2d(y, "conv2", 4, 3, padding=1, bias=False), "bn2")
    y = net.flatten(net.adaptive_avg_pool2d(y, 1))
    return net.output(net.linear(y, "fc"), "logits")


def test_layer_and_weight_names_follow_checkpoint_keys_in_nested_scopes(rng):
    net = Network(resnet_block_checkpoint(rng))
    define_block(net)
    net.check()
    assert set(net.weights) == {
        "layer1.0.conv1.weight", "layer1.0.conv1.bias", "layer1.0.conv2.weight",
        "layer1.0.bn2.scale", "layer1.0.bn2.shift", "fc.weight", "fc.bias",
    }  # fmt: skip
    names = [layer.name for layer in all_layers(net)]
    for name in ("layer1.0.conv1", "layer1.0.relu1", "layer1.0.conv2", "layer1.0.bn2", "fc"):
        assert name in names
    assert len(set(names)) == len(names) and not any(n.startswith("(Unnamed") for n in names), names
    for name in net.weights:  # TensorRT knows every weight by that name (what refit relies on)
        assert net.trt_network.mark_weights_refittable(name), name
        net.trt_network.unmark_weights_refittable(name)
    assert not net.trt_network.mark_weights_refittable("layer1.0.conv3.weight")
    assert net.unused_keys() == []  # num_batches_tracked is not "unused"


def test_bn_fold_records_its_sources(rng):
    net = Network(resnet_block_checkpoint(rng))
    define_block(net)
    bn1 = [f"layer1.0.bn1.{p}" for p in ("weight", "bias", "running_mean", "running_var")]
    assert net.derived["layer1.0.conv1.weight"] == ["layer1.0.conv1.weight", *bn1]
    assert net.derived["layer1.0.conv1.bias"] == bn1  # no conv bias: the fold made one
    assert "layer1.0.conv2.weight" not in net.derived and "fc.weight" not in net.derived


def test_default_names_are_unique_in_each_scope():
    net = Network({})
    x = net.input("x", (1, 4, 4, 4))
    for scope in ("a", "b"):
        with net.scope(scope):
            for _ in range(2):
                for method in ("flatten", "silu", "hardswish", "relu", "sigmoid"):
                    getattr(net, method)(x)
                net.max_pool2d(x, 2)
                net.mean(x, (2, 3))
    names = [layer.name for layer in all_layers(net)]
    assert len(names) == len(set(names)), sorted(names)
    for expected in ("a.flatten", "a.flatten_1", "b.silu", "b.silu_1", "b.silu.sigmoid", "b.silu_1.sigmoid",
                     "a.hardswish_1.gate", "b.max_pool_1", "a.relu_1"):  # fmt: skip
        assert expected in names, (expected, sorted(names))


def test_unused_keys_are_reported(rng):
    ckpt = {**resnet_block_checkpoint(rng), "fc2.weight": np.zeros((1, 1), np.float32)}
    net = Network(ckpt)
    define_block(net)
    assert net.unused_keys() == ["fc2.weight"]


# --------------------------------------------------------------------------- precision


@pytest.mark.parametrize("precision", ["fp32", "fp16", "bf16"])
def test_precision_policy(rng, precision):
    ckpt = resnet_block_checkpoint(rng)
    net = Network(ckpt, precision=precision)
    define_block(net)
    compute = {"fp32": trt.float32, "fp16": trt.float16, "bf16": trt.bfloat16}[precision]
    numpy_dtype = {"fp32": np.dtype(np.float32), "fp16": np.dtype(np.float16), "bf16": bfloat16}[precision]
    # weights: converted once, from float32, to the network's dtype
    assert {a.dtype for a in net.weights.values()} == {numpy_dtype}
    assert np.array_equal(net.weights["fc.weight"].view(np.uint8), ckpt["fc.weight"].astype(numpy_dtype).view(np.uint8))
    # input and output stay float32; everything in between computes in the network's dtype
    assert net.trt_network.get_input(0).dtype == trt.float32
    assert net.trt_network.get_output(0).dtype == trt.float32
    layers = all_layers(net)
    casts = [la for la in layers if trt.ILayer.type.fget(la) == trt.LayerType.CAST]
    if precision == "fp32":
        assert not casts
    else:
        assert [la.name for la in casts] == ["input.cast", "logits.cast"]
        assert layers[0].name == "input.cast" and layers[-1].name == "logits.cast"
    inner = [la.get_output(0) for la in layers if la.name != "logits.cast"]
    assert {t.dtype for t in inner} == {compute}, {(t.name, t.dtype) for t in inner}


def test_io_dtype_fp16_has_no_casts(rng):
    net = Network(resnet_block_checkpoint(rng), precision="fp16", io_dtype="fp16")
    define_block(net)
    assert net.trt_network.get_input(0).dtype == net.trt_network.get_output(0).dtype == trt.float16
    assert not [la for la in all_layers(net) if trt.ILayer.type.fget(la) == trt.LayerType.CAST]


def test_unknown_precision():
    with pytest.raises(ValueError, match="unknown precision 'fp8': expected one of fp32, fp16, bf16"):
        Network({}, precision="fp8")


# --------------------------------------------------------------------------- weight lifetime


def _network_whose_locals_are_gone(rng, precision):
    ckpt = resnet_block_checkpoint(rng)
    expected = {k: v.copy() for k, v in ckpt.items()}
    net = Network(ckpt, precision=precision)
    define_block(net)
    return net, expected


@pytest.mark.parametrize("precision", ["fp32", "fp16", "bf16"])
def test_weights_handed_to_tensorrt_are_held_by_the_network(rng, precision):
    net, expected = _network_whose_locals_are_gone(rng, precision)
    gc.collect()
    churn = [np.full(4096, 7.0, np.float32) for _ in range(256)]  # reuse any freed memory
    readback = {
        "layer1.0.conv1.weight": layer_named(net, "layer1.0.conv1").kernel,
        "layer1.0.conv1.bias": layer_named(net, "layer1.0.conv1").bias,
        "layer1.0.conv2.weight": layer_named(net, "layer1.0.conv2").kernel,
        "layer1.0.bn2.scale": layer_named(net, "layer1.0.bn2").scale,
        "layer1.0.bn2.shift": layer_named(net, "layer1.0.bn2").shift,
        "fc.weight": layer_named(net, "fc.weight").weights,
        "fc.bias": layer_named(net, "fc.bias").weights,
    }
    assert set(readback) == set(net.weights)
    for name, seen in readback.items():
        held = net.weights[name]
        if isinstance(seen, np.ndarray):  # fp32/fp16: TensorRT gives a view of the very memory it reads
            assert seen.ctypes.data == held.ctypes.data, name
        else:  # bf16 comes back as trt.Weights, read from the memory TensorRT points at
            assert seen.dtype == trt.bfloat16 and seen.size == held.size, name
            seen = pytest.importorskip("netdef.reference.readback").weights_array(seen)
        assert np.array_equal(np.asarray(seen).view(np.uint8), held.reshape(-1).view(np.uint8)), name
    assert np.array_equal(net.weights["layer1.0.conv2.weight"].astype(np.float32),
                          expected["layer1.0.conv2.weight"].astype(net.precision.numpy).astype(np.float32))  # fmt: skip
    del churn


def test_weights_are_copies_not_views_of_the_checkpoint(rng):
    ckpt = resnet_block_checkpoint(rng)
    net = Network(ckpt)
    define_block(net)
    assert not np.shares_memory(net.weights["layer1.0.conv2.weight"], ckpt["layer1.0.conv2.weight"])
    assert not np.shares_memory(net.weights["fc.weight"], ckpt["fc.weight"])
    assert all(a.flags.c_contiguous and a.flags.writeable for a in net.weights.values())
    assert num_parameters(net) == sum(a.size for a in net.weights.values())


# --------------------------------------------------------------------------- BatchNorm folding


@pytest.mark.parametrize(("conv_bias", "eps", "groups"), [(True, 1e-5, 1), (False, 1e-5, 1), (True, 1e-3, 2)])
def test_bn_folding_equals_pytorch_conv_then_bn(rng, conv_bias, eps, groups):
    ckpt = {"conv.weight": randn(rng, 6, 4 // groups, 3, 3), **bn_params(rng, "bn", 6)}
    if conv_bias:
        ckpt["conv.bias"] = randn(rng, 6)
    net = Network(ckpt)
    net.conv2d(net.input("x", (2, 4, 9, 9)), "conv", 6, 3, stride=2, padding=1, groups=groups, bias=conv_bias,
               bn="bn", bn_eps=eps)  # fmt: skip
    net.check()
    t = {k: torch.from_numpy(v) for k, v in ckpt.items()}
    x = torch.from_numpy(randn(rng, 2, 4, 9, 9))
    unfolded = F.batch_norm(
        F.conv2d(x, t["conv.weight"], t.get("conv.bias"), stride=2, padding=1, groups=groups),
        t["bn.running_mean"], t["bn.running_var"], t["bn.weight"], t["bn.bias"], training=False, eps=eps,
    )  # fmt: skip
    folded_w, folded_b = (torch.from_numpy(net.weights[f"conv.{p}"]) for p in ("weight", "bias"))
    folded = F.conv2d(x, folded_w, folded_b, stride=2, padding=1, groups=groups)
    torch.testing.assert_close(folded, unfolded, rtol=1e-5, atol=1e-5)
    assert net.derived["conv.weight"][0] == "conv.weight" and "bn.running_var" in net.derived["conv.bias"]
    assert ("conv.bias" in net.derived["conv.bias"]) == conv_bias


# --------------------------------------------------------------------------- errors


def test_missing_weights_are_all_listed_with_closest_names(rng):
    ckpt = resnet_block_checkpoint(rng)
    ckpt["layer1.0.conv1.wieght"] = ckpt.pop("layer1.0.conv1.weight")
    del ckpt["layer1.0.bn2.running_var"], ckpt["fc.bias"]
    net = Network(ckpt, name="block")
    define_block(net)
    with pytest.raises(CheckpointError) as info:
        net.check()
    lines = str(info.value).splitlines()
    assert lines[0] == "<in-memory checkpoint>: 3 problem(s) defining 'block':"
    assert lines[1].startswith("  - missing weight 'layer1.0.conv1.weight', expected shape (4, 3, 3, 3) (closest: ")
    assert "layer1.0.conv1.wieght" in lines[1]
    assert lines[2].startswith("  - missing weight 'layer1.0.bn2.running_var', expected shape (4,) (closest: ")
    assert "layer1.0.bn2.running_mean" in lines[2]
    assert lines[3].startswith("  - missing weight 'fc.bias', expected shape (5,)")


def test_misshapen_weights_name_expected_and_actual(rng):
    ckpt = resnet_block_checkpoint(rng)
    ckpt["fc.weight"] = randn(rng, 5, 3)
    ckpt["layer1.0.conv2.weight"] = randn(rng, 4, 4, 5, 5)
    net = Network(ckpt)
    define_block(net)  # a zero placeholder of the right shape stands in, so the definition goes on
    with pytest.raises(CheckpointError) as info:
        net.check()
    message = str(info.value)
    assert "2 problem(s)" in message
    assert (
        "weight 'layer1.0.conv2.weight': expected shape (4, 4, 3, 3) (144 values), "
        "checkpoint has (4, 4, 5, 5) (400 values)" in message
    )
    assert "weight 'fc.weight': expected shape (5, 4) (20 values), checkpoint has (5, 3) (15 values)" in message


def test_non_finite_weights_are_reported(rng):
    weight = randn(rng, 4, 3, 3, 3)
    weight[0, 0, 0, 0], weight[1, 1, 1, 1], weight[2, 2, 2, 2] = np.nan, np.inf, -np.inf
    net = Network({"conv.weight": weight, "conv.bias": np.array([0, 0, np.nan, 0], np.float32)})
    net.conv2d(net.input("x", (1, 3, 8, 8)), "conv", 4, 3)
    with pytest.raises(CheckpointError) as info:
        net.check()
    assert "weight 'conv.weight': 3 of 108 values are NaN or Inf" in str(info.value)
    assert "weight 'conv.bias': 1 of 4 values are NaN or Inf" in str(info.value)


@pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")
def test_values_overflowing_float32_are_reported():
    net = Network({"fc.weight": np.full((2, 3), 1e300), "fc.bias": np.zeros(2)})
    net.linear(net.input("x", (1, 3)), "fc")
    assert net.problems == ["weight 'fc.weight': 6 of 6 values are NaN or Inf"]


def test_flat_weights_of_the_right_count_are_accepted(rng):
    """tensorrtx .wts files store flat arrays; the definition supplies the shape."""
    weight, bias = randn(rng, 4, 3, 3, 3), randn(rng, 4)
    net = Network({"conv.weight": weight.reshape(-1), "conv.bias": bias, "fc.weight": randn(rng, 10)})
    net.conv2d(net.input("x", (1, 3, 8, 8)), "conv", 4, 3)
    net.linear(net.input("f", (1, 5)), "fc", 2, bias=False)
    assert not net.problems
    assert net.weights["conv.weight"].shape == (4, 3, 3, 3) and np.array_equal(net.weights["conv.weight"], weight)
    assert net.weights["fc.weight"].shape == (1, 2, 5) or net.weights["fc.weight"].shape == (2, 5)

    net = Network({"conv.weight": weight.reshape(-1)[:-1], "conv.bias": bias})
    net.conv2d(net.input("x", (1, 3, 8, 8)), "conv", 4, 3)
    assert net.problems == [
        "weight 'conv.weight': expected shape (4, 3, 3, 3) (108 values), checkpoint has (107,) (107 values)"
    ]


def test_wrong_groups(rng):
    net = Network({"conv.weight": randn(rng, 6, 2, 3, 3), "conv.bias": randn(rng, 6)})
    x = net.input("x", (1, 4, 8, 8))
    with pytest.raises(NetworkDefinitionError, match=r"'conv': groups=3 must divide input channels \(4\) and output"):
        net.conv2d(x, "conv", 6, 3, groups=3)
    net.conv2d(x, "conv", 6, 3, groups=1)  # the checkpoint was made for groups=2
    assert net.problems == [
        "weight 'conv.weight': expected shape (6, 4, 3, 3) (216 values), checkpoint has (6, 2, 3, 3) (108 values)"
    ]


def test_duplicate_names_raise(rng):
    net = Network({"fc.weight": randn(rng, 2, 3), "fc.bias": randn(rng, 2)})
    x = net.input("x", (1, 3))
    net.relu(x, name="act")
    with pytest.raises(NetworkDefinitionError, match="duplicate layer name 'act'"):
        net.relu(x, name="act")
    net.linear(x, "fc")
    with pytest.raises(NetworkDefinitionError, match="duplicate (layer|weight) name 'fc"):
        net.linear(x, "fc")
    with pytest.raises(NetworkDefinitionError, match="input 'x': the network already has a tensor of that name"):
        net.input("x", (1, 3))
    with pytest.raises(NetworkDefinitionError, match="duplicate weight name 'w'"):
        net.constant("w", np.ones(2, np.float32)), net.constant("w", np.ones(2, np.float32))


@pytest.mark.parametrize(
    ("define", "message"),
    [
        (lambda net, x: net.conv2d(x, "conv", 4, 3), r"layer 'conv': needs a static input channels at axis 1"),
        (lambda net, x: net.batch_norm(x, "bn"), r"layer 'bn': needs a static channels at axis 1"),
    ],
)
def test_dynamic_channel_dimension_raises(define, message):
    net = Network({})
    with pytest.raises(NetworkDefinitionError, match=message):
        define(net, net.input("x", (1, -1, 8, 8)))


def test_dynamic_features_raise_in_linear():
    net = Network({})
    with pytest.raises(NetworkDefinitionError, match=r"layer 'fc': needs a static input features at axis 1"):
        net.linear(net.input("x", (2, -1)), "fc", 4)


@pytest.mark.parametrize(("a", "b"), [((2, 3, 4), (2, 5, 4)), ((2, 3), (4,)), ((3, 1, 4), (2, 3, 5))])
def test_non_broadcastable_add_raises(a, b):
    net = Network({})
    with pytest.raises(NetworkDefinitionError, match="do not broadcast"):
        net.add(net.input("a", a), net.input("b", b), name="sum")


def test_other_definition_errors():
    net = Network({})
    x = net.input("x", (1, 3, 8, 8))
    with pytest.raises(NetworkDefinitionError, match="give out_channels and kernel_size"):
        net.conv2d(x, "conv")
    with pytest.raises(NetworkDefinitionError, match="give out_features"):
        net.linear(net.flatten(x), "fc")
    with pytest.raises(NetworkDefinitionError, match="axis 4 is out of range for a rank-4 tensor"):
        net.softmax(x, dim=4)
    with pytest.raises(NetworkDefinitionError, match=r"bad shape \(1, 0, 3\)"):
        net.input("y", (1, 0, 3))
    with pytest.raises(NetworkDefinitionError, match="kernel_size must be an int or a pair"):
        net.max_pool2d(x, (2, 2, 2))


def test_folding_a_negative_running_var_and_fp16_overflow_are_problems():
    """Finite checkpoint entries can still make NaN/Inf weights: both causes are reported by check()."""
    ckpt = {
        "c.weight": np.full((4, 3, 1, 1), 1e5, np.float32),  # finite in fp32, Inf in fp16
        "bn.weight": np.ones(4, np.float32),
        "bn.bias": np.zeros(4, np.float32),
        "bn.running_mean": np.zeros(4, np.float32),
        "bn.running_var": np.array([1, -1, 1, -2], np.float32),
    }
    net = Network(ckpt, precision="fp16")
    net.conv2d(net.input("input", (1, 3, 4, 4)), "c", bias=False, bn="bn")
    with pytest.raises(CheckpointError) as info:
        net.check()
    message = str(info.value)
    assert "BatchNorm 'bn': running_var + eps <= 0 in 2 channel(s) (first: [1, 3])" in message
    assert "weight 'c.weight':" in message and "overflow float16" in message

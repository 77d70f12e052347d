"""ResNet, VGG, MobileNetV2 and ViT from torchvision-named checkpoints: names, numerics, builds, errors.

PyTorch twins with torchvision's exact parameter names live in ``tests/torch_models.py`` (seeded
random weights, randomized BatchNorm statistics). Numerics are checked with the NumPy reference
executor against PyTorch at small image sizes (32x32; the ViT is shrunk through its size options);
builds go through TensorRT-RTX on the CPU at full size. The full matrix is marked ``slow``.
Relative error = max |netdef - PyTorch| / max |PyTorch|; run with ``-s`` to see the printed figures.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch
from torch import nn
from torch_models import (
    calibrate_batch_norm,
    fit_classifier,
    randomize,
    state_dict_arrays,
    torchvision_twin,
)

import architectures
from netdef import backend
from netdef.build import BuildConfig, build
from netdef.errors import CheckpointError, NetworkDefinitionError
from netdef.network import Network, dtype_name
from netdef.reference import run
from netdef.reference.compare import folded_batch_norms
from netdef.reference.compare import torch_module_names as pytorch_layer_names

# YOLO detectors have their own tests (tests/test_yolo.py): no torchvision twin.
ARCHS = [n for n in architectures.names() if n != "lenet" and architectures.get(n).family != "yolo"]
FAST = {"resnet18", "mobilenet_v2", "vit_b_16"}
PRECISIONS = ("fp32", "fp16", "bf16")
SIZE = 32
CLASSES = 10
VIT_SMALL = {"patch_size": 8, "num_layers": 2, "num_heads": 4, "hidden_dim": 64, "mlp_dim": 128}
"""A ViT small enough for the reference executor; names and structure as ViT-B/16."""


def marked(archs, fast=FAST):
    return [pytest.param(a, marks=() if a in fast else pytest.mark.slow) for a in archs]


def options(arch: str) -> dict:
    return dict(VIT_SMALL) if arch == "vit_b_16" else {}


def define(arch: str, checkpoint, precision: str = "fp32", batch: int = -1, size: int = SIZE, **opts) -> Network:
    """``arch`` on ``checkpoint`` with a ``size`` x ``size`` input (the registry's is 224)."""
    return architectures.get(arch).build_network(
        checkpoint, precision=precision, batch=batch, input_shape=(3, size, size), **opts
    )


def images(n: int, seed: int = 0, size: int = SIZE) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, 3, size, size)).astype(np.float32)


@functools.lru_cache(maxsize=2)
def twin(arch: str) -> tuple[nn.Module, dict]:
    """Seeded PyTorch twin with CLASSES classes and its state_dict as arrays."""
    sizes = {"image_size": SIZE, **VIT_SMALL} if arch == "vit_b_16" else {}
    model = randomize(torchvision_twin(arch, CLASSES, **sizes), seed=0)
    return model, state_dict_arrays(model)


@functools.lru_cache(maxsize=1)
def decisive_twin(arch: str) -> tuple[nn.Module, dict, np.ndarray]:
    """A twin whose predictions on 64 inputs are decisive, as a trained network's (see fit_classifier)."""
    sizes = {"image_size": SIZE, **VIT_SMALL} if arch == "vit_b_16" else {}
    model = randomize(torchvision_twin(arch, CLASSES, **sizes), seed=1)
    calibrate_batch_norm(model, torch.from_numpy(images(32, seed=2)), seed=3)
    x = images(64, seed=4)
    fit_classifier(model, torch.from_numpy(x), seed=5)
    return model, state_dict_arrays(model), x


def torch_logits(model: nn.Module, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(torch.from_numpy(x)).numpy()


def relative_error(actual: np.ndarray, expected: np.ndarray) -> float:
    return float(np.abs(actual.astype(np.float64) - expected).max() / np.abs(expected).max())


# ------------------------------------------------------------------ names and registry


@pytest.mark.parametrize("arch", ARCHS)
def test_expected_weights_are_torchvision_state_dict(arch):
    """Every architecture reads exactly torchvision's parameter names and shapes (full size, no data)."""
    with torch.device("meta"):
        model = torchvision_twin(arch)
    state = {k: tuple(v.shape) for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    expected = architectures.get(arch).expected_weights()
    assert sorted(set(expected) ^ set(state)) == []
    assert {k: s for k, s in expected.items() if state[k] != s} == {}
    assert architectures.get(arch).num_parameters() == sum(int(np.prod(s)) for s in state.values())


def test_registry_input_shapes_and_outputs():
    for arch in ARCHS:
        a = architectures.get(arch)
        assert (a.input_shape, a.output) == ((3, 224, 224), "logits"), arch
        assert "num_classes" in a.options


def test_num_classes_is_inferred_from_the_classifier():
    _, checkpoint = twin("resnet18")
    net = define("resnet18", checkpoint, batch=2)
    assert net.io_tensors()[1]["shape"] == [2, CLASSES]
    assert net.unused_keys() == []
    empty = Network({}, name="resnet18")
    y = architectures.get("resnet18").define(empty, empty.input("input", (1, 3, 64, 64)))
    assert empty.shape_of(y) == (1, 1000)
    with pytest.raises(CheckpointError, match=r"fc.weight.*expected shape \(7, 512\).*has \(10, 512\)"):
        define("resnet18", checkpoint, batch=1, num_classes=7)


def test_batch_norm_is_folded_and_recorded_for_refit():
    _, checkpoint = twin("resnet18")
    net = define("resnet18", checkpoint, batch=1)
    assert net.derived["layer1.0.conv1.weight"] == [
        "layer1.0.conv1.weight", "layer1.0.bn1.weight", "layer1.0.bn1.bias",
        "layer1.0.bn1.running_mean", "layer1.0.bn1.running_var",
    ]  # fmt: skip
    assert "layer2.0.downsample.1.running_var" in net.derived["layer2.0.downsample.0.bias"]
    folded = folded_batch_norms(net)
    assert folded["layer2.0.downsample.1"] == "layer2.0.downsample.0" and folded["bn1"] == "conv1"
    assert len(folded) == sum(1 for k in checkpoint if k.endswith("running_mean"))
    names = {net.trt_network.get_layer(i).name for i in range(net.num_layers)}
    assert {"conv1", "layer1.0.conv1", "layer1.0.relu", "layer1.0.relu_1", "layer4.1.add", "fc"} <= names
    assert not any("bn" in n for n in names)
    bn = {k: checkpoint[f"layer1.0.bn1.{k}"] for k in ("weight", "bias", "running_mean", "running_var")}
    scale = bn["weight"] / np.sqrt(bn["running_var"] + 1e-5)
    np.testing.assert_allclose(net.weights["layer1.0.conv1.bias"], bn["bias"] - bn["running_mean"] * scale, rtol=1e-6)


# ------------------------------------------------------------------ numerics against PyTorch


@pytest.mark.parametrize("arch", marked(ARCHS, FAST | {"vgg16_bn"}))
def test_fp32_matches_pytorch(arch):
    model, checkpoint = twin(arch)
    batch = 2 if arch.startswith("vgg") else 4
    x = images(batch, seed=7)
    net = define(arch, checkpoint, batch=batch, **options(arch))
    assert net.unused_keys() == []
    out = run(net.trt_network, {"input": x}).outputs["logits"]
    error = relative_error(out, torch_logits(model, x))
    print(f"{arch} fp32 relative error {error:.2e}")
    assert out.shape == (batch, CLASSES)
    assert error <= 1e-4


@pytest.mark.parametrize("arch", marked(["resnet18", "vit_b_16", "mobilenet_v2", "resnet50"], {"resnet18", "vit_b_16"}))
def test_dynamic_batch_matches_pytorch(arch):
    """One network (batch -1) runs batches of 1, 3 and 5 (ViT: class token broadcast by shape layers)."""
    model, checkpoint = twin(arch)
    net = define(arch, checkpoint, batch=-1, **options(arch))
    assert net.io_tensors()[1]["shape"] == [-1, CLASSES]
    for batch in (1, 3, 5):
        x = images(batch, seed=batch)
        out = run(net.trt_network, {"input": x}).outputs["logits"]
        assert out.shape == (batch, CLASSES)
        assert relative_error(out, torch_logits(model, x)) <= 1e-4


@pytest.mark.parametrize("arch", marked(["resnet18", "mobilenet_v2", "vit_b_16", "vgg16_bn", "resnet50"]))
def test_layer_by_layer_against_pytorch_hooks(arch):
    """Every PyTorch module output that has a netdef twin (pytorch_layer_names) agrees to 1e-4."""
    model, checkpoint = twin(arch)
    x = images(2, seed=11)
    net = define(arch, checkpoint, batch=2, **options(arch))
    mapping = pytorch_layer_names(net)
    seen: dict[str, torch.Tensor] = {}

    def hook(name):
        def record(module, inputs, output):
            if isinstance(output, torch.Tensor) and name not in seen:  # first call of a shared module
                seen[name] = output.detach().clone()

        return record

    handles = [m.register_forward_hook(hook(n)) for n, m in model.named_modules() if n in mapping]
    torch_logits(model, x)
    for h in handles:
        h.remove()
    layers = run(net.trt_network, {"input": x}, capture=True).layers
    errors = {n: relative_error(layers[mapping[n]][0], t.numpy()) for n, t in seen.items()}
    worst = max(errors, key=errors.get)
    print(f"{arch}: {len(errors)} modules compared, worst {worst} -> {mapping[worst]}: {errors[worst]:.2e}")
    assert {n: e for n, e in errors.items() if e > 1e-4} == {}
    batch_norms = {n for n, m in model.named_modules() if isinstance(m, nn.BatchNorm2d)}
    assert batch_norms <= set(errors)  # every folded BatchNorm was compared
    assert len(errors) >= 10


@pytest.mark.parametrize("precision", ["fp16", "bf16"])
@pytest.mark.parametrize("arch", marked(ARCHS))
def test_reduced_precision_top1_agrees_with_pytorch_fp32(arch, precision):
    """64 random inputs: top-1 agreement >= 99% with PyTorch fp32; every tensor computed in the precision."""
    model, checkpoint, x = decisive_twin(arch)
    net = define(arch, checkpoint, precision=precision, batch=len(x), **options(arch))
    wanted = {"fp16": "float16", "bf16": "bfloat16"}[precision]
    floats = {"float32", "float16", "bfloat16"}
    layers = [net.trt_network.get_layer(i) for i in range(net.num_layers)]
    computed = {dtype_name(layer.get_output(0).dtype) for layer in layers if not layer.name.endswith(".cast")}
    assert computed & floats == {wanted}
    out = run(net.trt_network, {"input": x}).outputs["logits"]
    expected = torch_logits(model, x)
    agreement = float((out.argmax(1) == expected.argmax(1)).mean())
    print(f"{arch} {precision}: top-1 agreement {agreement:.1%}, relative error {relative_error(out, expected):.2e}")
    assert agreement >= 0.99


# ------------------------------------------------------------------ TensorRT builds


def random_checkpoint(arch: str, rng: np.random.Generator, **opts) -> dict[str, np.ndarray]:
    """Full-size random weights under the architecture's expected names (positive variances)."""
    ckpt = {}
    for key, shape in architectures.get(arch).expected_weights(**opts).items():
        if key.endswith("running_var"):
            ckpt[key] = rng.uniform(0.5, 1.5, shape).astype(np.float32)
        else:
            ckpt[key] = (rng.standard_normal(shape, dtype=np.float32) * 0.02).astype(np.float32)
    return ckpt


BUILD_FAST = {("resnet18", "fp32", "static"), ("resnet18", "fp16", "dynamic"), ("mobilenet_v2", "bf16", "dynamic")}
BUILD_MATRIX = [
    pytest.param(a, p, b, marks=() if (a, p, b) in BUILD_FAST else pytest.mark.slow)
    for a in ARCHS
    for p in PRECISIONS
    for b in ("static", "dynamic")
]


@pytest.mark.parametrize(("arch", "precision", "batch"), BUILD_MATRIX)
def test_builds_with_tensorrt(arch, precision, batch, rng):
    """Full size (224x224), every precision, static batch 2 or dynamic 1:4:8; TensorRT's output shape."""
    net = architectures.get(arch).build_network(
        random_checkpoint(arch, rng), precision=precision, batch=2 if batch == "static" else -1
    )
    expected = (2, 1000) if batch == "static" else (-1, 1000)
    assert tuple(net.trt_network.get_output(0).shape) == expected
    engine = build(net, BuildConfig(batch=None if batch == "static" else (1, 4, 8)), definition={"architecture": arch})
    assert len(engine.plan) > 0 and engine.precision == precision
    (output,) = [t for t in engine.metadata["io"] if t["mode"] == "output"]
    assert (output["name"], tuple(output["shape"]), output["dtype"]) == ("logits", expected, "float32")
    if batch == "dynamic":
        assert engine.metadata["profile"]["batch"] == [1, 4, 8]


def test_vit_dynamic_batch_builds_with_tensorrt(rng):
    """ViT-B/16 width with 2 layers: the run-time class-token broadcast (shape tensors) builds."""
    ckpt = random_checkpoint("vit_b_16", rng, num_layers=2)
    net = architectures.get("vit_b_16").build_network(ckpt, precision="bf16", batch=-1, num_layers=2)
    engine = build(net, BuildConfig(batch=(1, 2, 4)))
    assert engine.metadata["io"][1]["shape"] == [-1, 1000]


# ------------------------------------------------------------------ errors


def test_every_checkpoint_problem_is_listed_at_once():
    _, checkpoint = twin("resnet18")
    bad = dict(checkpoint)
    del bad["layer2.0.downsample.1.running_var"], bad["layer4.1.conv2.weight"]
    bad["layer1.0.conv1.weight"] = np.zeros((64, 64, 3, 1), np.float32)
    bad["layer3.1.bn2.weight"] = np.zeros(10, np.float32)
    with pytest.raises(CheckpointError) as info:
        architectures.get("resnet18").build_network(bad, batch=1)
    message = str(info.value)
    assert "4 problem(s)" in message
    for text in (
        "missing weight 'layer2.0.downsample.1.running_var', expected shape (128,)",
        "missing weight 'layer4.1.conv2.weight', expected shape (512, 512, 3, 3)",
        "'layer1.0.conv1.weight': expected shape (64, 64, 3, 3) (36864 values), checkpoint has (64, 64, 3, 1)",
        "'layer3.1.bn2.weight': expected shape (256,) (256 values), checkpoint has (10,)",
    ):
        assert text in message


def test_vit_rejects_an_image_size_that_is_not_a_multiple_of_the_patch():
    with pytest.raises(NetworkDefinitionError, match="not divisible by the patch size 16"):
        define("vit_b_16", {}, batch=1, size=40, num_layers=1)


# ------------------------------------------------------------------ transformer and pooling layers


def test_layer_norm_gather_and_attention_match_torch(rng):
    embed, heads = 32, 4
    mha = nn.MultiheadAttention(embed, heads, batch_first=True)
    norm = nn.LayerNorm(embed, eps=1e-6)
    randomize(nn.ModuleDict({"attn": mha, "norm": norm}), seed=3)
    ckpt = {f"attn.{k}": v for k, v in state_dict_arrays(mha).items()}
    ckpt |= {f"norm.{k}": v for k, v in state_dict_arrays(norm).items()}
    net = Network(ckpt)
    x = net.input("input", (-1, 6, embed))
    y = net.multi_head_attention(net.layer_norm(x, "norm", eps=1e-6), "attn", heads)
    net.output(net.gather(y, -1, dim=1), "last")
    data = rng.standard_normal((3, 6, embed)).astype(np.float32)
    with torch.no_grad():
        t = norm(torch.from_numpy(data))
        expected = mha(t, t, t, need_weights=False)[0][:, -1].numpy()
    out = run(net.trt_network, {"input": data}).outputs["last"]
    assert out.shape == (3, embed)
    assert relative_error(out, expected) <= 1e-5
    with pytest.raises(NetworkDefinitionError, match="index 6 is out of range for axis 1 of size 6"):
        net.gather(y, 6, dim=1)
    with pytest.raises(NetworkDefinitionError, match="not divisible by 5 heads"):
        net.multi_head_attention(y, "attn", 5)


def test_broadcast_batch_repeats_a_constant_to_a_dynamic_batch():
    net = Network({"token": np.arange(4, dtype=np.float32).reshape(1, 1, 4)})
    x = net.input("input", (-1, 3, 4))
    token = net.broadcast_batch(net.parameter("token", (1, 1, 4)), x)
    net.output(net.concat([token, x], dim=1), "out")
    assert tuple(net.trt_network.get_output(0).shape) == (-1, 4, 4)
    data = np.ones((5, 3, 4), np.float32)
    out = run(net.trt_network, {"input": data}).outputs["out"]
    np.testing.assert_array_equal(out[:, 0], np.tile(np.arange(4, dtype=np.float32), (5, 1)))
    np.testing.assert_array_equal(out[:, 1:], data)


@pytest.mark.parametrize(("size", "bins"), [(1, 7), (2, 7), (5, 3), (7, 7), (14, 7), (6, 4)])
def test_adaptive_avg_pool_matches_torch_for_any_bins(size, bins, rng):
    net = Network({})
    x = net.input("input", (2, 3, size, size + 1))
    net.output(net.adaptive_avg_pool2d(x, (bins, bins - 1 if bins > 1 else 1)), "out")
    data = rng.standard_normal((2, 3, size, size + 1)).astype(np.float32)
    expected = nn.functional.adaptive_avg_pool2d(torch.from_numpy(data), (bins, max(bins - 1, 1))).numpy()
    out = run(net.trt_network, {"input": data}).outputs["out"]
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)
    assert net.weights == {}  # the averaging matrices are not checkpoint weights


# ------------------------------------------------------------------ CLI


def test_cli_build_takes_a_torchvision_pth_as_it_is(tmp_path):
    from typer.testing import CliRunner

    from netdef.cli import app
    from netdef.engine import Engine

    model, _ = twin("mobilenet_v2")
    torch.save(model.state_dict(), tmp_path / "mobilenet_v2.pth")  # num_batches_tracked included
    engine_file = tmp_path / "m.engine"
    args = ["build", "mobilenet_v2", "--weights", str(tmp_path / "mobilenet_v2.pth"), "-o", str(engine_file)]
    result = CliRunner().invoke(app, [*args, "--precision", "fp16", "--batch", "1:2:4"])
    assert result.exit_code == 0, result.output
    assert "warning" not in result.output
    engine = Engine.load(engine_file)
    assert engine.metadata["definition"]["architecture"] == "mobilenet_v2"
    assert engine.metadata["io"][1]["shape"] == [-1, CLASSES]
    assert engine.metadata["derived_weights"]["features.1.conv.1.weight"][-1] == "features.1.conv.2.running_var"


def test_cli_list_shows_every_architecture_with_its_parameter_count():
    from typer.testing import CliRunner

    from netdef.cli import app

    result = CliRunner().invoke(app, ["list"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    for arch in ARCHS:
        line = next(line for line in result.output.splitlines() if line.split()[:1] == [arch])
        assert f"{architectures.get(arch).num_parameters():,}" in line


# ------------------------------------------------------------------ on a GPU


CAPS = backend.capabilities()
needs_gpu = pytest.mark.skipif(not CAPS.can_run, reason=f"cannot run engines here: {CAPS.reason}")


@pytest.mark.gpu
@needs_gpu
@pytest.mark.parametrize("precision", PRECISIONS)
@pytest.mark.parametrize("arch", ["resnet18", "mobilenet_v2", "vit_b_16"])
def test_engine_on_gpu_matches_pytorch(arch, precision):
    from netdef.runtime import run_engine_file

    model, checkpoint, x = decisive_twin(arch)
    net = define(arch, checkpoint, precision=precision, batch=-1, **options(arch))
    engine = build(net, BuildConfig(batch=(1, 16, 64)))
    out = run_engine_file(engine, {"input": x})["logits"]
    expected = torch_logits(model, x)
    agreement = float((out.argmax(1) == expected.argmax(1)).mean())
    print(
        f"{arch} {precision} on {CAPS.gpu}: relative error {relative_error(out, expected):.2e}, top-1 {agreement:.1%}"
    )
    if precision == "fp32":
        assert relative_error(out, expected) <= 1e-2  # TF32 convolutions and matrix multiplies may be used
    assert agreement >= 0.99


def test_unnamed_gathers_and_broadcasts_get_unique_names():
    net = Network({})
    x = net.input("input", (-1, 3, 4))
    a, b = net.gather(x, 0, dim=1), net.gather(x, [1, 2], dim=1)
    assert (a.name, net.shape_of(a), b.name, net.shape_of(b)) == ("gather", (-1, 4), "gather_1", (-1, 2, 4))
    token = net.scalar(1.0, x)
    assert net.broadcast_batch(token, x).name == "broadcast_batch"
    assert net.broadcast_batch(token, x).name == "broadcast_batch_1"

"""The zoo harness: torchvision's own models are the oracle for netdef's architectures.

For every registered architecture that torchvision also lists, :func:`zoo_model` builds
torchvision's model (``tests/torchvision_models.get_model``) with random weights prepared so that
the comparison means something:

- parameters that torchvision initialises to zero (ViT's head, class token, biases) get random
  values, and BatchNorm gets a random affine part;
- the last BatchNorm of each residual branch is scaled down (trained residual branches are small
  next to the identity; full-size random ones make a deep network chaotic);
- BatchNorm running statistics are measured on random images, then randomly perturbed, so every
  layer's output stays O(1) and depends on the input, as in a trained network;
- the classifier is refit by ridge least squares so that a batch of random images gets random
  labels by a clear margin (random logits are near-ties, which flip in any precision).

Its ``state_dict()`` is the checkpoint, as it is. :class:`ZooCase` says how each architecture is
exercised: the image size for the NumPy reference executor (small, to stay fast), torchvision
keyword arguments, netdef options, and checkpoint entries that netdef does not read on purpose.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from torchvision_models import get_model, list_classification_models, torchvision_models

import architectures
from netdef.network import Network

CLASSES = 10
"""Classes of every zoo model in the tests (netdef reads the count off the classifier)."""

torch.set_num_threads(1)  # small images: one thread is as fast, and shared cores make OpenMP threads spin-wait


@dataclass(frozen=True)
class ZooCase:
    """How the zoo tests exercise one architecture."""

    size: int = 32
    """Image size for the reference executor (torchvision's default size is used for builds)."""
    torchvision_kwargs: dict[str, Any] = field(default_factory=dict)
    """Keyword arguments for ``get_model`` (besides ``num_classes``)."""
    options: dict[str, Any] = field(default_factory=dict)
    """netdef definition options matching ``torchvision_kwargs``."""
    builder: str | None = None
    """A ``torchvision.models`` class or function to call with ``torchvision_kwargs`` instead of
    ``get_model(name)`` (a ViT shrunk through its size arguments)."""
    input_size: int | None = None
    """The registered input size, where it is not the crop size of torchvision's default weights."""
    ignored: tuple[str, ...] = ()
    """Prefixes of checkpoint entries netdef does not read on purpose (training-only heads)."""
    build_torchvision_kwargs: dict[str, Any] | None = None
    """For the full-size TensorRT build, when the numerics' model does not fit torchvision's input size
    (a ViT's position embedding): ``get_model`` keyword arguments of a separate model..."""
    build_options: dict[str, Any] = field(default_factory=dict)
    """... and the netdef options that match it."""


VIT_SMALL = {"patch_size": 8, "num_layers": 2, "num_heads": 4, "hidden_dim": 64, "mlp_dim": 128}
VIT_H_SMALL = {"patch_size": 14, "num_layers": 2, "num_heads": 16, "hidden_dim": 128, "mlp_dim": 256}
MAXVIT_T = {
    "stem_channels": 64,
    "block_channels": [64, 128, 256, 512],
    "block_layers": [2, 2, 5, 2],
    "head_dim": 32,
    "stochastic_depth_prob": 0.2,
}

CASES: dict[str, ZooCase] = {
    "alexnet": ZooCase(size=64),
    "googlenet": ZooCase(torchvision_kwargs={"transform_input": True}, ignored=("aux1.", "aux2.")),
    "inception_v3": ZooCase(size=75, torchvision_kwargs={"transform_input": True}, ignored=("AuxLogits.",)),
    "vit_b_16": ZooCase(
        builder="VisionTransformer",
        torchvision_kwargs={"image_size": 32, **VIT_SMALL},
        options=VIT_SMALL,
        build_torchvision_kwargs={},
    ),
    # zoo-tf: full-size ViTs on 32x32 images (a position embedding for 2 or 5 tokens); ViT-H/14's
    # numerics shrunk (patch 14, 16 heads, 2 layers, width 128), its build at its weights' 518x518
    "vit_b_32": ZooCase(torchvision_kwargs={"image_size": 32}, build_torchvision_kwargs={}),
    "vit_l_16": ZooCase(torchvision_kwargs={"image_size": 32}, build_torchvision_kwargs={}),
    "vit_l_32": ZooCase(torchvision_kwargs={"image_size": 32}, build_torchvision_kwargs={}),
    "vit_h_14": ZooCase(
        size=28,
        builder="VisionTransformer",
        torchvision_kwargs={"image_size": 28, **VIT_H_SMALL},
        options=VIT_H_SMALL,
        build_torchvision_kwargs={"image_size": 518},
    ),
    # Swin V2's 8x8 windows: at 64x64 the first stage's windows are shifted (masks), later ones padded
    **{name: ZooCase(size=64) for name in ("swin_v2_t", "swin_v2_s", "swin_v2_b")},
    # maxvit_t's builder fixes 7x7 partitions (224x224 only): MaxVit with maxvit_t's widths and depths
    # and 2x2 partitions at 64x64 for the numerics, maxvit_t itself for the build
    "maxvit_t": ZooCase(
        size=64,
        builder="MaxVit",
        torchvision_kwargs={"input_size": (64, 64), "partition_size": 2, **MAXVIT_T},
        options={"partition_size": 2},
        build_torchvision_kwargs={},
    ),
}
"""Architectures that differ from ``ZooCase()``."""

FAMILY_DEFAULTS = {
    # zoo-cnn
    "alexnet": "alexnet",
    "vgg": "vgg11",
    "resnet": "resnet18",
    "squeezenet": "squeezenet1_1",
    "densenet": "densenet121",
    "googlenet": "googlenet",
    "inception": "inception_v3",
    "shufflenetv2": "shufflenet_v2_x0_5",
    "mnasnet": "mnasnet0_5",
    "mobilenetv2": "mobilenet_v2",
    "mobilenetv3": "mobilenet_v3_small",
    "efficientnet": "efficientnet_b0",
    # zoo-tf
    "regnet": "regnet_x_400mf",
    "convnext": "convnext_tiny",
    "swin_transformer": "swin_t",
    "maxvit": "maxvit_t",
    "vision_transformer": "vit_b_16",
}
"""torchvision module -> the member ``make test`` runs; the rest of the family is marked slow."""


def case(name: str) -> ZooCase:
    return CASES.get(name, ZooCase())


def family(name: str) -> str:
    """torchvision's module for ``name`` (``resnet``, ``mobilenetv3``, ...)."""
    return torchvision_models().get_model_builder(name).__module__.rsplit(".", 1)[-1]


@functools.cache
def zoo_names() -> list[str]:
    """Registered netdef architectures that torchvision lists as classification models."""
    return sorted(set(architectures.names()) & set(list_classification_models()))


def is_default(name: str) -> bool:
    """Whether ``make test`` runs ``name`` (one member per family)."""
    return FAMILY_DEFAULTS.get(family(name)) == name


# ------------------------------------------------------------------ torchvision's model, prepared


def images(n: int, size: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, 3, size, size)).astype(np.float32)


@functools.lru_cache(maxsize=1)
def zoo_model(name: str, batch: int = 8) -> tuple[nn.Module, dict[str, np.ndarray], np.ndarray]:
    """torchvision's ``name`` (CLASSES classes, eval mode) prepared as the module docstring says, its
    ``state_dict`` as arrays (``num_batches_tracked`` kept), and ``batch`` images it classifies decisively."""
    c = case(name)
    torch.manual_seed(0)
    if c.builder is None:
        model = get_model(name, num_classes=CLASSES, **c.torchvision_kwargs)
    else:
        model = getattr(torchvision_models(), c.builder)(num_classes=CLASSES, **c.torchvision_kwargs).eval()
    randomize_untrained(model, seed=1)
    calibrate_batch_norm(model, torch.from_numpy(images(16, c.size, seed=2)), seed=3)
    x = images(batch, c.size, seed=4)
    fit_classifier(model, torch.from_numpy(x), seed=5)
    return model, state_dict_views(model), x


@torch.no_grad()
def randomize_untrained(model: nn.Module, seed: int = 0) -> nn.Module:
    """Random values for what torchvision initialises to constants: all-zero parameters (He-scaled
    for matrices, N(0, 0.1) otherwise), parameters filled with one constant, and the affine part of
    normalizations (weight 0.5-1.5, bias N(0, 0.1))."""
    gen = torch.Generator().manual_seed(seed)
    norms = nn.BatchNorm2d | nn.BatchNorm1d | nn.LayerNorm | nn.GroupNorm
    for module in model.modules():
        if isinstance(module, norms) and getattr(module, "weight", None) is not None:
            module.weight.copy_(torch.rand(module.weight.shape, generator=gen) + 0.5)
        if isinstance(module, norms) and getattr(module, "bias", None) is not None:
            module.bias.copy_(torch.randn(module.bias.shape, generator=gen) * 0.1)
    for param in model.parameters():
        if param.is_floating_point() and not param.any():
            scale = param[0].numel() ** -0.5 if param.ndim >= 2 else 0.1
            param.copy_(torch.randn(param.shape, generator=gen) * scale)
        elif param.is_floating_point() and param.numel() > 1 and (param == param.flatten()[0]).all():
            # one constant (ConvNeXt's layer_scale 1e-6, Swin V2's logit_scale log 10): 0.5-1.5 times
            # the constant, at least 0.1 in magnitude (a 1e-6 layer scale would hide its whole block)
            value = param.flatten()[0].abs().clamp(min=0.1) * param.flatten()[0].sign()
            param.copy_(value * (torch.rand(param.shape, generator=gen) + 0.5))
    return model


def residual_branch_norms(model: nn.Module) -> list[nn.BatchNorm2d]:
    """The last BatchNorm of every residual branch (not of its shortcut projection)."""
    found = []
    for module in model.modules():
        residual = type(module).__name__ in ("BasicBlock", "Bottleneck", "ResBottleneckBlock") or any(
            getattr(module, flag, False) for flag in ("use_res_connect", "apply_residual")
        )
        if not residual:
            continue
        norms = [
            m
            for n, m in module.named_modules()
            if isinstance(m, nn.BatchNorm2d) and not n.startswith(("downsample", "proj"))
        ]
        if norms:
            found.append(norms[-1])
    return found


@torch.no_grad()
def calibrate_batch_norm(model: nn.Module, x: torch.Tensor, seed: int = 0, residual_scale: float = 0.2) -> nn.Module:
    """BatchNorm statistics measured on ``x`` (BatchNorms alone in train mode), then perturbed
    (variance by 0.75-1.25, mean by 0.1 std); residual branches' last BatchNorm weight times ``residual_scale``."""
    for norm in residual_branch_norms(model):
        norm.weight.mul_(residual_scale)
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d | nn.BatchNorm1d)]
    model.eval()
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the pass
        m.train()
    model(x)
    model.eval()
    gen = torch.Generator().manual_seed(seed)
    for m in norms:
        m.momentum = 0.1
        m.running_var.mul_(torch.rand(m.num_features, generator=gen) * 0.5 + 0.75)
        m.running_mean.add_(torch.randn(m.num_features, generator=gen) * 0.1 * m.running_var.sqrt())
    return model


def classifier(model: nn.Module) -> nn.Linear | nn.Conv2d:
    """The last linear layer, or SqueezeNet's final 1x1 convolution."""
    return [m for m in model.modules() if isinstance(m, nn.Linear | nn.Conv2d)][-1]


@torch.no_grad()
def fit_classifier(model: nn.Module, x: torch.Tensor, seed: int = 0, ridge: float = 1e-3) -> torch.Tensor:
    """Refit the classifier (ridge least squares) so that ``model(x)`` picks random labels by a clear
    margin (target +1 for the label, -1 otherwise), as a trained classifier would; returns the labels.

    A 1x1 convolution classifier (SqueezeNet) is fit at every position, each a sample with its image's label.
    """
    head = classifier(model)
    features: list[torch.Tensor] = []
    hook = head.register_forward_hook(lambda module, inputs, output: features.append(inputs[0]))
    model(x)
    hook.remove()
    f = features[0].double()
    classes = head.out_features if isinstance(head, nn.Linear) else head.out_channels
    labels = torch.randint(0, classes, (len(x),), generator=torch.Generator().manual_seed(seed))
    target = torch.full((len(x), classes), -1.0, dtype=torch.float64)
    target[torch.arange(len(x)), labels] = 1.0
    if f.ndim == 4:  # (N, C, H, W): one sample per position
        positions = f.shape[2] * f.shape[3]
        f = f.permute(0, 2, 3, 1).reshape(-1, f.shape[1])
        target = target.repeat_interleave(positions, dim=0)
    mean = f.mean(0) if head.bias is not None else torch.zeros(f.shape[1], dtype=f.dtype)  # (MaxViT's has none)
    scale = (f - mean).norm(dim=1).mean()
    centered = (f - mean) / scale
    rows, dims = centered.shape
    if dims <= rows:
        gram = centered.T @ centered + ridge * torch.eye(dims, dtype=torch.float64)
        weight = torch.linalg.solve(gram, centered.T @ target).T / scale
    else:  # the same ridge solution through the (rows x rows) system
        gram = centered @ centered.T + ridge * torch.eye(rows, dtype=torch.float64)
        weight = (centered.T @ torch.linalg.solve(gram, target)).T / scale
    head.weight.copy_(weight.float().reshape(head.weight.shape))
    if head.bias is not None:
        head.bias.copy_((-weight @ mean).float())
    return labels


def state_dict_views(model: nn.Module) -> dict[str, np.ndarray]:
    """``model.state_dict()`` as NumPy views of the model's own tensors (no copy: VGG's are 0.5 GB),
    ``num_batches_tracked`` kept: a torchvision checkpoint, valid while the model is left unchanged."""
    return {k: v.detach().numpy() for k, v in model.state_dict().items()}


def torch_logits(model: nn.Module, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(torch.from_numpy(x)).numpy()


def build_checkpoint(name: str) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The checkpoint and netdef options for the TensorRT build at torchvision's input size."""
    c = case(name)
    if c.build_torchvision_kwargs is None:
        return zoo_model(name)[1], dict(c.options)
    torch.manual_seed(0)
    model = randomize_untrained(get_model(name, num_classes=CLASSES, **full_size_kwargs(name)), seed=1)
    return state_dict_views(model), dict(c.build_options)


def full_size_kwargs(name: str) -> dict[str, Any]:
    """torchvision keyword arguments of the model at its default input size."""
    c = case(name)
    return dict(c.torchvision_kwargs if c.build_torchvision_kwargs is None else c.build_torchvision_kwargs)


def torchvision_input_size(name: str) -> int:
    """The image size torchvision's default weights are evaluated at (their transforms' crop size),
    unless the case says otherwise."""
    if case(name).input_size is not None:
        return case(name).input_size
    weights = torchvision_models().get_model_weights(name).DEFAULT
    return int(weights.transforms.keywords["crop_size"])


@contextlib.contextmanager
def _regnet_widths_on_cpu() -> Iterator[None]:
    """RegNet's builders compute their stage widths with tensor arithmetic, which the meta device
    cannot do (no data): that one step runs on the CPU."""
    params = torchvision_models().regnet.BlockParams
    original = params.__dict__["from_init_params"]

    def on_cpu(cls, *args, **kwargs):
        with torch.device("cpu"):
            return original.__func__(cls, *args, **kwargs)

    params.from_init_params = classmethod(on_cpu)
    try:
        yield
    finally:
        params.from_init_params = original


def torchvision_state_shapes(name: str) -> dict[str, tuple[int, ...]]:
    """torchvision's ``state_dict`` names and shapes at 1000 classes (built on the meta device: no memory)."""
    with torch.device("meta"), _regnet_widths_on_cpu():
        model = get_model(name, **full_size_kwargs(name))
    return {k: tuple(v.shape) for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}


# ------------------------------------------------------------------ netdef's side


def define(
    name: str, checkpoint, precision: str = "fp32", batch: int = -1, size: int | None = None, **options: Any
) -> Network:
    """Architecture ``name`` on ``checkpoint`` at the case's image size (the registry fixes torchvision's
    default) with the case's options, updated by ``options``."""
    c = case(name)
    size = size or c.size
    arch = architectures.get(name)
    return arch.build_network(
        checkpoint, precision=precision, batch=batch, input_shape=(3, size, size), **{**c.options, **options}
    )


def unread(net: Network, name: str) -> list[str]:
    """Checkpoint entries the definition did not read, other than the case's ignored ones."""
    return [k for k in net.unused_keys() if not k.startswith(case(name).ignored)]


def relative_error(actual: np.ndarray, expected: np.ndarray) -> float:
    """max |actual - expected| / max |expected|."""
    return float(np.abs(actual.astype(np.float64) - expected).max() / np.abs(expected).max())

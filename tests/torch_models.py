"""PyTorch reference models for comparing netdef against PyTorch on the CPU: LeNet and torchvision's own models."""

from __future__ import annotations

import torch
from torch import nn
from torchvision_models import get_model, torchvision_models

from netdef.cli.torch_models import lenet_module


def LeNet() -> nn.Module:  # noqa: N802 - used like the class it returns
    """TensorRT's MNIST sample network in PyTorch, 10 logits out (the one netdef ships for --vs-torch)."""
    return lenet_module()


def torchvision_model(arch: str, num_classes: int = 1000, **sizes) -> nn.Module:
    """torchvision's own model ``arch`` (eval mode, torchvision's initialisation).

    ``sizes`` go to the model's class: ``torchvision_model("vit_b_16", image_size=32, patch_size=8, ...)``
    builds ``VisionTransformer`` with those sizes (the ``vit_b_16`` builder fixes them).
    """
    if sizes and arch.startswith("vit_"):
        return torchvision_models().VisionTransformer(num_classes=num_classes, **sizes).eval()
    return get_model(arch, num_classes=num_classes, **sizes)


@torch.no_grad()
def randomize(model: nn.Module, seed: int = 0) -> nn.Module:
    """Seeded random weights that keep activations O(1), and non-default BatchNorm statistics and
    affine parameters (so that folding BatchNorm is really tested). Returns ``model`` in eval mode."""
    gen = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, nn.Conv2d | nn.Linear):
            fan_in = module.weight[0].numel()
            module.weight.copy_(torch.randn(module.weight.shape, generator=gen) * (2.0 / fan_in) ** 0.5)
            if module.bias is not None:
                module.bias.copy_(torch.randn(module.bias.shape, generator=gen) * 0.1)
        elif isinstance(module, nn.BatchNorm2d):
            c = module.num_features
            module.weight.copy_(torch.rand(c, generator=gen) * 0.5 + 0.5)
            module.bias.copy_(torch.randn(c, generator=gen) * 0.1)
            module.running_mean.copy_(torch.randn(c, generator=gen) * 0.2)
            module.running_var.copy_(torch.rand(c, generator=gen) * 1.5 + 0.5)
        elif isinstance(module, nn.LayerNorm):
            module.weight.copy_(torch.rand(module.weight.shape, generator=gen) * 0.5 + 0.75)
            module.bias.copy_(torch.randn(module.bias.shape, generator=gen) * 0.1)
        elif isinstance(module, nn.MultiheadAttention):
            e = module.embed_dim
            module.in_proj_weight.copy_(torch.randn(module.in_proj_weight.shape, generator=gen) * e**-0.5)
            module.in_proj_bias.copy_(torch.randn(module.in_proj_bias.shape, generator=gen) * 0.1)
    for name, param in model.named_parameters():
        if name in ("class_token", "encoder.pos_embedding"):
            param.copy_(torch.randn(param.shape, generator=gen) * 0.5)
    return model.eval()


def state_dict_arrays(model: nn.Module) -> dict:
    """``model.state_dict()`` as NumPy arrays: a torchvision-style checkpoint (``num_batches_tracked`` kept)."""
    return {k: v.detach().cpu().numpy().copy() for k, v in model.state_dict().items()}

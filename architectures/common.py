"""Helpers shared by the torchvision-style definitions.

(To compare a network with its PyTorch twin layer by layer, see
:func:`netdef.reference.compare.torch_module_names`.)
"""

from __future__ import annotations

import math

from netdef.network import Network, Tensor


def num_classes(net: Network, classifier: str, given: int | None, default: int = 1000) -> int:
    """``given``, else the class count of the checkpoint's classifier ``classifier`` (a scope, e.g.
    ``"fc"``), else ``default``.

    The count is the length of ``{classifier}.bias``; without a bias, the first dimension of a 2-D
    ``{classifier}.weight``. (A ``.wts`` file stores tensors flat, so the weight's shape says
    nothing there.) Without a checkpoint (``Architecture.expected_weights()``) it is ``default``
    (ImageNet's 1000).
    """
    if given is not None:
        return given
    bias = net.checkpoint_shape(f"{classifier}.bias")
    if bias is not None:
        return math.prod(bias)
    weight = net.checkpoint_shape(f"{classifier}.weight")
    return weight[0] if weight is not None and len(weight) == 2 else default


def conv_norm_activation(
    net: Network,
    x: Tensor,
    name: str,
    out_channels: int,
    kernel_size: int = 3,
    stride: int = 1,
    groups: int = 1,
    dilation: int = 1,
    activation: str | None = "relu",
    eps: float = 1e-5,
) -> Tensor:
    """torchvision's ``Conv2dNormActivation`` ``name``: convolution ``.0`` (padding keeps the size at
    stride 1) with BatchNorm ``.1`` folded, then ``activation`` ``.2`` (a Network method by name, or None)."""
    with net.scope(name):
        padding = (kernel_size - 1) // 2 * dilation
        x = net.conv2d(
            x, "0", out_channels, kernel_size, stride=stride, padding=padding, dilation=dilation, groups=groups,
            bias=False, bn="1", bn_eps=eps,
        )  # fmt: skip
        return x if activation is None else getattr(net, activation)(x, name="2")


def make_divisible(v: float, divisor: int, min_value: int | None = None) -> int:
    """Round channels to a multiple of ``divisor`` without going down by more than 10% (torchvision's rule)."""
    min_value = min_value or divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    return new_v + divisor if new_v < 0.9 * v else new_v


def basic_conv2d(net: Network, x: Tensor, name: str, out_channels: int, kernel_size, stride=1, padding=0) -> Tensor:
    """GoogLeNet's and Inception-v3's ``BasicConv2d`` ``name``: ``conv`` with ``bn`` (eps 0.001) folded, ReLU."""
    with net.scope(name):
        x = net.conv2d(
            x, "conv", out_channels, kernel_size, stride=stride, padding=padding, bias=False, bn="bn", bn_eps=1e-3
        )
        return net.relu(x, name="relu")


def transform_input(net: Network, x: Tensor) -> Tensor:
    """``transform_input=True`` of GoogLeNet and Inception-v3: images normalized with ImageNet's mean and
    std become images normalized to [-1, 1] (``x * std / 0.5 + (mean - 0.5) / 0.5`` per channel), as
    torchvision's pretrained weights of both expect."""
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    scale = [s / 0.5 for s in std]
    shift = [(m - 0.5) / 0.5 for m in mean]
    return net.channel_affine(x, scale, shift, name="transform_input")

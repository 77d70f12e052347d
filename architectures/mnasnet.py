"""MNASNet B1 (Tan et al., 2018) as in torchvision's ``mnasnet.py``: depth multipliers 0.5, 0.75, 1.0, 1.3.

Takes torchvision checkpoints as they are: ``layers.{i}`` numbered as in the ``nn.Sequential`` (stem
convolutions ``0``, ``3``, ``6``; stacks of inverted residuals ``8``-``13`` with ``layers.{j}.layers.{k}``
inside; the 1x1 head ``14``) and ``classifier.1``. Every BatchNorm is folded.
"""

from __future__ import annotations

from architectures.common import num_classes as infer_num_classes
from architectures.registry import register
from netdef.network import Network, Tensor

# out depth index, kernel, stride, expansion, repeats (torchvision's _stack calls)
STACKS = [(2, 3, 2, 3, 3), (3, 5, 2, 3, 3), (4, 5, 2, 6, 3), (5, 3, 1, 6, 2), (6, 5, 2, 6, 4), (7, 3, 1, 6, 1)]


def _round_to_multiple_of(val: float, divisor: int, round_up_bias: float = 0.9) -> int:
    """Round to a multiple of ``divisor``, up unless that adds more than 10% (torchvision's rule)."""
    new_val = max(divisor, int(val + divisor / 2) // divisor * divisor)
    return new_val if new_val >= round_up_bias * val else new_val + divisor


def _get_depths(alpha: float) -> list[int]:
    return [_round_to_multiple_of(depth * alpha, 8) for depth in (32, 16, 24, 40, 80, 96, 192, 320)]


def inverted_residual(net: Network, x: Tensor, out_ch: int, kernel_size: int, stride: int, expansion: int) -> Tensor:
    """1x1 expansion, depthwise ``kernel_size`` convolution with ``stride``, 1x1 projection (``layers.0``-``7``);
    the input is added back when the shape is unchanged."""
    in_ch = net.shape_of(x)[1]
    mid_ch = in_ch * expansion
    with net.scope("layers"):
        y = net.relu(net.conv2d(x, "0", mid_ch, 1, bias=False, bn="1"), name="2")
        y = net.conv2d(
            y, "3", mid_ch, kernel_size, stride=stride, padding=kernel_size // 2, groups=mid_ch, bias=False, bn="4"
        )
        y = net.relu(y, name="5")
        y = net.conv2d(y, "6", out_ch, 1, bias=False, bn="7")
    return net.add(y, x, name="residual") if in_ch == out_ch and stride == 1 else y


def mnasnet(net: Network, x: Tensor, alpha: float, num_classes: int | None = None) -> Tensor:
    """``layers`` (stem: 3x3/2, depthwise 3x3, 1x1; six stacks; 1x1 to 1280), global mean, ``classifier.1``."""
    depths = _get_depths(alpha)
    with net.scope("layers"):
        x = net.relu(net.conv2d(x, "0", depths[0], 3, stride=2, padding=1, bias=False, bn="1"), name="2")
        x = net.conv2d(x, "3", depths[0], 3, padding=1, groups=depths[0], bias=False, bn="4")
        x = net.relu(x, name="5")
        x = net.conv2d(x, "6", depths[1], 1, bias=False, bn="7")
        for index, (depth, kernel_size, stride, expansion, repeats) in enumerate(STACKS, start=8):
            for i in range(repeats):
                with net.scope(index), net.scope(i):
                    x = inverted_residual(net, x, depths[depth], kernel_size, stride if i == 0 else 1, expansion)
        x = net.relu(net.conv2d(x, "14", 1280, 1, bias=False, bn="15"), name="16")
    x = net.mean(x, (2, 3), name="mean")
    with net.scope("classifier"):
        return net.linear(x, "1", infer_num_classes(net, "1", num_classes))


@register("mnasnet0_5", input_shape=(3, 224, 224), output="logits")
def mnasnet0_5(net: Network, x: Tensor, num_classes: int | None = None) -> Tensor:
    """MNASNet-B1 with depth multiplier 0.5."""
    return mnasnet(net, x, 0.5, num_classes)


@register("mnasnet0_75", input_shape=(3, 224, 224), output="logits")
def mnasnet0_75(net: Network, x: Tensor, num_classes: int | None = None) -> Tensor:
    """MNASNet-B1 with depth multiplier 0.75."""
    return mnasnet(net, x, 0.75, num_classes)


@register("mnasnet1_0", input_shape=(3, 224, 224), output="logits")
def mnasnet1_0(net: Network, x: Tensor, num_classes: int | None = None) -> Tensor:
    """MNASNet-B1 with depth multiplier 1.0."""
    return mnasnet(net, x, 1.0, num_classes)


@register("mnasnet1_3", input_shape=(3, 224, 224), output="logits")
def mnasnet1_3(net: Network, x: Tensor, num_classes: int | None = None) -> Tensor:
    """MNASNet-B1 with depth multiplier 1.3."""
    return mnasnet(net, x, 1.3, num_classes)

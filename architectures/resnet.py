"""ResNet (He et al., 2015), ResNeXt and Wide ResNet as in torchvision's ``resnet.py``: all ten variants.

Takes torchvision checkpoints as they are (``conv1.weight``, ``layer1.0.bn1.running_mean``,
``layer2.0.downsample.0.weight``, ``fc.bias``...). Every BatchNorm is folded into the convolution
before it; the folded layer keeps the convolution's name (``layer1.0.conv1``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from architectures.common import num_classes as infer_num_classes
from architectures.registry import register
from netdef.network import Network, Tensor


def basic_block(
    net: Network,
    x: Tensor,
    planes: int,
    stride: int = 1,
    downsample: bool = False,
    groups: int = 1,
    base_width: int = 64,
) -> Tensor:
    """Two 3x3 convolutions (ResNet-18/34); ``stride`` on the first; ``downsample`` projects the identity."""
    identity = x
    out = net.conv2d(x, "conv1", planes, 3, stride=stride, padding=1, bias=False, bn="bn1")
    out = net.relu(out)
    out = net.conv2d(out, "conv2", planes, 3, padding=1, bias=False, bn="bn2")
    if downsample:
        identity = net.conv2d(x, "downsample.0", planes, 1, stride=stride, bias=False, bn="downsample.1")
    out = net.add(out, identity)
    return net.relu(out)


basic_block.expansion = 1  # type: ignore[attr-defined]


def bottleneck(
    net: Network,
    x: Tensor,
    planes: int,
    stride: int = 1,
    downsample: bool = False,
    groups: int = 1,
    base_width: int = 64,
) -> Tensor:
    """1x1 reduce, 3x3 (grouped for ResNeXt, ``stride`` here as in torchvision v1.5), 1x1 expand by 4."""
    width = int(planes * (base_width / 64.0)) * groups
    identity = x
    out = net.relu(net.conv2d(x, "conv1", width, 1, bias=False, bn="bn1"))
    out = net.conv2d(out, "conv2", width, 3, stride=stride, padding=1, groups=groups, bias=False, bn="bn2")
    out = net.relu(out)
    out = net.conv2d(out, "conv3", planes * 4, 1, bias=False, bn="bn3")
    if downsample:
        identity = net.conv2d(x, "downsample.0", planes * 4, 1, stride=stride, bias=False, bn="downsample.1")
    out = net.add(out, identity)
    return net.relu(out)


bottleneck.expansion = 4  # type: ignore[attr-defined]

Block = Callable[..., Tensor]


def _make_layer(
    net: Network, x: Tensor, block: Block, inplanes: int, planes: int, blocks: int, stride: int, groups: int, width: int
) -> tuple[Tensor, int]:
    """``blocks`` blocks in scopes ``0``, ``1``, ...; the first strides and projects when the shape changes."""
    expansion = block.expansion  # type: ignore[attr-defined]
    downsample = stride != 1 or inplanes != planes * expansion
    with net.scope(0):
        x = block(net, x, planes, stride, downsample, groups, width)
    for i in range(1, blocks):
        with net.scope(i):
            x = block(net, x, planes, groups=groups, base_width=width)
    return x, planes * expansion


def resnet(
    net: Network,
    x: Tensor,
    block: Block,
    layers: Sequence[int],
    num_classes: int | None = None,
    groups: int = 1,
    width_per_group: int = 64,
) -> Tensor:
    """The ResNet trunk: 7x7/2 stem, 3x3/2 max pool, four stages, global average pool, ``fc``."""
    x = net.conv2d(x, "conv1", 64, 7, stride=2, padding=3, bias=False, bn="bn1")
    x = net.relu(x, name="relu")
    x = net.max_pool2d(x, 3, stride=2, padding=1, name="maxpool")
    inplanes = 64
    for i, (planes, blocks) in enumerate(zip((64, 128, 256, 512), layers, strict=True)):
        with net.scope(f"layer{i + 1}"):
            stride = 1 if i == 0 else 2
            x, inplanes = _make_layer(net, x, block, inplanes, planes, blocks, stride, groups, width_per_group)
    x = net.adaptive_avg_pool2d(x, 1, name="avgpool")
    x = net.flatten(x, name="flatten")
    return net.linear(x, "fc", infer_num_classes(net, "fc", num_classes))


@register("resnet18", input_shape=(3, 224, 224), output="logits")
def resnet18(net: Network, x: Tensor, num_classes: int | None = None) -> Tensor:
    """ResNet-18: BasicBlock x [2, 2, 2, 2]."""
    return resnet(net, x, basic_block, [2, 2, 2, 2], num_classes)


@register("resnet34", input_shape=(3, 224, 224), output="logits")
def resnet34(net: Network, x: Tensor, num_classes: int | None = None) -> Tensor:
    """ResNet-34: BasicBlock x [3, 4, 6, 3]."""
    return resnet(net, x, basic_block, [3, 4, 6, 3], num_classes)


@register("resnet50", input_shape=(3, 224, 224), output="logits")
def resnet50(net: Network, x: Tensor, num_classes: int | None = None) -> Tensor:
    """ResNet-50: Bottleneck x [3, 4, 6, 3]."""
    return resnet(net, x, bottleneck, [3, 4, 6, 3], num_classes)


@register("resnet101", input_shape=(3, 224, 224), output="logits")
def resnet101(net: Network, x: Tensor, num_classes: int | None = None) -> Tensor:
    """ResNet-101: Bottleneck x [3, 4, 23, 3]."""
    return resnet(net, x, bottleneck, [3, 4, 23, 3], num_classes)


@register("resnet152", input_shape=(3, 224, 224), output="logits")
def resnet152(net: Network, x: Tensor, num_classes: int | None = None) -> Tensor:
    """ResNet-152: Bottleneck x [3, 8, 36, 3]."""
    return resnet(net, x, bottleneck, [3, 8, 36, 3], num_classes)


@register("resnext50_32x4d", input_shape=(3, 224, 224), output="logits")
def resnext50_32x4d(net: Network, x: Tensor, num_classes: int | None = None) -> Tensor:
    """ResNeXt-50 32x4d: Bottleneck x [3, 4, 6, 3] with 32 groups of width 4."""
    return resnet(net, x, bottleneck, [3, 4, 6, 3], num_classes, groups=32, width_per_group=4)


@register("wide_resnet50_2", input_shape=(3, 224, 224), output="logits")
def wide_resnet50_2(net: Network, x: Tensor, num_classes: int | None = None) -> Tensor:
    """Wide ResNet-50-2: Bottleneck x [3, 4, 6, 3] with twice the inner width."""
    return resnet(net, x, bottleneck, [3, 4, 6, 3], num_classes, width_per_group=128)


@register("resnext101_32x8d", input_shape=(3, 224, 224), output="logits")
def resnext101_32x8d(net: Network, x: Tensor, num_classes: int | None = None) -> Tensor:
    """ResNeXt-101 32x8d: Bottleneck x [3, 4, 23, 3] with 32 groups of width 8."""
    return resnet(net, x, bottleneck, [3, 4, 23, 3], num_classes, groups=32, width_per_group=8)


@register("resnext101_64x4d", input_shape=(3, 224, 224), output="logits")
def resnext101_64x4d(net: Network, x: Tensor, num_classes: int | None = None) -> Tensor:
    """ResNeXt-101 64x4d: Bottleneck x [3, 4, 23, 3] with 64 groups of width 4."""
    return resnet(net, x, bottleneck, [3, 4, 23, 3], num_classes, groups=64, width_per_group=4)


@register("wide_resnet101_2", input_shape=(3, 224, 224), output="logits")
def wide_resnet101_2(net: Network, x: Tensor, num_classes: int | None = None) -> Tensor:
    """Wide ResNet-101-2: Bottleneck x [3, 4, 23, 3] with twice the inner width."""
    return resnet(net, x, bottleneck, [3, 4, 23, 3], num_classes, width_per_group=128)

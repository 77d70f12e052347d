"""ShuffleNet V2 (Ma et al., 2018) as in torchvision's ``shufflenetv2.py``: widths 0.5, 1.0, 1.5 and 2.0.

Takes torchvision checkpoints as they are: ``conv1.{0,1}``, ``stage{2,3,4}.{i}.branch1.{0..3}`` and
``branch2.{0..6}`` (convolutions with their BatchNorms folded), ``conv5.{0,1}`` and ``fc``.
"""

from __future__ import annotations

from collections.abc import Sequence

from architectures.common import num_classes as infer_num_classes
from architectures.registry import register
from netdef.network import Network, Tensor


def inverted_residual(net: Network, x: Tensor, oup: int, stride: int) -> Tensor:
    """Stride 1: half the channels pass, half go through ``branch2``; stride 2: ``branch1`` and
    ``branch2`` both see the input. Concatenated, then the channels are shuffled in 2 groups."""
    branch_features = oup // 2
    if stride == 1:
        x1, x2 = net.chunk(x, 2, dim=1, name="chunk")
    else:
        with net.scope("branch1"):
            inp = net.shape_of(x)[1]
            x1 = net.conv2d(x, "0", inp, 3, stride=stride, padding=1, groups=inp, bias=False, bn="1")
            x1 = net.relu(net.conv2d(x1, "2", branch_features, 1, bias=False, bn="3"), name="4")
        x2 = x
    with net.scope("branch2"):
        x2 = net.relu(net.conv2d(x2, "0", branch_features, 1, bias=False, bn="1"), name="2")
        x2 = net.conv2d(
            x2, "3", branch_features, 3, stride=stride, padding=1, groups=branch_features, bias=False, bn="4"
        )
        x2 = net.relu(net.conv2d(x2, "5", branch_features, 1, bias=False, bn="6"), name="7")
    out = net.concat([x1, x2], 1, name="cat")
    return net.channel_shuffle(out, 2, name="channel_shuffle")


def shufflenet_v2(
    net: Network, x: Tensor, stages_repeats: Sequence[int], stages_out_channels: Sequence[int], num_classes: int | None
) -> Tensor:
    """3x3/2 stem and max pool, three stages (the first block of each strides 2), 1x1 ``conv5``, mean, ``fc``."""
    with net.scope("conv1"):
        x = net.relu(net.conv2d(x, "0", stages_out_channels[0], 3, stride=2, padding=1, bias=False, bn="1"), name="2")
    x = net.max_pool2d(x, 3, stride=2, padding=1, name="maxpool")
    for stage, repeats, output_channels in zip((2, 3, 4), stages_repeats, stages_out_channels[1:4], strict=True):
        with net.scope(f"stage{stage}"):
            for i in range(repeats):
                with net.scope(i):
                    x = inverted_residual(net, x, output_channels, 2 if i == 0 else 1)
    with net.scope("conv5"):
        x = net.relu(net.conv2d(x, "0", stages_out_channels[-1], 1, bias=False, bn="1"), name="2")
    x = net.mean(x, (2, 3), name="globalpool")
    return net.linear(x, "fc", infer_num_classes(net, "fc", num_classes))


@register("shufflenet_v2_x0_5", input_shape=(3, 224, 224), output="logits")
def shufflenet_v2_x0_5(net: Network, x: Tensor, num_classes: int | None = None) -> Tensor:
    """ShuffleNet V2 0.5x: stages of 4, 8, 4 blocks with 48, 96, 192 channels."""
    return shufflenet_v2(net, x, [4, 8, 4], [24, 48, 96, 192, 1024], num_classes)


@register("shufflenet_v2_x1_0", input_shape=(3, 224, 224), output="logits")
def shufflenet_v2_x1_0(net: Network, x: Tensor, num_classes: int | None = None) -> Tensor:
    """ShuffleNet V2 1.0x: stages of 4, 8, 4 blocks with 116, 232, 464 channels."""
    return shufflenet_v2(net, x, [4, 8, 4], [24, 116, 232, 464, 1024], num_classes)


@register("shufflenet_v2_x1_5", input_shape=(3, 224, 224), output="logits")
def shufflenet_v2_x1_5(net: Network, x: Tensor, num_classes: int | None = None) -> Tensor:
    """ShuffleNet V2 1.5x: stages of 4, 8, 4 blocks with 176, 352, 704 channels."""
    return shufflenet_v2(net, x, [4, 8, 4], [24, 176, 352, 704, 1024], num_classes)


@register("shufflenet_v2_x2_0", input_shape=(3, 224, 224), output="logits")
def shufflenet_v2_x2_0(net: Network, x: Tensor, num_classes: int | None = None) -> Tensor:
    """ShuffleNet V2 2.0x: stages of 4, 8, 4 blocks with 244, 488, 976 channels, 2048 before ``fc``."""
    return shufflenet_v2(net, x, [4, 8, 4], [24, 244, 488, 976, 2048], num_classes)

"""EfficientNet B0-B7 (Tan & Le, 2019) and EfficientNetV2 S/M/L (Tan & Le, 2021) as in torchvision's
``efficientnet.py``.

Takes torchvision checkpoints as they are: ``features.0`` the stem Conv2dNormActivation,
``features.{stage}.{i}.block.{j}`` the MBConv / FusedMBConv blocks (squeeze-excitation as
``block.{j}.fc1``/``fc2``), the last ``features`` entry a 1x1 Conv2dNormActivation, ``classifier.1``
the linear layer. BatchNorms are folded (eps 1e-5 for B0-B4, 1e-3 for B5-B7 and V2); stochastic
depth and dropout are the identity. Input sizes are those of torchvision's weights (B0 224 ... B7 600).
"""

from __future__ import annotations

import math

from architectures.common import conv_norm_activation, make_divisible
from architectures.common import num_classes as infer_num_classes
from architectures.registry import register
from netdef.network import Network, Tensor

# block, expand_ratio, kernel, stride, input_channels, out_channels, num_layers
V1 = [
    ("MBConv", 1, 3, 1, 32, 16, 1),
    ("MBConv", 6, 3, 2, 16, 24, 2),
    ("MBConv", 6, 5, 2, 24, 40, 2),
    ("MBConv", 6, 3, 2, 40, 80, 3),
    ("MBConv", 6, 5, 1, 80, 112, 3),
    ("MBConv", 6, 5, 2, 112, 192, 4),
    ("MBConv", 6, 3, 1, 192, 320, 1),
]
V2 = {
    "s": [
        ("FusedMBConv", 1, 3, 1, 24, 24, 2),
        ("FusedMBConv", 4, 3, 2, 24, 48, 4),
        ("FusedMBConv", 4, 3, 2, 48, 64, 4),
        ("MBConv", 4, 3, 2, 64, 128, 6),
        ("MBConv", 6, 3, 1, 128, 160, 9),
        ("MBConv", 6, 3, 2, 160, 256, 15),
    ],
    "m": [
        ("FusedMBConv", 1, 3, 1, 24, 24, 3),
        ("FusedMBConv", 4, 3, 2, 24, 48, 5),
        ("FusedMBConv", 4, 3, 2, 48, 80, 5),
        ("MBConv", 4, 3, 2, 80, 160, 7),
        ("MBConv", 6, 3, 1, 160, 176, 14),
        ("MBConv", 6, 3, 2, 176, 304, 18),
        ("MBConv", 6, 3, 1, 304, 512, 5),
    ],
    "l": [
        ("FusedMBConv", 1, 3, 1, 32, 32, 4),
        ("FusedMBConv", 4, 3, 2, 32, 64, 7),
        ("FusedMBConv", 4, 3, 2, 64, 96, 7),
        ("MBConv", 4, 3, 2, 96, 192, 10),
        ("MBConv", 6, 3, 1, 192, 224, 19),
        ("MBConv", 6, 3, 2, 224, 384, 25),
        ("MBConv", 6, 3, 1, 384, 640, 7),
    ],
}


def mbconv(net: Network, x: Tensor, expand_ratio: float, kernel: int, stride: int, out: int, eps: float) -> Tensor:
    """1x1 expansion (unless the ratio is 1), depthwise ``kernel`` convolution, squeeze-excitation
    (SiLU, sigmoid gate), 1x1 projection; the input is added back when the shape is unchanged."""
    inp = net.shape_of(x)[1]
    expanded = make_divisible(inp * expand_ratio, 8)
    with net.scope("block"):
        index, y = 0, x
        if expanded != inp:
            y = conv_norm_activation(net, y, "0", expanded, 1, activation="silu", eps=eps)
            index += 1
        y = conv_norm_activation(
            net, y, str(index), expanded, kernel, stride, groups=expanded, activation="silu", eps=eps
        )
        y = net.squeeze_excitation(y, str(index + 1), max(1, inp // 4), activation="silu")
        y = conv_norm_activation(net, y, str(index + 2), out, 1, activation=None, eps=eps)
    return net.add(y, x, name="residual") if stride == 1 and inp == out else y


def fused_mbconv(
    net: Network, x: Tensor, expand_ratio: float, kernel: int, stride: int, out: int, eps: float
) -> Tensor:
    """A full ``kernel`` convolution expanding the channels, then a 1x1 projection (one convolution
    when the ratio is 1); the input is added back when the shape is unchanged."""
    inp = net.shape_of(x)[1]
    expanded = make_divisible(inp * expand_ratio, 8)
    with net.scope("block"):
        if expanded != inp:
            y = conv_norm_activation(net, x, "0", expanded, kernel, stride, activation="silu", eps=eps)
            y = conv_norm_activation(net, y, "1", out, 1, activation=None, eps=eps)
        else:
            y = conv_norm_activation(net, x, "0", out, kernel, stride, activation="silu", eps=eps)
    return net.add(y, x, name="residual") if stride == 1 and inp == out else y


BLOCKS = {"MBConv": mbconv, "FusedMBConv": fused_mbconv}


def efficientnet(
    net: Network,
    x: Tensor,
    setting: list[tuple],
    num_classes: int | None,
    width_mult: float = 1.0,
    depth_mult: float = 1.0,
    last_channel: int | None = None,
    eps: float = 1e-5,
) -> Tensor:
    """``features`` (3x3/2 stem, stages of blocks, 1x1 head convolution), global mean, ``classifier.1``.
    V1 stages are widened by ``width_mult`` (channels) and deepened by ``depth_mult`` (blocks)."""

    def adjust(channels: int) -> int:
        return make_divisible(channels * width_mult, 8)

    with net.scope("features"):
        x = conv_norm_activation(net, x, "0", adjust(setting[0][4]), 3, stride=2, activation="silu", eps=eps)
        for stage, (block, expand_ratio, kernel, stride, _, out, num_layers) in enumerate(setting, start=1):
            for i in range(int(math.ceil(num_layers * depth_mult))):
                with net.scope(stage), net.scope(i):
                    x = BLOCKS[block](net, x, expand_ratio, kernel, stride if i == 0 else 1, adjust(out), eps)
        last = last_channel or 4 * adjust(setting[-1][5])
        x = conv_norm_activation(net, x, str(len(setting) + 1), last, 1, activation="silu", eps=eps)
    x = net.adaptive_avg_pool2d(x, 1, name="avgpool")
    x = net.flatten(x, name="flatten")
    with net.scope("classifier"):
        return net.linear(x, "1", infer_num_classes(net, "1", num_classes))


def _register_v1(name: str, width_mult: float, depth_mult: float, size: int, eps: float) -> None:
    def define(net: Network, x: Tensor, num_classes: int | None = None) -> Tensor:
        return efficientnet(net, x, V1, num_classes, width_mult, depth_mult, eps=eps)

    description = (
        f"EfficientNet-{name[-2:].upper()}: MBConv with squeeze-excitation, width x{width_mult}, depth x{depth_mult}"
    )
    register(name, input_shape=(3, size, size), output="logits", description=f"{description}, {size}x{size}.")(define)


def _register_v2(name: str, size: int) -> None:
    def define(net: Network, x: Tensor, num_classes: int | None = None) -> Tensor:
        return efficientnet(net, x, V2[name[-1]], num_classes, last_channel=1280, eps=1e-3)

    description = f"EfficientNetV2-{name[-1].upper()}: FusedMBConv then MBConv stages, {size}x{size}."
    register(name, input_shape=(3, size, size), output="logits", description=description)(define)


for _name, _width, _depth, _size in (
    ("efficientnet_b0", 1.0, 1.0, 224),
    ("efficientnet_b1", 1.0, 1.1, 240),
    ("efficientnet_b2", 1.1, 1.2, 288),
    ("efficientnet_b3", 1.2, 1.4, 300),
    ("efficientnet_b4", 1.4, 1.8, 380),
    ("efficientnet_b5", 1.6, 2.2, 456),
    ("efficientnet_b6", 1.8, 2.6, 528),
    ("efficientnet_b7", 2.0, 3.1, 600),
):
    _register_v1(_name, _width, _depth, _size, eps=1e-3 if _name[-1] in "567" else 1e-5)
for _name, _size in (("efficientnet_v2_s", 384), ("efficientnet_v2_m", 480), ("efficientnet_v2_l", 480)):
    _register_v2(_name, _size)

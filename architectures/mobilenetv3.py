"""MobileNetV3 (Howard et al., 2019) as in torchvision's ``mobilenetv3.py``: small and large.

Takes torchvision checkpoints as they are: ``features.0`` is a Conv2dNormActivation (``.0`` conv,
``.1`` BatchNorm), ``features.{i}.block.{j}`` the inverted residual blocks (expansion, depthwise,
squeeze-excitation with ``fc1``/``fc2``, projection), the last ``features`` entry a 1x1
Conv2dNormActivation, ``classifier.{0,3}`` the linear layers. BatchNorms (eps 0.001) are folded;
hard-swish and hard-sigmoid are TensorRT activations.
"""

from __future__ import annotations

from architectures.common import conv_norm_activation, make_divisible
from architectures.common import num_classes as infer_num_classes
from architectures.registry import register
from netdef.network import Network, Tensor

BN_EPS = 0.001  # torchvision: partial(nn.BatchNorm2d, eps=0.001, momentum=0.01)

# input_channels, kernel, expanded_channels, out_channels, use_se, activation, stride
LARGE = [
    (16, 3, 16, 16, False, "RE", 1),
    (16, 3, 64, 24, False, "RE", 2),
    (24, 3, 72, 24, False, "RE", 1),
    (24, 5, 72, 40, True, "RE", 2),
    (40, 5, 120, 40, True, "RE", 1),
    (40, 5, 120, 40, True, "RE", 1),
    (40, 3, 240, 80, False, "HS", 2),
    (80, 3, 200, 80, False, "HS", 1),
    (80, 3, 184, 80, False, "HS", 1),
    (80, 3, 184, 80, False, "HS", 1),
    (80, 3, 480, 112, True, "HS", 1),
    (112, 3, 672, 112, True, "HS", 1),
    (112, 5, 672, 160, True, "HS", 2),
    (160, 5, 960, 160, True, "HS", 1),
    (160, 5, 960, 160, True, "HS", 1),
]
SMALL = [
    (16, 3, 16, 16, True, "RE", 2),
    (16, 3, 72, 24, False, "RE", 2),
    (24, 3, 88, 24, False, "RE", 1),
    (24, 5, 96, 40, True, "HS", 2),
    (40, 5, 240, 40, True, "HS", 1),
    (40, 5, 240, 40, True, "HS", 1),
    (40, 5, 120, 48, True, "HS", 1),
    (48, 5, 144, 48, True, "HS", 1),
    (48, 5, 288, 96, True, "HS", 2),
    (96, 5, 576, 96, True, "HS", 1),
    (96, 5, 576, 96, True, "HS", 1),
]


def inverted_residual(
    net: Network, x: Tensor, inp: int, kernel: int, expanded: int, out: int, use_se: bool, nl: str, stride: int
) -> Tensor:
    """1x1 expansion (if wider), depthwise ``kernel`` x ``kernel`` with ``stride``, squeeze-excitation
    (hard-sigmoid gate), 1x1 linear projection; the input is added back when the shape is unchanged."""
    activation = "hardswish" if nl == "HS" else "relu"
    with net.scope("block"):
        index, y = 0, x
        if expanded != inp:
            y = conv_norm_activation(net, y, "0", expanded, 1, activation=activation, eps=BN_EPS)
            index += 1
        y = conv_norm_activation(
            net, y, str(index), expanded, kernel, stride=stride, groups=expanded, activation=activation, eps=BN_EPS
        )
        if use_se:
            index += 1
            y = net.squeeze_excitation(y, str(index), make_divisible(expanded // 4, 8), scale_activation="hardsigmoid")
        y = conv_norm_activation(net, y, str(index + 1), out, 1, activation=None, eps=BN_EPS)
    return net.add(y, x, name="residual") if stride == 1 and inp == out else y


def mobilenet_v3(net: Network, x: Tensor, setting: list, last_channel: int, num_classes: int | None) -> Tensor:
    """``features`` (3x3/2 stem, inverted residuals, 1x1 to 6x the last width), global mean, ``classifier``."""
    with net.scope("features"):
        x = conv_norm_activation(net, x, "0", setting[0][0], 3, stride=2, activation="hardswish", eps=BN_EPS)
        for i, config in enumerate(setting, start=1):
            with net.scope(i):
                x = inverted_residual(net, x, *config)
        lastconv_output_channels = 6 * setting[-1][3]
        x = conv_norm_activation(
            net, x, str(len(setting) + 1), lastconv_output_channels, 1, activation="hardswish", eps=BN_EPS
        )
    x = net.adaptive_avg_pool2d(x, 1, name="avgpool")
    x = net.flatten(x, name="flatten")
    with net.scope("classifier"):
        x = net.hardswish(net.linear(x, "0", last_channel), name="1")
        return net.linear(x, "3", infer_num_classes(net, "3", num_classes))


@register("mobilenet_v3_large", input_shape=(3, 224, 224), output="logits")
def mobilenet_v3_large(net: Network, x: Tensor, num_classes: int | None = None) -> Tensor:
    """MobileNetV3-Large: 15 inverted residuals, squeeze-excitation, hard-swish, 1280-wide classifier."""
    return mobilenet_v3(net, x, LARGE, 1280, num_classes)


@register("mobilenet_v3_small", input_shape=(3, 224, 224), output="logits")
def mobilenet_v3_small(net: Network, x: Tensor, num_classes: int | None = None) -> Tensor:
    """MobileNetV3-Small: 11 inverted residuals, squeeze-excitation, hard-swish, 1024-wide classifier."""
    return mobilenet_v3(net, x, SMALL, 1024, num_classes)

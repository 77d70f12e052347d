"""MobileNetV2 (Sandler et al., 2018) as in torchvision's ``mobilenetv2.py``.

Takes torchvision checkpoints as they are: ``features.0`` is a Conv2dNormActivation (``.0`` conv,
``.1`` BatchNorm, ``.2`` ReLU6), ``features.1``-``features.17`` are inverted residual blocks whose
layers sit in ``conv`` (``features.2.conv.1.0.weight`` is a depthwise 3x3), ``features.18`` is the
last 1x1 Conv2dNormActivation and ``classifier.1`` the linear layer. BatchNorms are folded.
"""

from __future__ import annotations

from architectures.common import conv_norm_activation, make_divisible
from architectures.common import num_classes as infer_num_classes
from architectures.registry import register
from netdef.network import Network, Tensor

# t (expansion), c (output channels), n (repeats), s (stride of the first repeat)
inverted_residual_setting = [
    [1, 16, 1, 1],
    [6, 24, 2, 2],
    [6, 32, 3, 2],
    [6, 64, 4, 2],
    [6, 96, 3, 1],
    [6, 160, 3, 2],
    [6, 320, 1, 1],
]


def inverted_residual(net: Network, x: Tensor, inp: int, oup: int, stride: int, expand_ratio: int) -> Tensor:
    """1x1 expand (unless ``expand_ratio`` is 1), 3x3 depthwise with ``stride``, 1x1 linear projection;
    the input is added back when the shape is unchanged."""
    hidden_dim = int(round(inp * expand_ratio))
    use_res_connect = stride == 1 and inp == oup
    with net.scope("conv"):
        index, y = 0, x
        if expand_ratio != 1:
            y = conv_norm_activation(net, y, "0", hidden_dim, kernel_size=1, activation="relu6")
            index = 1
        y = conv_norm_activation(net, y, str(index), hidden_dim, stride=stride, groups=hidden_dim, activation="relu6")
        y = net.conv2d(y, str(index + 1), oup, 1, bias=False, bn=str(index + 2))
    return net.add(x, y) if use_res_connect else y


def mobilenet_v2_features(net: Network, x: Tensor, width_mult: float = 1.0, round_nearest: int = 8) -> Tensor:
    """``features.0`` .. ``features.18``."""
    input_channel = make_divisible(32 * width_mult, round_nearest)
    last_channel = make_divisible(1280 * max(1.0, width_mult), round_nearest)
    index = 0
    with net.scope("features"):
        x = conv_norm_activation(net, x, str(index), input_channel, stride=2, activation="relu6")
        for t, c, n, s in inverted_residual_setting:
            output_channel = make_divisible(c * width_mult, round_nearest)
            for i in range(n):
                index += 1
                with net.scope(index):
                    x = inverted_residual(net, x, input_channel, output_channel, s if i == 0 else 1, t)
                input_channel = output_channel
        return conv_norm_activation(net, x, str(index + 1), last_channel, kernel_size=1, activation="relu6")


@register("mobilenet_v2", input_shape=(3, 224, 224), output="logits")
def mobilenet_v2(net: Network, x: Tensor, num_classes: int | None = None) -> Tensor:
    """MobileNetV2 (width 1.0): inverted residuals with depthwise convolutions and ReLU6."""
    x = mobilenet_v2_features(net, x)
    x = net.adaptive_avg_pool2d(x, 1, name="avgpool")
    x = net.flatten(x, name="flatten")
    with net.scope("classifier"):
        return net.linear(x, "1", infer_num_classes(net, "1", num_classes))

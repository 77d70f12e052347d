"""SqueezeNet 1.0 and 1.1 (Iandola et al., 2016) as in torchvision's ``squeezenet.py``.

Takes torchvision checkpoints as they are: ``features.{i}`` numbered as in ``nn.Sequential`` (a
``Fire`` module reads ``squeeze``, ``expand1x1`` and ``expand3x3``), ``classifier.1`` the final 1x1
convolution whose output channels are the classes. Max pooling uses ``ceil_mode``; dropout is the identity.
"""

from __future__ import annotations

from architectures.common import num_classes as infer_num_classes
from architectures.registry import register
from netdef.network import Network, Tensor


def fire(net: Network, x: Tensor, squeeze_planes: int, expand1x1_planes: int, expand3x3_planes: int) -> Tensor:
    """1x1 squeeze, then 1x1 and 3x3 expansions side by side, concatenated along the channels."""
    x = net.relu(net.conv2d(x, "squeeze", squeeze_planes, 1), name="squeeze_activation")
    left = net.relu(net.conv2d(x, "expand1x1", expand1x1_planes, 1), name="expand1x1_activation")
    right = net.relu(net.conv2d(x, "expand3x3", expand3x3_planes, 3, padding=1), name="expand3x3_activation")
    return net.concat([left, right], 1, name="cat")


# "M": 3x3/2 max pool (ceil_mode); a tuple: Fire(squeeze, expand1x1, expand3x3)
FEATURES: dict[str, list] = {
    "1_0": [(96, 7), "M", (16, 64, 64), (16, 64, 64), (32, 128, 128), "M",
            (32, 128, 128), (48, 192, 192), (48, 192, 192), (64, 256, 256), "M", (64, 256, 256)],
    "1_1": [(64, 3), "M", (16, 64, 64), (16, 64, 64), "M", (32, 128, 128), (32, 128, 128), "M",
            (48, 192, 192), (48, 192, 192), (64, 256, 256), (64, 256, 256)],
}  # fmt: skip


def squeezenet(net: Network, x: Tensor, version: str, num_classes: int | None = None) -> Tensor:
    """``features`` (a stem convolution, Fire modules, max pools), then ``classifier``: 1x1 convolution, ReLU, mean."""
    with net.scope("features"):
        (stem_channels, stem_kernel), *rest = FEATURES[version]
        x = net.relu(net.conv2d(x, "0", stem_channels, stem_kernel, stride=2), name="1")
        for index, item in enumerate(rest, start=2):
            if item == "M":
                x = net.max_pool2d(x, 3, stride=2, ceil_mode=True, name=str(index))
            else:
                with net.scope(index):
                    x = fire(net, x, *item)
    with net.scope("classifier"):
        x = net.relu(net.conv2d(x, "1", infer_num_classes(net, "1", num_classes), 1), name="2")
        x = net.adaptive_avg_pool2d(x, 1, name="3")
    return net.flatten(x, name="flatten")


@register("squeezenet1_0", input_shape=(3, 224, 224), output="logits")
def squeezenet1_0(net: Network, x: Tensor, num_classes: int | None = None) -> Tensor:
    """SqueezeNet 1.0: 7x7 stem, eight Fire modules, a 1x1 convolution classifier."""
    return squeezenet(net, x, "1_0", num_classes)


@register("squeezenet1_1", input_shape=(3, 224, 224), output="logits")
def squeezenet1_1(net: Network, x: Tensor, num_classes: int | None = None) -> Tensor:
    """SqueezeNet 1.1: 3x3 stem and earlier pooling (2.4x less computation than 1.0, same accuracy)."""
    return squeezenet(net, x, "1_1", num_classes)

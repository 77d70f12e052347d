"""DenseNet-BC (Huang et al., 2016) as in torchvision's ``densenet.py``: DenseNet-121/161/169/201.

Takes torchvision checkpoints as they are: ``features.conv0``/``norm0``, ``features.denseblock{b}.
denselayer{i}.{norm1, conv1, norm2, conv2}``, ``features.transition{b}.{norm, conv}``,
``features.norm5`` and ``classifier``. A BatchNorm that follows a convolution (``norm0``, ``norm2``) is
folded into it; the others normalize a concatenation first and are per-channel scale layers.
"""

from __future__ import annotations

from collections.abc import Sequence

from architectures.common import num_classes as infer_num_classes
from architectures.registry import register
from netdef.network import Network, Tensor


def dense_layer(net: Network, features: list[Tensor], growth_rate: int, bn_size: int) -> Tensor:
    """BN-ReLU-1x1 convolution (to ``bn_size * growth_rate``) on all previous features, then BN-ReLU-3x3
    convolution to ``growth_rate`` new features."""
    x = net.concat(features, 1, name="cat") if len(features) > 1 else features[0]
    x = net.relu(net.batch_norm(x, "norm1"), name="relu1")
    x = net.relu(net.conv2d(x, "conv1", bn_size * growth_rate, 1, bias=False, bn="norm2"), name="relu2")
    return net.conv2d(x, "conv2", growth_rate, 3, padding=1, bias=False)


def dense_block(net: Network, x: Tensor, num_layers: int, bn_size: int, growth_rate: int) -> Tensor:
    """``denselayer1`` .. ``denselayer{num_layers}``, each fed with the concatenation of all before it."""
    features = [x]
    for i in range(num_layers):
        with net.scope(f"denselayer{i + 1}"):
            features.append(dense_layer(net, features, growth_rate, bn_size))
    return net.concat(features, 1, name="cat")


def transition(net: Network, x: Tensor, num_output_features: int) -> Tensor:
    """BN-ReLU-1x1 convolution halving the channels, 2x2 average pooling."""
    x = net.relu(net.batch_norm(x, "norm"), name="relu")
    x = net.conv2d(x, "conv", num_output_features, 1, bias=False)
    return net.avg_pool2d(x, 2, stride=2, name="pool")


def densenet(
    net: Network,
    x: Tensor,
    growth_rate: int,
    block_config: Sequence[int],
    num_init_features: int,
    bn_size: int = 4,
    num_classes: int | None = None,
) -> Tensor:
    """``features`` (7x7 stem, dense blocks with transitions between, ``norm5``), ReLU, global mean, ``classifier``."""
    with net.scope("features"):
        x = net.conv2d(x, "conv0", num_init_features, 7, stride=2, padding=3, bias=False, bn="norm0")
        x = net.relu(x, name="relu0")
        x = net.max_pool2d(x, 3, stride=2, padding=1, name="pool0")
        num_features = num_init_features
        for i, num_layers in enumerate(block_config):
            with net.scope(f"denseblock{i + 1}"):
                x = dense_block(net, x, num_layers, bn_size, growth_rate)
            num_features += num_layers * growth_rate
            if i != len(block_config) - 1:
                with net.scope(f"transition{i + 1}"):
                    x = transition(net, x, num_features // 2)
                num_features //= 2
        x = net.batch_norm(x, "norm5")
    x = net.relu(x, name="relu")
    x = net.adaptive_avg_pool2d(x, 1, name="avgpool")
    x = net.flatten(x, name="flatten")
    return net.linear(x, "classifier", infer_num_classes(net, "classifier", num_classes))


@register("densenet121", input_shape=(3, 224, 224), output="logits")
def densenet121(net: Network, x: Tensor, num_classes: int | None = None) -> Tensor:
    """DenseNet-121: growth rate 32, dense blocks of (6, 12, 24, 16) layers."""
    return densenet(net, x, 32, (6, 12, 24, 16), 64, num_classes=num_classes)


@register("densenet161", input_shape=(3, 224, 224), output="logits")
def densenet161(net: Network, x: Tensor, num_classes: int | None = None) -> Tensor:
    """DenseNet-161: growth rate 48, dense blocks of (6, 12, 36, 24) layers, 96 stem channels."""
    return densenet(net, x, 48, (6, 12, 36, 24), 96, num_classes=num_classes)


@register("densenet169", input_shape=(3, 224, 224), output="logits")
def densenet169(net: Network, x: Tensor, num_classes: int | None = None) -> Tensor:
    """DenseNet-169: growth rate 32, dense blocks of (6, 12, 32, 32) layers."""
    return densenet(net, x, 32, (6, 12, 32, 32), 64, num_classes=num_classes)


@register("densenet201", input_shape=(3, 224, 224), output="logits")
def densenet201(net: Network, x: Tensor, num_classes: int | None = None) -> Tensor:
    """DenseNet-201: growth rate 32, dense blocks of (6, 12, 48, 32) layers."""
    return densenet(net, x, 32, (6, 12, 48, 32), 64, num_classes=num_classes)

"""AlexNet (Krizhevsky et al., 2012) as in torchvision's ``alexnet.py`` (the "one weird trick" variant).

Takes torchvision checkpoints as they are: ``features.{0,3,6,8,10}`` convolutions and
``classifier.{1,4,6}`` linear layers, numbered as in ``nn.Sequential``. Dropout is the identity.
"""

from __future__ import annotations

from architectures.common import num_classes as infer_num_classes
from architectures.registry import register
from netdef.network import Network, Tensor


@register("alexnet", input_shape=(3, 224, 224), output="logits")
def alexnet(net: Network, x: Tensor, num_classes: int | None = None) -> Tensor:
    """AlexNet: five convolutions with ReLU and max pooling, adaptive average pool to 6x6, three linear layers."""
    with net.scope("features"):
        x = net.relu(net.conv2d(x, "0", 64, 11, stride=4, padding=2), name="1")
        x = net.max_pool2d(x, 3, stride=2, name="2")
        x = net.relu(net.conv2d(x, "3", 192, 5, padding=2), name="4")
        x = net.max_pool2d(x, 3, stride=2, name="5")
        x = net.relu(net.conv2d(x, "6", 384, 3, padding=1), name="7")
        x = net.relu(net.conv2d(x, "8", 256, 3, padding=1), name="9")
        x = net.relu(net.conv2d(x, "10", 256, 3, padding=1), name="11")
        x = net.max_pool2d(x, 3, stride=2, name="12")
    x = net.adaptive_avg_pool2d(x, 6, name="avgpool")
    x = net.flatten(x, name="flatten")
    with net.scope("classifier"):
        x = net.relu(net.linear(x, "1", 4096), name="2")
        x = net.relu(net.linear(x, "4", 4096), name="5")
        return net.linear(x, "6", infer_num_classes(net, "6", num_classes))

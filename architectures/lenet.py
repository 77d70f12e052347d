"""LeNet as in TensorRT's MNIST samples."""

from __future__ import annotations

from architectures.registry import register
from netdef.network import Network, Tensor


@register("lenet", input_shape=(1, 28, 28), output="prob")
def lenet(net: Network, x: Tensor) -> Tensor:
    """LeNet-5 (TensorRT MNIST sample): two 5x5 convolutions with max pooling, two linear layers, softmax."""
    x = net.conv2d(x, "conv1", 20, kernel_size=5)
    x = net.max_pool2d(x, 2)
    x = net.conv2d(x, "conv2", 50, kernel_size=5)
    x = net.max_pool2d(x, 2)
    x = net.flatten(x)
    x = net.relu(net.linear(x, "fc1", 500))
    x = net.linear(x, "fc2", 10)
    return net.softmax(x, dim=1)

"""Helpers shared by the torchvision-style definitions.

(To compare a network with its PyTorch twin layer by layer, see
:func:`netdef.reference.compare.torch_module_names`.)
"""

from __future__ import annotations

import math

from netdef.network import Network, Tensor


def num_classes(net: Network, classifier: str, given: int | None, default: int = 1000) -> int:
    """``given``, else the class count of the checkpoint's classifier ``classifier`` (a scope, e.g.
    ``"fc"``), else ``default``.

    The count is the length of ``{classifier}.bias``; without a bias, the first dimension of a 2-D
    ``{classifier}.weight``. (A ``.wts`` file stores tensors flat, so the weight's shape says
    nothing there.) Without a checkpoint (``Architecture.expected_weights()``) it is ``default``
    (ImageNet's 1000).
    """
    if given is not None:
        return given
    bias = net.param_shape(f"{classifier}.bias")
    if bias is not None:
        return math.prod(bias)
    weight = net.param_shape(f"{classifier}.weight")
    return weight[0] if weight is not None and len(weight) == 2 else default


def squeeze_excitation(
    net: Network,
    x: Tensor,
    name: str,
    squeeze_channels: int,
    activation: str = "relu",
    scale_activation: str = "sigmoid",
) -> Tensor:
    """torchvision's ``SqueezeExcitation`` ``name``: ``x * sigma(fc2(delta(fc1(avgpool(x)))))`` with 1x1
    convolutions ``fc1``, ``fc2``; ``delta``/``sigma`` are Network activation methods by name."""
    with net.scope(name):
        scale = net.adaptive_avg_pool2d(x, 1, name="avgpool")
        scale = getattr(net, activation)(net.conv2d(scale, "fc1", squeeze_channels, 1), name="activation")
        scale = net.conv2d(scale, "fc2", net.shape_of(x)[1], 1)
        scale = getattr(net, scale_activation)(scale, name="scale_activation")
        return net.mul(scale, x)

"""GoogLeNet (Inception v1, Szegedy et al., 2014) as in torchvision's ``googlenet.py``.

Takes torchvision checkpoints as they are: ``conv1``-``conv3`` and ``inception{3a..5b}.branch{1..4}``
are ``BasicConv2d`` (``.conv`` with ``.bn`` folded), ``fc`` the classifier. The auxiliary classifiers
``aux1``/``aux2`` only run in training and are not read. ``transform_input`` (on by default, as for
torchvision's pretrained weights) re-normalizes the input first.
"""

from __future__ import annotations

from architectures import common
from architectures.common import basic_conv2d
from architectures.common import num_classes as infer_num_classes
from architectures.registry import register
from netdef.network import Network, Tensor

# in_channels is implied; ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj
INCEPTIONS = {
    "3a": (64, 96, 128, 16, 32, 32),
    "3b": (128, 128, 192, 32, 96, 64),
    "4a": (192, 96, 208, 16, 48, 64),
    "4b": (160, 112, 224, 24, 64, 64),
    "4c": (128, 128, 256, 24, 64, 64),
    "4d": (112, 144, 288, 32, 64, 64),
    "4e": (256, 160, 320, 32, 128, 128),
    "5a": (256, 160, 320, 32, 128, 128),
    "5b": (384, 192, 384, 48, 128, 128),
}


def inception(
    net: Network, x: Tensor, ch1x1: int, ch3x3red: int, ch3x3: int, ch5x5red: int, ch5x5: int, pool_proj: int
) -> Tensor:
    """Four branches concatenated: 1x1; 1x1 then 3x3; 1x1 then 3x3 (torchvision's "5x5"); 3x3 max pool then 1x1."""
    branch1 = basic_conv2d(net, x, "branch1", ch1x1, 1)
    with net.scope("branch2"):
        branch2 = basic_conv2d(net, basic_conv2d(net, x, "0", ch3x3red, 1), "1", ch3x3, 3, padding=1)
    with net.scope("branch3"):
        branch3 = basic_conv2d(net, basic_conv2d(net, x, "0", ch5x5red, 1), "1", ch5x5, 3, padding=1)
    with net.scope("branch4"):
        branch4 = net.max_pool2d(x, 3, stride=1, padding=1, ceil_mode=True, name="0")
        branch4 = basic_conv2d(net, branch4, "1", pool_proj, 1)
    return net.concat([branch1, branch2, branch3, branch4], 1, name="cat")


@register("googlenet", input_shape=(3, 224, 224), output="logits")
def googlenet(net: Network, x: Tensor, num_classes: int | None = None, transform_input: bool = True) -> Tensor:
    """GoogLeNet (Inception v1): nine inception modules, auxiliary classifiers ignored."""
    if transform_input:
        x = common.transform_input(net, x)
    x = basic_conv2d(net, x, "conv1", 64, 7, stride=2, padding=3)
    x = net.max_pool2d(x, 3, stride=2, ceil_mode=True, name="maxpool1")
    x = basic_conv2d(net, x, "conv2", 64, 1)
    x = basic_conv2d(net, x, "conv3", 192, 3, padding=1)
    x = net.max_pool2d(x, 3, stride=2, ceil_mode=True, name="maxpool2")
    for block, channels in INCEPTIONS.items():
        with net.scope(f"inception{block}"):
            x = inception(net, x, *channels)
        if block in ("3b", "4e"):
            kernel = 3 if block == "3b" else 2
            x = net.max_pool2d(x, kernel, stride=2, ceil_mode=True, name="maxpool3" if block == "3b" else "maxpool4")
    x = net.adaptive_avg_pool2d(x, 1, name="avgpool")
    x = net.flatten(x, name="flatten")
    return net.linear(x, "fc", infer_num_classes(net, "fc", num_classes))

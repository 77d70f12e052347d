"""Inception-v3 (Szegedy et al., 2015) as in torchvision's ``inception.py``, at 299x299.

Takes torchvision checkpoints as they are: ``Conv2d_1a_3x3`` .. ``Conv2d_4a_3x3`` and every branch of
``Mixed_5b`` .. ``Mixed_7c`` are ``BasicConv2d`` (``.conv`` with ``.bn`` folded), ``fc`` the classifier.
The auxiliary classifier ``AuxLogits`` only runs in training and is not read. ``transform_input`` (on
by default, as for torchvision's pretrained weights) re-normalizes the input first.
"""

from __future__ import annotations

from architectures import common
from architectures.common import basic_conv2d
from architectures.common import num_classes as infer_num_classes
from architectures.registry import register
from netdef.network import Network, Tensor


def _avg_pool_branch(net: Network, x: Tensor, out_channels: int) -> Tensor:
    """3x3 average pooling (stride 1, padding counted), then ``branch_pool``."""
    x = net.avg_pool2d(x, 3, stride=1, padding=1, name="avg_pool")
    return basic_conv2d(net, x, "branch_pool", out_channels, 1)


def inception_a(net: Network, x: Tensor, pool_features: int) -> Tensor:
    """1x1; 1x1-5x5; 1x1-3x3-3x3; average pool-1x1."""
    branch1x1 = basic_conv2d(net, x, "branch1x1", 64, 1)
    branch5x5 = basic_conv2d(net, x, "branch5x5_1", 48, 1)
    branch5x5 = basic_conv2d(net, branch5x5, "branch5x5_2", 64, 5, padding=2)
    branch3x3dbl = basic_conv2d(net, x, "branch3x3dbl_1", 64, 1)
    branch3x3dbl = basic_conv2d(net, branch3x3dbl, "branch3x3dbl_2", 96, 3, padding=1)
    branch3x3dbl = basic_conv2d(net, branch3x3dbl, "branch3x3dbl_3", 96, 3, padding=1)
    branch_pool = _avg_pool_branch(net, x, pool_features)
    return net.concat([branch1x1, branch5x5, branch3x3dbl, branch_pool], 1, name="cat")


def inception_b(net: Network, x: Tensor) -> Tensor:
    """Grid reduction: 3x3/2; 1x1-3x3-3x3/2; 3x3/2 max pool."""
    branch3x3 = basic_conv2d(net, x, "branch3x3", 384, 3, stride=2)
    branch3x3dbl = basic_conv2d(net, x, "branch3x3dbl_1", 64, 1)
    branch3x3dbl = basic_conv2d(net, branch3x3dbl, "branch3x3dbl_2", 96, 3, padding=1)
    branch3x3dbl = basic_conv2d(net, branch3x3dbl, "branch3x3dbl_3", 96, 3, stride=2)
    branch_pool = net.max_pool2d(x, 3, stride=2, name="max_pool")
    return net.concat([branch3x3, branch3x3dbl, branch_pool], 1, name="cat")


def inception_c(net: Network, x: Tensor, channels_7x7: int) -> Tensor:
    """Factorized 7x7: 1x1; 1x1-1x7-7x1; 1x1-7x1-1x7-7x1-1x7; average pool-1x1."""
    c7 = channels_7x7
    branch1x1 = basic_conv2d(net, x, "branch1x1", 192, 1)
    branch7x7 = basic_conv2d(net, x, "branch7x7_1", c7, 1)
    branch7x7 = basic_conv2d(net, branch7x7, "branch7x7_2", c7, (1, 7), padding=(0, 3))
    branch7x7 = basic_conv2d(net, branch7x7, "branch7x7_3", 192, (7, 1), padding=(3, 0))
    branch7x7dbl = basic_conv2d(net, x, "branch7x7dbl_1", c7, 1)
    for i, (kernel, padding) in enumerate([((7, 1), (3, 0)), ((1, 7), (0, 3))] * 2, start=2):
        out = 192 if i == 5 else c7
        branch7x7dbl = basic_conv2d(net, branch7x7dbl, f"branch7x7dbl_{i}", out, kernel, padding=padding)
    branch_pool = _avg_pool_branch(net, x, 192)
    return net.concat([branch1x1, branch7x7, branch7x7dbl, branch_pool], 1, name="cat")


def inception_d(net: Network, x: Tensor) -> Tensor:
    """Grid reduction: 1x1-3x3/2; 1x1-1x7-7x1-3x3/2; 3x3/2 max pool."""
    branch3x3 = basic_conv2d(net, x, "branch3x3_1", 192, 1)
    branch3x3 = basic_conv2d(net, branch3x3, "branch3x3_2", 320, 3, stride=2)
    branch7x7x3 = basic_conv2d(net, x, "branch7x7x3_1", 192, 1)
    branch7x7x3 = basic_conv2d(net, branch7x7x3, "branch7x7x3_2", 192, (1, 7), padding=(0, 3))
    branch7x7x3 = basic_conv2d(net, branch7x7x3, "branch7x7x3_3", 192, (7, 1), padding=(3, 0))
    branch7x7x3 = basic_conv2d(net, branch7x7x3, "branch7x7x3_4", 192, 3, stride=2)
    branch_pool = net.max_pool2d(x, 3, stride=2, name="max_pool")
    return net.concat([branch3x3, branch7x7x3, branch_pool], 1, name="cat")


def inception_e(net: Network, x: Tensor) -> Tensor:
    """Expanded filter bank: 1x1; 1x1-(1x3 | 3x1); 1x1-3x3-(1x3 | 3x1); average pool-1x1."""
    branch1x1 = basic_conv2d(net, x, "branch1x1", 320, 1)
    branch3x3 = basic_conv2d(net, x, "branch3x3_1", 384, 1)
    branch3x3 = net.concat(
        [
            basic_conv2d(net, branch3x3, "branch3x3_2a", 384, (1, 3), padding=(0, 1)),
            basic_conv2d(net, branch3x3, "branch3x3_2b", 384, (3, 1), padding=(1, 0)),
        ],
        1,
        name="branch3x3_cat",
    )
    branch3x3dbl = basic_conv2d(net, x, "branch3x3dbl_1", 448, 1)
    branch3x3dbl = basic_conv2d(net, branch3x3dbl, "branch3x3dbl_2", 384, 3, padding=1)
    branch3x3dbl = net.concat(
        [
            basic_conv2d(net, branch3x3dbl, "branch3x3dbl_3a", 384, (1, 3), padding=(0, 1)),
            basic_conv2d(net, branch3x3dbl, "branch3x3dbl_3b", 384, (3, 1), padding=(1, 0)),
        ],
        1,
        name="branch3x3dbl_cat",
    )
    branch_pool = _avg_pool_branch(net, x, 192)
    return net.concat([branch1x1, branch3x3, branch3x3dbl, branch_pool], 1, name="cat")


@register("inception_v3", input_shape=(3, 299, 299), output="logits")
def inception_v3(net: Network, x: Tensor, num_classes: int | None = None, transform_input: bool = True) -> Tensor:
    """Inception-v3 at 299x299: factorized convolutions, grid reductions, auxiliary classifier ignored."""
    if transform_input:
        x = common.transform_input(net, x)
    x = basic_conv2d(net, x, "Conv2d_1a_3x3", 32, 3, stride=2)
    x = basic_conv2d(net, x, "Conv2d_2a_3x3", 32, 3)
    x = basic_conv2d(net, x, "Conv2d_2b_3x3", 64, 3, padding=1)
    x = net.max_pool2d(x, 3, stride=2, name="maxpool1")
    x = basic_conv2d(net, x, "Conv2d_3b_1x1", 80, 1)
    x = basic_conv2d(net, x, "Conv2d_4a_3x3", 192, 3)
    x = net.max_pool2d(x, 3, stride=2, name="maxpool2")
    for name, block, args in (
        ("Mixed_5b", inception_a, (32,)),
        ("Mixed_5c", inception_a, (64,)),
        ("Mixed_5d", inception_a, (64,)),
        ("Mixed_6a", inception_b, ()),
        ("Mixed_6b", inception_c, (128,)),
        ("Mixed_6c", inception_c, (160,)),
        ("Mixed_6d", inception_c, (160,)),
        ("Mixed_6e", inception_c, (192,)),
        ("Mixed_7a", inception_d, ()),
        ("Mixed_7b", inception_e, ()),
        ("Mixed_7c", inception_e, ()),
    ):
        with net.scope(name):
            x = block(net, x, *args)
    x = net.adaptive_avg_pool2d(x, 1, name="avgpool")
    x = net.flatten(x, name="flatten")
    return net.linear(x, "fc", infer_num_classes(net, "fc", num_classes))

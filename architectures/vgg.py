"""VGG (Simonyan & Zisserman, 2014) as in torchvision's ``vgg.py``: VGG-11/13/16/19, with and without BatchNorm.

Takes torchvision checkpoints as they are: ``features.{i}`` numbered as in ``nn.Sequential``
(a BatchNorm shifts the numbering), ``classifier.{0,3,6}`` for the three linear layers. The
BatchNorms of ``vgg16_bn`` are folded into the convolutions (which keep their bias).
"""

from __future__ import annotations

from collections.abc import Sequence

from architectures.common import num_classes as infer_num_classes
from architectures.registry import register
from netdef.network import Network, Tensor

cfgs: dict[str, list[int | str]] = {
    "A": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "B": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "D": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "E": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"],
}


def make_layers(net: Network, x: Tensor, cfg: Sequence[int | str], batch_norm: bool = False) -> Tensor:
    """The ``features`` Sequential: 3x3 convolutions (+ BatchNorm) + ReLU, ``"M"`` for a 2x2 max pool."""
    index = 0
    for v in cfg:
        if v == "M":
            x = net.max_pool2d(x, 2, stride=2, name=str(index))
            index += 1
            continue
        bn = str(index + 1) if batch_norm else None
        x = net.conv2d(x, str(index), int(v), 3, padding=1, bn=bn)
        index += 2 if batch_norm else 1
        x = net.relu(x, name=str(index))
        index += 1
    return x


def vgg(net: Network, x: Tensor, cfg: str, batch_norm: bool, num_classes: int | None = None) -> Tensor:
    """``features``, adaptive average pool to 7x7, flatten, ``classifier`` (dropout is the identity)."""
    with net.scope("features"):
        x = make_layers(net, x, cfgs[cfg], batch_norm)
    x = net.adaptive_avg_pool2d(x, 7, name="avgpool")
    x = net.flatten(x, name="flatten")
    with net.scope("classifier"):
        x = net.relu(net.linear(x, "0", 4096), name="1")
        x = net.relu(net.linear(x, "3", 4096), name="4")
        return net.linear(x, "6", infer_num_classes(net, "6", num_classes))


def _register(name: str, cfg: str, batch_norm: bool) -> None:
    layers = sum(isinstance(v, int) for v in cfgs[cfg]) + 3

    def define(net: Network, x: Tensor, num_classes: int | None = None) -> Tensor:
        return vgg(net, x, cfg, batch_norm, num_classes)

    bn = " with BatchNorm after every convolution (folded)" if batch_norm else ""
    description = f"VGG-{layers} (configuration {cfg}){bn}: {layers - 3} 3x3 convolutions, 3 linear layers."
    register(name, input_shape=(3, 224, 224), output="logits", description=description)(define)


for _depth, _cfg in (("11", "A"), ("13", "B"), ("16", "D"), ("19", "E")):
    _register(f"vgg{_depth}", _cfg, batch_norm=False)
    _register(f"vgg{_depth}_bn", _cfg, batch_norm=True)

"""ConvNeXt (Liu et al., 2022) as in torchvision's ``convnext.py``.

Takes torchvision checkpoints as they are: ``features.0`` (4x4 patchify convolution and
``LayerNorm2d``), stages ``features.{1,3,5,7}.{j}.block.{0,2,3,5}`` with ``layer_scale``,
downsampling ``features.{2,4,6}.{0,1}``, and ``classifier.{0,2}``. LayerNorm is TensorRT's
normalization layer over the channels; stochastic depth is the identity at inference.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from architectures.common import num_classes as infer_num_classes
from architectures.registry import register

if TYPE_CHECKING:
    from netdef.network import Network, Tensor


LAYER_NORM_EPS = 1e-6  # torchvision: partial(LayerNorm2d, eps=1e-6), partial(nn.LayerNorm, eps=1e-6)


def layer_norm_2d(net: Network, x: Tensor, name: str) -> Tensor:
    """``LayerNorm2d``: LayerNorm over the channels of ``(N, C, H, W)`` (permuted to the last axis and back)."""
    x = net.permute(x, (0, 2, 3, 1), name=f"{name}.channels_last")
    x = net.layer_norm(x, name, eps=LAYER_NORM_EPS)
    return net.permute(x, (0, 3, 1, 2), name=f"{name}.channels_first")


def cn_block(net: Network, x: Tensor) -> Tensor:
    """``CNBlock``: ``x + layer_scale * block(x)``, ``block`` = depthwise 7x7, LayerNorm, MLP (4x, GELU)."""
    dim = net.shape_of(x)[1]
    with net.scope("block"):
        y = net.conv2d(x, "0", dim, 7, padding=3, groups=dim)
        y = net.permute(y, (0, 2, 3, 1), name="1")
        y = net.layer_norm(y, "2", eps=LAYER_NORM_EPS)
        y = net.gelu(net.linear(y, "3", 4 * dim), name="4")
        y = net.linear(y, "5", dim)
        y = net.permute(y, (0, 3, 1, 2), name="6")
    y = net.mul(net.parameter("layer_scale", (dim, 1, 1)), y, name="layer_scale_mul")
    return net.add(y, x)


def convnext(net: Network, x: Tensor, stages: list[tuple[int, int | None, int]], num_classes: int | None) -> Tensor:
    """``features``: patchify stem, then per stage ``(channels, out_channels, blocks)`` the blocks and a
    downsampling (LayerNorm2d, 2x2 stride-2 convolution); average pool and ``classifier``."""
    with net.scope("features"):
        with net.scope(0):
            x = net.conv2d(x, "0", stages[0][0], 4, stride=4)
            x = layer_norm_2d(net, x, "1")
        index = 1
        for _, out_channels, blocks in stages:
            with net.scope(index):
                for j in range(blocks):
                    with net.scope(j):
                        x = cn_block(net, x)
            index += 1
            if out_channels is not None:
                with net.scope(index):
                    x = layer_norm_2d(net, x, "0")
                    x = net.conv2d(x, "1", out_channels, 2, stride=2)
                index += 1
    x = net.adaptive_avg_pool2d(x, 1, name="avgpool")
    with net.scope("classifier"):
        x = net.flatten(layer_norm_2d(net, x, "0"), 1, name="1")
        return net.linear(x, "2", infer_num_classes(net, "2", num_classes))


def _register(name: str, stages: list[tuple[int, int | None, int]], size: str) -> None:
    def define(net: Network, x: Tensor, num_classes: int | None = None) -> Tensor:
        return convnext(net, x, stages, num_classes)

    widths = [c for c, _, _ in stages]
    description = f"ConvNeXt-{size}: widths {widths}, blocks {[n for _, _, n in stages]}"
    register(name, input_shape=(3, 224, 224), output="logits", description=description)(define)


_register("convnext_tiny", [(96, 192, 3), (192, 384, 3), (384, 768, 9), (768, None, 3)], "T")
_register("convnext_small", [(96, 192, 3), (192, 384, 3), (384, 768, 27), (768, None, 3)], "S")
_register("convnext_base", [(128, 256, 3), (256, 512, 3), (512, 1024, 27), (1024, None, 3)], "B")
_register("convnext_large", [(192, 384, 3), (384, 768, 3), (768, 1536, 27), (1536, None, 3)], "L")

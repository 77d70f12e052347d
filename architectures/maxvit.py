"""MaxViT (Tu et al., 2022) as in torchvision's ``maxvit.py``.

Takes torchvision checkpoints as they are: ``stem.{0,1}``, then per block and layer
``blocks.{i}.layers.{j}.layers.{MBconv, window_attention, grid_attention}`` and
``classifier.{2,3,5}``. MBConv's BatchNorms that follow a convolution are folded into it; its
``pre_norm`` (which follows the residual sum) is a scale layer. Block and grid attention are
reshapes and permutes around multi-head attention with a gathered relative position bias.
Stochastic depth and dropout are the identity.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from architectures.common import num_classes as infer_num_classes
from architectures.registry import register
from netdef.errors import NetworkDefinitionError

if TYPE_CHECKING:
    from netdef.network import Network, Tensor


BATCH_NORM_EPS = 1e-3  # torchvision: partial(nn.BatchNorm2d, eps=1e-3, momentum=0.01)
LAYER_NORM_EPS = 1e-5  # nn.LayerNorm's default


def mb_conv(
    net: Network, x: Tensor, out_channels: int, stride: int, expansion: float = 4, squeeze: float = 0.25
) -> Tensor:
    """``proj(x) + layers(x)``: BatchNorm, 1x1 expansion, depthwise 3x3 (``stride``), squeeze-excitation
    (SiLU), 1x1 projection; ``proj`` is [3x3 average pool,] 1x1 convolution when the shape changes."""
    in_channels = net.shape_of(x)[1]
    mid_channels = int(out_channels * expansion)
    res = x
    if stride != 1 or in_channels != out_channels:
        with net.scope("proj"):
            if stride == 2:
                res = net.avg_pool2d(res, 3, stride, 1, name="0")
            res = net.conv2d(res, "1" if stride == 2 else "0", out_channels, 1)
    with net.scope("layers"):
        y = net.batch_norm(x, "pre_norm", eps=BATCH_NORM_EPS)
        with net.scope("conv_a"):
            y = net.conv2d(y, "0", mid_channels, 1, bias=False, bn="1", bn_eps=BATCH_NORM_EPS)
            y = net.gelu(y, name="2")
        with net.scope("conv_b"):
            y = net.conv2d(
                y,
                "0",
                mid_channels,
                3,
                stride=stride,
                padding=1,
                groups=mid_channels,
                bias=False,
                bn="1",
                bn_eps=BATCH_NORM_EPS,
            )
            y = net.gelu(y, name="2")
        y = net.squeeze_excitation(y, "squeeze_excitation", int(out_channels * squeeze), activation="silu")
        y = net.conv2d(y, "conv_c", out_channels, 1)
    return net.add(res, y)


def relative_positional_attention(net: Network, x: Tensor, head_dim: int, size: int) -> Tensor:
    """``RelativePositionalMultiHeadAttention`` on ``(B, G, P, D)``: ``to_qkv``, heads, keys scaled by
    ``D ** -0.5``, softmax with the relative position bias (``size x size`` windows), ``merge``."""
    dim = net.shape_of(x)[-1]
    num_heads = dim // head_dim
    q, k, v = net.split_qkv(net.linear(x, "to_qkv", 3 * dim), num_heads)
    k = net.mul(k, net.scalar(dim**-0.5, k), name="k_scale")
    table = net.parameter("relative_position_bias_table", ((2 * size - 1) ** 2, num_heads))
    from netdef.network.windows import relative_position_index  # here: importing the file needs no TensorRT

    net.buffer("relative_position_index", relative_position_index(size, size))
    bias = net.relative_position_bias(table, (size, size))
    attn = net.add(net.matmul(q, k, transpose_b=True, name="dot_prod"), bias, name="add_relative_position_bias")
    x = net.matmul(net.softmax(attn, -1), v, name="context")
    return net.linear(net.merge_heads(x), "merge", dim)


def partition_attention(net: Network, x: Tensor, partition_type: str, partition_size: int, head_dim: int) -> Tensor:
    """``PartitionAttentionLayer`` on ``(B, C, H, W)``: windows of ``p x p`` (``window``) or a
    ``p x p`` grid (``grid``, axes swapped), ``x + attn_layer(x)``, ``x + mlp_layer(x)``, back."""
    _, channels, height, width = net.shape_of(x)
    p = partition_size if partition_type == "window" else height // partition_size
    if height % p or width % p or height % partition_size:
        raise NetworkDefinitionError(
            f"layer {net.names.qualified(partition_type)!r}: a {height}x{width} feature map does not split into "
            f"{partition_size}x{partition_size} partitions"
        )
    gh, gw = height // p, width // p
    x = net.reshape(x, (0, channels, gh, p, gw, p), name="partition_op")
    x = net.permute(x, (0, 2, 4, 3, 5, 1), name="partition_op.permute")
    x = net.reshape(x, (0, gh * gw, p * p, channels), name="partition_op.reshape")
    if partition_type == "grid":
        x = net.permute(x, (0, 2, 1, 3), name="partition_swap")
    with net.scope("attn_layer"):
        y = net.layer_norm(x, "0", eps=LAYER_NORM_EPS)
        with net.scope("1"):
            y = relative_positional_attention(net, y, head_dim, partition_size)
    x = net.add(x, y, name="attn_residual")
    with net.scope("mlp_layer"):
        y = net.linear(net.layer_norm(x, "0", eps=LAYER_NORM_EPS), "1", 4 * channels)
        y = net.linear(net.gelu(y, name="2"), "3", channels)
    x = net.add(x, y, name="mlp_residual")
    if partition_type == "grid":
        x = net.permute(x, (0, 2, 1, 3), name="departition_swap")
    x = net.reshape(x, (0, gh, gw, p, p, channels), name="departition_op")
    x = net.permute(x, (0, 5, 1, 3, 2, 4), name="departition_op.permute")
    return net.reshape(x, (0, channels, height, width), name="departition_op.reshape")


def maxvit(
    net: Network,
    x: Tensor,
    stem_channels: int,
    block_channels: list[int],
    block_layers: list[int],
    head_dim: int,
    partition_size: int,
    num_classes: int | None,
) -> Tensor:
    """``stem`` (two 3x3 convolutions, the first strided), ``blocks`` of MaxViT layers (MBConv, window
    attention, grid attention; the first layer of each block halves the resolution), ``classifier``."""
    with net.scope("stem"):
        with net.scope(0):
            x = net.conv2d(x, "0", stem_channels, 3, stride=2, padding=1, bias=False, bn="1", bn_eps=BATCH_NORM_EPS)
            x = net.gelu(x, name="2")
        x = net.conv2d(x, "1.0", stem_channels, 3, padding=1)
    for i, (channels, layers) in enumerate(zip(block_channels, block_layers, strict=True)):
        for j in range(layers):
            with net.scope(f"blocks.{i}.layers.{j}.layers"):
                with net.scope("MBconv"):
                    x = mb_conv(net, x, channels, stride=2 if j == 0 else 1)
                for kind in ("window", "grid"):
                    with net.scope(f"{kind}_attention"):
                        x = partition_attention(net, x, kind, partition_size, head_dim)
    x = net.flatten(net.adaptive_avg_pool2d(x, 1, name="classifier.0"), 1, name="classifier.1")
    with net.scope("classifier"):
        x = net.layer_norm(x, "2", eps=LAYER_NORM_EPS)
        x = net.tanh(net.linear(x, "3", block_channels[-1]), name="4")
        return net.linear(x, "5", infer_num_classes(net, "5", num_classes), bias=False)


@register("maxvit_t", input_shape=(3, 224, 224), output="logits")
def maxvit_t(net: Network, x: Tensor, num_classes: int | None = None, partition_size: int = 7) -> Tensor:
    """MaxViT-T: stem 64, blocks [64, 128, 256, 512] x [2, 2, 5, 2], head dim 32, 7x7 partitions."""
    return maxvit(net, x, 64, [64, 128, 256, 512], [2, 2, 5, 2], 32, partition_size, num_classes)

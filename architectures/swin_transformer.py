"""Swin Transformer V1 and V2 (Liu et al., 2021 and 2022) as in torchvision's ``swin_transformer.py``.

Takes torchvision checkpoints as they are: ``features.0.{0,2}`` (patch embedding and LayerNorm),
blocks ``features.{1,3,5,7}.{j}.{norm1, attn, norm2, mlp.0, mlp.3}``, patch merging
``features.{2,4,6}.{reduction, norm}``, ``norm`` and ``head``. Window attention runs on
``(N, windows, tokens, C)``; the cyclic shift is a gather, padding a slice, the shifted windows'
attention mask a constant computed at definition time. The relative position bias is a gather
of ``relative_position_bias_table`` (V1), or of the continuous position bias MLP ``cpb_mlp``
applied to the log-spaced coordinate table (V2, with cosine attention scaled by ``logit_scale``).
Stochastic depth and dropout are the identity.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from architectures.common import num_classes as infer_num_classes
from architectures.registry import register

if TYPE_CHECKING:
    from netdef.network import Network, Tensor


LAYER_NORM_EPS = 1e-5  # torchvision: partial(nn.LayerNorm, eps=1e-5)


def shift_mask(height: int, width: int, window: int, shift: tuple[int, int]) -> np.ndarray:
    """``(windows, N, N)``: 0 where two tokens of a shifted window came from the same region, else -100."""
    mask = np.zeros((height, width), np.float32)
    h_slices = ((0, -window), (-window, -shift[0]), (-shift[0], None))
    w_slices = ((0, -window), (-window, -shift[1]), (-shift[1], None))
    for count, (h, w) in enumerate((h, w) for h in h_slices for w in w_slices):
        mask[h[0] : h[1], w[0] : w[1]] = count
    mask = mask.reshape(height // window, window, width // window, window).transpose(0, 2, 1, 3)
    mask = mask.reshape(-1, window * window)
    return np.where(mask[:, None, :] - mask[:, :, None] != 0, -100.0, 0.0).astype(np.float32)


def relative_coords_table(window: int) -> np.ndarray:
    """V2's ``(1, 2W-1, 2W-1, 2)`` log-spaced relative coordinates, ``sign(t) * log2(|t| + 1) / 3``, |t| <= 8."""
    coords = np.arange(-(window - 1), window, dtype=np.float32)
    table = np.stack(np.meshgrid(coords, coords, indexing="ij")).transpose(1, 2, 0)[None] / (window - 1) * 8
    return (np.sign(table) * np.log2(np.abs(table) + 1.0) / 3.0).astype(np.float32)


def relative_position_bias(net: Network, window: int, num_heads: int, v2: bool) -> Tensor:
    """``(1, heads, N, N)``: the bias table (V2: ``16 * sigmoid(cpb_mlp(relative_coords_table))``) gathered."""
    from netdef.network.windows import relative_position_index  # here: importing the file needs no TensorRT

    net.buffer("relative_position_index", relative_position_index(window, window).reshape(-1))
    if not v2:
        table = net.parameter("relative_position_bias_table", ((2 * window - 1) ** 2, num_heads))
        return net.relative_position_bias(table, (window, window))
    coords = relative_coords_table(window)
    net.buffer("relative_coords_table", coords)
    with net.scope("cpb_mlp"):
        table = net.relu(net.linear(net.fixed("relative_coords_table", coords), "0", 512), name="1")
        table = net.reshape(net.linear(table, "2", num_heads, bias=False), (-1, num_heads), name="view")
    bias = net.relative_position_bias(table, (window, window))
    return net.mul(net.sigmoid(bias), net.scalar(16.0, bias), name="relative_position_bias_16_sigmoid")


def qkv_projection(net: Network, x: Tensor, dim: int, v2: bool) -> Tensor:
    """``qkv``; V2 zeroes the key part of the bias, as torchvision's forward does."""
    if not v2:
        return net.linear(x, "qkv", 3 * dim)
    y = net.linear(x, "qkv", 3 * dim, bias=False)
    key_zeroed = np.ones(3 * dim, np.float32)
    key_zeroed[dim : 2 * dim] = 0.0
    bias = net.mul(
        net.parameter("qkv.bias", (3 * dim,)), net.fixed("qkv.key_bias_mask", key_zeroed), name="qkv.bias_mask"
    )
    return net.add(y, bias, name="qkv.bias_add")


def shifted_window_attention(net: Network, x: Tensor, window: int, shift: int, num_heads: int, v2: bool) -> Tensor:
    """``ShiftedWindowAttention(V2)`` on ``(N, H, W, C)``: pad to whole windows, roll by ``-shift``,
    attend within each window (mask across the rolled edges), roll back, crop."""
    _, height, width, dim = net.shape_of(x)
    pad_h, pad_w = height + (window - height % window) % window, width + (window - width % window) % window
    if (pad_h, pad_w) != (height, width):
        x = net.pad_end(x, (0, pad_h - height, pad_w - width, 0), name="pad")
    shifts = (0 if window >= pad_h else shift, 0 if window >= pad_w else shift)
    x = net.roll(x, (-shifts[0], -shifts[1]), (1, 2), name="roll")
    n_h, n_w, tokens = pad_h // window, pad_w // window, window * window
    x = net.reshape(x, (0, n_h, window, n_w, window, dim), name="window_partition")
    x = net.permute(x, (0, 1, 3, 2, 4, 5), name="window_partition.permute")
    x = net.reshape(x, (0, n_h * n_w, tokens, dim), name="windows")

    q, k, v = net.split_qkv(qkv_projection(net, x, dim, v2), num_heads)
    if v2:
        attn = net.matmul(net.normalize(q, name="q_normalize"), net.normalize(k, name="k_normalize"), transpose_b=True)
        logit_scale = net.minimum(
            net.parameter("logit_scale", (num_heads, 1, 1)), net.scalar(math.log(100.0), q), name="clamp"
        )
        attn = net.mul(attn, net.exp(logit_scale, name="logit_scale_exp"), name="scale")
    else:
        q = net.mul(q, net.scalar((dim // num_heads) ** -0.5, q), name="q_scale")
        attn = net.matmul(q, k, transpose_b=True)
    attn = net.add(attn, relative_position_bias(net, window, num_heads, v2), name="add_relative_position_bias")
    if any(shifts):
        mask = shift_mask(pad_h, pad_w, window, shifts).reshape(1, n_h * n_w, 1, tokens, tokens)
        attn = net.add(attn, net.fixed("attn_mask", mask), name="add_attn_mask")
    x = net.matmul(net.softmax(attn, -1), v, name="context")
    x = net.linear(net.merge_heads(x), "proj", dim)

    x = net.reshape(x, (0, n_h, n_w, window, window, dim), name="window_reverse")
    x = net.permute(x, (0, 1, 3, 2, 4, 5), name="window_reverse.permute")
    x = net.reshape(x, (0, pad_h, pad_w, dim), name="window_reverse.reshape")
    x = net.roll(x, shifts, (1, 2), name="roll_back")
    return x if (pad_h, pad_w) == (height, width) else net.crop(x, (height, width, dim), name="crop")


def swin_transformer_block(net: Network, x: Tensor, num_heads: int, window: int, shift: int, v2: bool) -> Tensor:
    """V1 ``x + attn(norm1(x))``, ``x + mlp(norm2(x))``; V2 normalizes after: ``x + norm1(attn(x))``, ..."""
    dim = net.shape_of(x)[-1]

    def mlp(y: Tensor) -> Tensor:
        with net.scope("mlp"):
            return net.linear(net.gelu(net.linear(y, "0", 4 * dim), name="1"), "3", dim)

    def attn(y: Tensor) -> Tensor:
        with net.scope("attn"):
            return shifted_window_attention(net, y, window, shift, num_heads, v2)

    if v2:
        x = net.add(x, net.layer_norm(attn(x), "norm1", eps=LAYER_NORM_EPS), name="attn_residual")
        return net.add(x, net.layer_norm(mlp(x), "norm2", eps=LAYER_NORM_EPS), name="mlp_residual")
    x = net.add(x, attn(net.layer_norm(x, "norm1", eps=LAYER_NORM_EPS)), name="attn_residual")
    return net.add(x, mlp(net.layer_norm(x, "norm2", eps=LAYER_NORM_EPS)), name="mlp_residual")


def patch_merging(net: Network, x: Tensor, v2: bool) -> Tensor:
    """2x2 neighbours concatenated (``x0, x1, x2, x3`` order: a reshape and a permute), LayerNorm and
    ``reduction`` to ``2C`` (V2: reduction first, then LayerNorm)."""
    _, height, width, dim = net.shape_of(x)
    if height % 2 or width % 2:
        x = net.pad_end(x, (0, height % 2, width % 2, 0), name="pad")
        height, width = height + height % 2, width + width % 2
    x = net.reshape(x, (0, height // 2, 2, width // 2, 2, dim), name="split_2x2")
    x = net.permute(x, (0, 1, 3, 4, 2, 5), name="neighbours_last")
    x = net.reshape(x, (0, height // 2, width // 2, 4 * dim), name="concat_2x2")
    if v2:
        return net.layer_norm(net.linear(x, "reduction", 2 * dim, bias=False), "norm", eps=LAYER_NORM_EPS)
    return net.linear(net.layer_norm(x, "norm", eps=LAYER_NORM_EPS), "reduction", 2 * dim, bias=False)


def swin_transformer(
    net: Network,
    x: Tensor,
    embed_dim: int,
    depths: list[int],
    num_heads: list[int],
    window: int,
    v2: bool,
    num_classes: int | None,
    patch_size: int = 4,
) -> Tensor:
    """``features``: patch embedding, stages of blocks (every other one shifted by half a window) with
    patch merging between them; then ``norm``, average pool and ``head``."""
    with net.scope("features"):
        with net.scope(0):
            x = net.conv2d(x, "0", embed_dim, patch_size, stride=patch_size)
            x = net.layer_norm(net.permute(x, (0, 2, 3, 1), name="1"), "2", eps=LAYER_NORM_EPS)
        for i, (depth, heads) in enumerate(zip(depths, num_heads, strict=True)):
            with net.scope(2 * i + 1):
                for j in range(depth):
                    with net.scope(j):
                        x = swin_transformer_block(net, x, heads, window, 0 if j % 2 == 0 else window // 2, v2)
            if i < len(depths) - 1:
                with net.scope(2 * i + 2):
                    x = patch_merging(net, x, v2)
    x = net.permute(net.layer_norm(x, "norm", eps=LAYER_NORM_EPS), (0, 3, 1, 2), name="permute")
    x = net.flatten(net.adaptive_avg_pool2d(x, 1, name="avgpool"), 1, name="flatten")
    return net.linear(x, "head", infer_num_classes(net, "head", num_classes))


def _register(name: str, embed_dim: int, depths: list[int], num_heads: list[int], window: int, v2: bool) -> None:
    def define(net: Network, x: Tensor, num_classes: int | None = None) -> Tensor:
        return swin_transformer(net, x, embed_dim, depths, num_heads, window, v2, num_classes)

    kind = "Swin V2 (cosine attention, continuous position bias)" if v2 else "Swin"
    variant = name.rsplit("_", 1)[-1].upper()
    description = f"{kind}-{variant}: {embed_dim} channels, depths {depths}, {window}x{window} windows"
    size = 256 if v2 else 224  # the crop size of torchvision's weights
    register(name, input_shape=(3, size, size), output="logits", description=description)(define)


_register("swin_t", 96, [2, 2, 6, 2], [3, 6, 12, 24], 7, v2=False)
_register("swin_s", 96, [2, 2, 18, 2], [3, 6, 12, 24], 7, v2=False)
_register("swin_b", 128, [2, 2, 18, 2], [4, 8, 16, 32], 7, v2=False)
_register("swin_v2_t", 96, [2, 2, 6, 2], [3, 6, 12, 24], 8, v2=True)
_register("swin_v2_s", 96, [2, 2, 18, 2], [3, 6, 12, 24], 8, v2=True)
_register("swin_v2_b", 128, [2, 2, 18, 2], [4, 8, 16, 32], 8, v2=True)

"""RegNetX and RegNetY (Radosavovic et al., 2020) as in torchvision's ``regnet.py``.

Takes torchvision checkpoints as they are: ``stem.0``/``stem.1``, then
``trunk_output.block{i}.block{i}-{j}.{proj, f.a, f.b, f.se, f.c}`` and ``fc``. Every BatchNorm is
folded into the convolution before it. The stage widths, depths and group counts follow from
each model's four RegNet parameters exactly as torchvision computes them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from architectures.common import conv_norm_activation, make_divisible
from architectures.common import num_classes as infer_num_classes
from architectures.registry import register

if TYPE_CHECKING:
    from netdef.network import Network, Tensor


@dataclass(frozen=True)
class BlockParams:
    """Per-stage settings: output widths, depths, group widths, bottleneck multipliers, SE ratio."""

    depths: list[int]
    widths: list[int]
    group_widths: list[int]
    bottleneck_multipliers: list[float]
    se_ratio: float | None

    @classmethod
    def from_init_params(
        cls, depth: int, w_0: int, w_a: float, w_m: float, group_width: int, se_ratio: float | None = None
    ) -> BlockParams:
        """Quantized linear block widths ``w_0 * w_m ** round(log(1 + j*w_a/w_0) / log(w_m))`` (multiples of
        8, in float32 as torchvision computes them), grouped into stages of equal width."""
        widths_cont = np.arange(depth, dtype=np.float32) * np.float32(w_a) + np.float32(w_0)
        block_capacity = np.round(np.log(widths_cont / np.float32(w_0)) / np.float32(math.log(w_m)))
        powers = np.float32(w_0) * np.power(np.float32(w_m), block_capacity.astype(np.float32))
        block_widths = (np.round(powers / np.float32(8)) * 8).astype(int).tolist()
        splits = [w != wp for w, wp in zip(block_widths + [0], [0] + block_widths, strict=True)]
        stage_widths = [w for w, t in zip(block_widths, splits[:-1], strict=True) if t]
        stage_depths = np.diff([d for d, t in enumerate(splits) if t]).tolist()
        group_widths = [min(group_width, w) for w in stage_widths]  # bottleneck multiplier 1
        stage_widths = [make_divisible(w, g) for w, g in zip(stage_widths, group_widths, strict=True)]
        return cls(stage_depths, stage_widths, group_widths, [1.0] * len(stage_widths), se_ratio)


def bottleneck_transform(
    net: Network, x: Tensor, width_out: int, stride: int, group_width: int, multiplier: float, se_ratio: float | None
) -> Tensor:
    """``f``: 1x1 ``a``, grouped 3x3 ``b`` (stride here), squeeze-excitation ``se`` (RegNetY), 1x1 ``c``."""
    width_in = net.shape_of(x)[1]
    w_b = int(round(width_out * multiplier))
    with net.scope("f"):
        x = conv_norm_activation(net, x, "a", w_b, 1)
        x = conv_norm_activation(net, x, "b", w_b, 3, stride=stride, groups=w_b // group_width)
        if se_ratio:
            x = net.squeeze_excitation(x, "se", int(round(se_ratio * width_in)))
        return conv_norm_activation(net, x, "c", width_out, 1, activation=None)


def res_bottleneck_block(
    net: Network, x: Tensor, width_out: int, stride: int, group_width: int, multiplier: float, se_ratio: float | None
) -> Tensor:
    """``x + f(x)`` (``proj(x) + f(x)`` when the width or resolution changes), then ReLU."""
    shortcut = x
    if net.shape_of(x)[1] != width_out or stride != 1:
        shortcut = conv_norm_activation(net, x, "proj", width_out, 1, stride=stride, activation=None)
    x = net.add(shortcut, bottleneck_transform(net, x, width_out, stride, group_width, multiplier, se_ratio))
    return net.relu(x, name="activation")


def regnet(net: Network, x: Tensor, params: BlockParams, num_classes: int | None, stem_width: int = 32) -> Tensor:
    """Stem (3x3, stride 2), ``trunk_output`` of stages ``block1``..., global average pool, ``fc``."""
    x = conv_norm_activation(net, x, "stem", stem_width, 3, stride=2)
    stages = zip(params.widths, params.depths, params.group_widths, params.bottleneck_multipliers, strict=True)
    with net.scope("trunk_output"):
        for i, (width, depth, group_width, multiplier) in enumerate(stages, start=1):
            with net.scope(f"block{i}"):
                for j in range(depth):
                    with net.scope(f"block{i}-{j}"):
                        stride = 2 if j == 0 else 1
                        x = res_bottleneck_block(net, x, width, stride, group_width, multiplier, params.se_ratio)
    x = net.flatten(net.adaptive_avg_pool2d(x, 1, name="avgpool"), 1)
    return net.linear(x, "fc", infer_num_classes(net, "fc", num_classes))


def _register(name: str, depth: int, w_0: int, w_a: float, w_m: float, group_width: int, se: bool, gflops: str) -> None:
    params = BlockParams.from_init_params(depth, w_0, w_a, w_m, group_width, 0.25 if se else None)

    def define(net: Network, x: Tensor, num_classes: int | None = None) -> Tensor:
        return regnet(net, x, params, num_classes)

    kind = "RegNetY (squeeze-excitation)" if se else "RegNetX"
    description = f"{kind} {gflops}: depths {params.depths}, widths {params.widths}"
    size = 384 if name == "regnet_y_128gf" else 224  # the crop size of torchvision's weights (SWAG: 384)
    register(name, input_shape=(3, size, size), output="logits", description=description)(define)


for _args in [
    ("regnet_y_400mf", 16, 48, 27.89, 2.09, 8, True, "400MF"),
    ("regnet_y_800mf", 14, 56, 38.84, 2.4, 16, True, "800MF"),
    ("regnet_y_1_6gf", 27, 48, 20.71, 2.65, 24, True, "1.6GF"),
    ("regnet_y_3_2gf", 21, 80, 42.63, 2.66, 24, True, "3.2GF"),
    ("regnet_y_8gf", 17, 192, 76.82, 2.19, 56, True, "8GF"),
    ("regnet_y_16gf", 18, 200, 106.23, 2.48, 112, True, "16GF"),
    ("regnet_y_32gf", 20, 232, 115.89, 2.53, 232, True, "32GF"),
    ("regnet_y_128gf", 27, 456, 160.83, 2.52, 264, True, "128GF"),
    ("regnet_x_400mf", 22, 24, 24.48, 2.54, 16, False, "400MF"),
    ("regnet_x_800mf", 16, 56, 35.73, 2.28, 16, False, "800MF"),
    ("regnet_x_1_6gf", 18, 80, 34.01, 2.25, 24, False, "1.6GF"),
    ("regnet_x_3_2gf", 25, 88, 26.31, 2.25, 48, False, "3.2GF"),
    ("regnet_x_8gf", 23, 80, 49.56, 2.88, 120, False, "8GF"),
    ("regnet_x_16gf", 22, 216, 55.59, 2.1, 128, False, "16GF"),
    ("regnet_x_32gf", 23, 320, 69.86, 2.0, 168, False, "32GF"),
]:
    _register(*_args)

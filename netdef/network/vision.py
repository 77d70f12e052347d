"""Layer methods for convolutional image classifiers: hard sigmoid, channel split and shuffle,
squeeze-and-excitation.

Named and parameterised as PyTorch's ``nn.Hardsigmoid``, ``torch.chunk``, ShuffleNetV2's
``channel_shuffle`` and torchvision's ``ops.SqueezeExcitation`` (``{name}.fc1``, ``{name}.fc2``), so
torchvision checkpoints are read without renaming anything.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from netdef.backend import trt
from netdef.errors import NetworkDefinitionError
from netdef.network.core import NetworkCore, Tensor


class VisionMixin(NetworkCore):
    def hardsigmoid(self, x: Tensor, *, name: str | None = None) -> Tensor:
        """``clip(x / 6 + 1/2, 0, 1)`` (``nn.Hardsigmoid``): one HARD_SIGMOID activation."""
        layer = self.trt_network.add_activation(x, trt.ActivationType.HARD_SIGMOID)
        layer.alpha, layer.beta = 1 / 6, 0.5
        return self._named(layer, "hardsigmoid", name).get_output(0)

    def channel_affine(
        self, x: Tensor, scale: Sequence[float], shift: Sequence[float], *, name: str | None = None
    ) -> Tensor:
        """``x[:, c] * scale[c] + shift[c]`` with constants that belong to the architecture (e.g. a fixed
        input normalization), not to the checkpoint: one per-channel scale layer, not in :attr:`weights`."""
        base = self.names.local("channel_affine", name)
        channels = self._static_dim(x, 1, base, "channels")
        if len(scale) != channels or len(shift) != channels:
            raise NetworkDefinitionError(
                f"layer {self.names.qualified(base)!r}: {channels} channels, {len(scale)} scales, {len(shift)} shifts"
            )
        shift_w = self._weights(f"{base}.shift", np.asarray(shift, dtype=np.float32), role="fixed")
        scale_w = self._weights(f"{base}.scale", np.asarray(scale, dtype=np.float32), role="fixed")
        layer = self.trt_network.add_scale_nd(x, trt.ScaleMode.CHANNEL, shift_w, scale_w, self._weights("", None), 1)
        return self._named(layer, "channel_affine", base).get_output(0)

    def chunk(self, x: Tensor, chunks: int, dim: int = 1, *, name: str | None = None) -> list[Tensor]:
        """``torch.chunk`` into equal parts along ``dim`` (whose size must divide): one gather per part,
        named ``{name}.0``, ``{name}.1``, ... (a gather works with a dynamic batch without shape layers)."""
        base = self.names.local("chunk", name)
        shape = self.shape_of(x)
        dim = self._dim(dim, len(shape), "chunk")
        size = self._static_dim(x, dim, base, f"size to chunk (axis {dim})")
        if size % chunks:
            raise NetworkDefinitionError(
                f"layer {self.names.qualified(base)!r}: {size} does not split into {chunks} chunks"
            )
        step = size // chunks
        return [self.gather(x, list(range(i * step, (i + 1) * step)), dim, name=f"{base}.{i}") for i in range(chunks)]

    def channel_shuffle(self, x: Tensor, groups: int, *, name: str | None = None) -> Tensor:
        """ShuffleNet's channel shuffle of ``(N, C, H, W)``: view as ``(N, groups, C/groups, H, W)``, swap
        axes 1 and 2, view back. One shuffle layer reshapes and transposes, a second flattens."""
        base = self.names.local("channel_shuffle", name)
        _, channels, height, width = self.shape_of(x)
        if channels < 0 or channels % groups:
            raise NetworkDefinitionError(
                f"layer {self.names.qualified(base)!r}: {channels} channels do not split into {groups} groups"
            )
        layer = self.trt_network.add_shuffle(x)
        layer.reshape_dims = (0, groups, channels // groups, height, width)
        layer.zero_is_placeholder = True
        layer.second_transpose = (0, 2, 1, 3, 4)
        swapped = self._named(layer, "shuffle", f"{base}.transpose").get_output(0)
        return self.reshape(swapped, (0, channels, height, width), name=base)

    def squeeze_excitation(
        self,
        x: Tensor,
        name: str,
        squeeze_channels: int,
        activation: str = "relu",
        scale_activation: str = "sigmoid",
    ) -> Tensor:
        """``x * scale_activation(fc2(activation(fc1(mean(x over H, W)))))`` as torchvision's
        ``ops.SqueezeExcitation``: ``{name}.fc1`` and ``{name}.fc2`` are 1x1 convolutions; the
        activations are Network methods by name (``"relu"``, ``"silu"``, ``"hardsigmoid"`` ...)."""
        channels = self._static_dim(x, 1, name, "channels")
        with self.scope(name):
            scale = self.adaptive_avg_pool2d(x, 1, name="avgpool")
            scale = self.conv2d(scale, "fc1", squeeze_channels, 1)
            scale = getattr(self, activation)(scale, name="activation")
            scale = self.conv2d(scale, "fc2", channels, 1)
            scale = getattr(self, scale_activation)(scale, name="scale_activation")
            return self.mul(scale, x, name="scale")

"""Layer methods for transformers: LayerNorm, gather, batch broadcast and multi-head attention.

Named after PyTorch's modules and parameters (``ln_1.weight``, ``self_attention.in_proj_weight``),
so that a torchvision Vision Transformer checkpoint is read without renaming anything.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from netdef import backend
from netdef.errors import NetworkDefinitionError
from netdef.network.core import Tensor
from netdef.network.layers import LayersMixin


class TransformerMixin(LayersMixin):
    # ------------------------------------------------------------------ normalization

    def layer_norm(self, x: Tensor, name: str, eps: float = 1e-5) -> Tensor:
        """``torch.nn.LayerNorm`` over the last axis, reading ``{name}.weight`` and ``{name}.bias`` (``D``).

        ``y = (x - mean(x)) / sqrt(var(x) + eps) * weight + bias`` with mean and (biased) variance
        over the last axis: one TensorRT normalization layer named ``name``.
        """
        shape = self.shape_of(x)
        rank = len(shape)
        features = self._static_dim(x, rank - 1, name, "normalized (last) dimension")
        broadcast = (1,) * (rank - 1) + (features,)
        gamma = self._constant(f"{name}.weight", self._param(f"{name}.weight", (features,)).reshape(broadcast))
        beta = self._constant(f"{name}.bias", self._param(f"{name}.bias", (features,)).reshape(broadcast))
        layer = backend.add_normalization(self.trt_network, x, gamma, beta, 1 << (rank - 1))
        layer.epsilon = eps
        return self._named(layer, "layer_norm", name).get_output(0)

    # ------------------------------------------------------------------ indexing

    def gather(self, x: Tensor, index: int | Sequence[int], dim: int, *, name: str | None = None) -> Tensor:
        """``x`` indexed along ``dim``: an int drops the dimension (``x[:, 0]``), a list keeps it (``x[:, [0, 2]]``)."""
        name = self.names.local("gather", name)
        shape = self.shape_of(x)
        dim = self._dim(dim, len(shape), "gather")
        indices = np.asarray(index, dtype=np.int32)
        size = shape[dim]
        if size >= 0:
            if ((indices < -size) | (indices >= size)).any():
                raise NetworkDefinitionError(
                    f"layer {self.names.qualified(name)!r}: index {index} is out of range for axis {dim} of size {size}"
                )
            indices = indices % size
        layer = self.trt_network.add_gather(x, self._constant(f"{name}.indices", indices, role="fixed"), dim)
        return self._named(layer, "gather", name).get_output(0)

    def broadcast_batch(self, x: Tensor, like: Tensor, *, name: str | None = None) -> Tensor:
        """``x`` (leading axis of size 1) repeated to ``like``'s leading size: ``x.expand(n, -1, ...)``.

        A slice with stride 0 along the leading axis. With a dynamic batch the slice's output shape
        is computed at run time from ``like``'s shape (shape, slice and concatenation layers).
        """
        shape = self.shape_of(x)
        base = self.names.local("broadcast_batch", name)
        if shape[0] != 1:
            raise NetworkDefinitionError(
                f"layer {self.names.qualified(base)!r}: leading axis must be 1, shape is {shape}"
            )
        batch = self.shape_of(like)[0]
        start, stride = (0,) * len(shape), (0,) + (1,) * (len(shape) - 1)
        layer = self.trt_network.add_slice(x, start, (max(batch, 1), *shape[1:]), stride)
        if batch < 0:
            layer.set_input(2, self._runtime_shape(like, shape[1:], base))
        return self._named(layer, "broadcast_batch", base).get_output(0)

    def _runtime_shape(self, like: Tensor, rest: Sequence[int], base: str) -> Tensor:
        """An int64 shape tensor ``(like.shape[0], *rest)`` computed at run time."""
        shape_layer = self._named(self.trt_network.add_shape(like), "shape", f"{base}.like_shape")
        first = self.trt_network.add_slice(shape_layer.get_output(0), (0,), (1,), (1,))
        first = self._named(first, "slice", f"{base}.batch").get_output(0)
        rest_tensor = self._constant(f"{base}.rest", np.asarray(rest, dtype=np.int64), role="fixed")
        concat = self.trt_network.add_concatenation([first, rest_tensor])
        concat.axis = 0
        return self._named(concat, "concat", f"{base}.shape").get_output(0)

    # ------------------------------------------------------------------ attention

    def scaled_dot_product_attention(
        self, q: Tensor, k: Tensor, v: Tensor, *, scale: float | None = None, name: str = "attention"
    ) -> Tensor:
        """``softmax(q @ k.T * scale) @ v`` over the last two axes; ``scale`` defaults to ``1/sqrt(head_dim)``."""
        head_dim = self._static_dim(q, len(self.shape_of(q)) - 1, name, "head dimension")
        scale = 1.0 / math.sqrt(head_dim) if scale is None else scale
        scores = self.matmul(q, k, transpose_b=True, name=f"{name}.scores")
        scores = self.mul(scores, self.scalar(scale, scores, name=f"{name}.scale_factor"), name=f"{name}.scale")
        weights = self.softmax(scores, dim=-1, name=f"{name}.softmax")
        return self.matmul(weights, v, name=f"{name}.context")

    def multi_head_attention(self, x: Tensor, name: str, num_heads: int) -> Tensor:
        """Self-attention as ``torch.nn.MultiheadAttention(batch_first=True)(x, x, x)``.

        Reads ``{name}.in_proj_weight`` (``3E, E``: query, key, value rows), ``{name}.in_proj_bias``,
        ``{name}.out_proj.weight`` and ``{name}.out_proj.bias``. ``x`` is ``(N, L, E)``; the heads
        are split by reshaping to ``(N, L, 3, heads, E/heads)`` and gathering q, k and v.
        """
        embed = self._static_dim(x, 2, name, "embedding dimension")
        if embed % num_heads:
            raise NetworkDefinitionError(
                f"layer {self.names.qualified(name)!r}: embedding dimension {embed} "
                f"is not divisible by {num_heads} heads"
            )
        head_dim = embed // num_heads
        with self.scope(name):
            weight = self._param("in_proj_weight", (3 * embed, embed))
            bias = self._param("in_proj_bias", (3 * embed,))
            w = self._constant("in_proj_weight", weight.reshape(1, 3 * embed, embed))
            b = self._constant("in_proj_bias", bias.reshape(1, 1, 3 * embed))
            qkv = self.matmul(x, w, transpose_b=True, name="in_proj")
            qkv = self.add(qkv, b, name="in_proj.bias_add")
            qkv = self.reshape(qkv, (0, 0, 3, num_heads, head_dim), name="in_proj.split_heads")
            q, k, v = (
                self.permute(self.gather(qkv, i, dim=2, name=part), (0, 2, 1, 3), name=f"{part}.heads_first")
                for i, part in enumerate(("query", "key", "value"))
            )
            context = self.scaled_dot_product_attention(q, k, v, name="attention")
            context = self.permute(context, (0, 2, 1, 3), name="attention.heads_last")
            context = self.reshape(context, (0, 0, embed), name="attention.merge_heads")
            return self.linear(context, "out_proj", embed)

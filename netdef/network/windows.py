"""Layer methods for windowed vision transformers (Swin, MaxViT): shifts, padding, relative position bias.

``torch.roll``, ``F.pad``/cropping, ``F.normalize`` and the relative-position-bias lookup expressed
with TensorRT gather, slice, reduce and element-wise layers. Constants that belong to the
architecture (gather indices, attention masks) are computed at definition time.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from netdef.backend import trt
from netdef.network.core import Tensor
from netdef.network.transformer import TransformerMixin


def relative_position_index(height: int, width: int) -> np.ndarray:
    """``(H*W, H*W)`` index into a ``((2H-1)(2W-1), heads)`` bias table: entry ``[i, j]`` is the
    table row of the offset between window positions ``i`` and ``j`` (torchvision's
    ``relative_position_index``, Swin and MaxViT alike)."""
    coords = np.stack(np.meshgrid(np.arange(height), np.arange(width), indexing="ij")).reshape(2, -1)
    relative = (coords[:, :, None] - coords[:, None, :]).transpose(1, 2, 0)
    return (relative[..., 0] + height - 1) * (2 * width - 1) + relative[..., 1] + width - 1


class WindowOps(TransformerMixin):
    """Shifted and partitioned windows (Swin, MaxViT): roll, padding, cropping, relative position bias."""

    def roll(self, x: Tensor, shifts: Sequence[int], dims: Sequence[int], *, name: str | None = None) -> Tensor:
        """``torch.roll(x, shifts, dims)``: element ``i`` moves to ``i + shift`` (cyclically), one gather per axis
        with the constant index ``(arange(n) - shift) % n``."""
        base = self.names.local("roll", name)
        rank = len(self.shape_of(x))
        sizes = [self._static_dim(x, dim % rank, base, "rolled dimension") for dim in dims]
        moves = [(shift, dim, size) for shift, dim, size in zip(shifts, dims, sizes, strict=True) if shift % size]
        for i, (shift, dim, size) in enumerate(moves):
            index = ((np.arange(size) - shift) % size).tolist()
            x = self.gather(x, index, dim, name=base if i == len(moves) - 1 else f"{base}.dim{dim % rank}")
        return x

    def pad_end(self, x: Tensor, pads: Sequence[int], *, name: str | None = None) -> Tensor:
        """Zeros appended to the end of each axis (``pads[i]`` on axis ``i``; the batch axis takes 0):
        ``F.pad`` with only trailing padding. A slice in FILL mode that reads past the end."""
        shape = self.shape_of(x)
        size = [d + p for d, p in zip(shape, pads, strict=True)]
        return self._batch_slice(x, size, trt.SampleMode.FILL, self.names.local("pad", name))

    def crop(self, x: Tensor, size: Sequence[int], *, name: str | None = None) -> Tensor:
        """The leading ``size`` elements of every axis but the batch axis: ``x[:, :H, :W, :]``."""
        return self._batch_slice(x, [self.shape_of(x)[0], *size], trt.SampleMode.STRICT_BOUNDS, name or "crop")

    def _batch_slice(self, x: Tensor, size: Sequence[int], mode, name: str) -> Tensor:
        """A slice from the origin of ``size`` (its batch entry ignored); a dynamic batch comes from
        shape layers at run time."""
        batch = self.shape_of(x)[0]
        layer = self.trt_network.add_slice(x, (0,) * len(size), (max(batch, 1), *size[1:]), (1,) * len(size))
        layer.mode = mode
        if batch < 0:
            layer.set_input(2, self._runtime_shape(x, size[1:], name))
        return self._named(layer, "slice", name).get_output(0)

    def relative_position_bias(self, table: Tensor, window: Sequence[int], *, name: str | None = None) -> Tensor:
        """``table[relative_position_index]`` as ``(1, heads, N, N)`` for an ``H x W`` window (``N = H*W``):
        a gather of the ``((2H-1)(2W-1), heads)`` table with a constant index, then a permute."""
        base = self.names.local("relative_position_bias", name)
        height, width = window
        n = height * width
        index = relative_position_index(height, width).reshape(-1)
        bias = self.gather(table, index.tolist(), 0, name=f"{base}.gather")
        bias = self.reshape(bias, (n, n, -1), name=f"{base}.view")
        bias = self.permute(bias, (2, 0, 1), name=f"{base}.heads_first")
        return self.reshape(bias, (1, -1, n, n), name=base)

    def split_qkv(self, qkv: Tensor, num_heads: int, *, name: str = "qkv") -> tuple[Tensor, Tensor, Tensor]:
        """``(..., T, 3 * heads * d)`` -> query, key and value, each ``(..., heads, T, d)``
        (``torch.chunk(qkv, 3, dim=-1)``, then heads split off and moved before the tokens)."""
        shape = self.shape_of(qkv)
        rank = len(shape)
        features = self._static_dim(qkv, rank - 1, name, "qkv features")
        qkv = self.reshape(
            qkv, (0,) * (rank - 1) + (3, num_heads, features // (3 * num_heads)), name=f"{name}.split_heads"
        )
        heads_first = (*range(rank - 2), rank - 1, rank - 2, rank)
        return tuple(  # type: ignore[return-value]
            self.permute(self.gather(qkv, i, rank - 1, name=part), heads_first, name=f"{part}.heads_first")
            for i, part in enumerate(("q", "k", "v"))
        )

    def merge_heads(self, x: Tensor, *, name: str = "merge_heads") -> Tensor:
        """``(..., heads, T, d)`` -> ``(..., T, heads * d)``: the inverse of :meth:`split_qkv`'s head split."""
        shape = self.shape_of(x)
        rank = len(shape)
        heads_last = (*range(rank - 3), rank - 2, rank - 3, rank - 1)
        x = self.permute(x, heads_last, name=f"{name}.heads_last")
        return self.reshape(x, (0,) * (rank - 2) + (shape[-3] * shape[-1],), name=name)

    def normalize(self, x: Tensor, dim: int = -1, eps: float = 1e-12, *, name: str | None = None) -> Tensor:
        """``F.normalize``: ``x / max(||x||_2, eps)`` along ``dim``.

        ``x`` is first divided by its largest ``|x|`` along ``dim``, so that the squares cannot
        overflow fp16; ``eps`` is at least the dtype's smallest normal number (1e-12 is 0 in fp16,
        and an all-zero row, e.g. a padded token, must give 0, not NaN).
        """
        base = self.names.local("normalize", name)
        axis = 1 << self._dim(dim, len(self.shape_of(x)), base)
        tiny = float(max(eps, float(np.finfo(np.float16).tiny) if self.precision.numpy == np.float16 else eps))
        largest = self._reduce(
            self._unary(x, trt.UnaryOperation.ABS, f"{base}.abs"), trt.ReduceOperation.MAX, axis, f"{base}.largest"
        )
        largest = self._elementwise(
            largest,
            self.scalar(tiny, x, name=f"{base}.tiny"),
            trt.ElementWiseOperation.MAX,
            "max",
            f"{base}.largest_clamp",
        )
        x = self._elementwise(x, largest, trt.ElementWiseOperation.DIV, "div", f"{base}.scaled")
        square_sum = self._reduce(self.mul(x, x, name=f"{base}.square"), trt.ReduceOperation.SUM, axis, f"{base}.sum")
        norm = self._unary(square_sum, trt.UnaryOperation.SQRT, f"{base}.norm")
        norm = self._elementwise(
            norm, self.scalar(tiny, x, name=f"{base}.eps"), trt.ElementWiseOperation.MAX, "max", f"{base}.clamp"
        )
        return self._elementwise(x, norm, trt.ElementWiseOperation.DIV, "div", base)

    def _unary(self, x: Tensor, op, name: str) -> Tensor:
        return self._named(self.trt_network.add_unary(x, op), "unary", name).get_output(0)

    def _reduce(self, x: Tensor, op, axes: int, name: str) -> Tensor:
        return self._named(self.trt_network.add_reduce(x, op, axes, True), "reduce", name).get_output(0)

    def exp(self, x: Tensor, *, name: str | None = None) -> Tensor:
        """``torch.exp``."""
        return self._unary(x, trt.UnaryOperation.EXP, self.names.local("exp", name))

    def minimum(self, a: Tensor, b: Tensor, *, name: str | None = None) -> Tensor:
        """``torch.minimum`` with broadcasting (``torch.clamp(x, max=c)`` with a scalar ``b``)."""
        return self._elementwise(a, b, trt.ElementWiseOperation.MIN, "min", name)

    def fixed(self, name: str, array: np.ndarray) -> Tensor:
        """A constant of the architecture (an attention mask, a coordinate table), in the network's
        dtype, named ``name`` in the current scope but not a checkpoint weight (nothing to refit)."""
        return self._constant(name, np.asarray(array, dtype=np.float32), role="fixed")

    def buffer(self, key: str, computed: np.ndarray) -> None:
        """A checkpoint buffer the architecture computes itself (``relative_position_index``): listed
        as expected, and when the checkpoint has it, it must equal ``computed``."""
        full = self.names.qualified(key)
        if self.weight_table.checkpoint_shape(full) is None:
            self.weight_table.expected[full] = tuple(computed.shape)
            return
        problems = len(self.problems)
        stored = self.weight_table.read(full, tuple(computed.shape), index_buffer=True)  # a wrong shape: a problem
        if len(self.problems) == problems and not np.allclose(stored, computed, rtol=1e-6, atol=1e-6):
            self.problems.append(
                f"buffer {full!r} differs from the one this architecture computes (another window size?)"
            )

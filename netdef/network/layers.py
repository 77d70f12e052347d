"""Layer methods of :class:`~netdef.network.Network`, named and shaped like ``torch.nn.functional``.

Each method emits TensorRT layers, checks shapes against the weights before TensorRT sees them
(TensorRT only logs such mismatches), and returns the output tensor. Weighted layers take the
checkpoint scope of their parameters as ``name`` (``"conv1"`` reads ``conv1.weight`` and
``conv1.bias``) and are named after it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from netdef.backend import trt
from netdef.errors import NetworkDefinitionError
from netdef.network.core import NetworkCore, Tensor
from netdef.network.qdq import QuantizationMixin
from netdef.network.table import ChannelScaled

IntOr2 = int | Sequence[int]


def _pair(value: IntOr2, what: str) -> tuple[int, int]:
    if isinstance(value, int):
        return (value, value)
    pair = tuple(int(v) for v in value)
    if len(pair) != 2:
        raise NetworkDefinitionError(f"{what} must be an int or a pair, got {value!r}")
    return pair  # type: ignore[return-value]


class LayersMixin(QuantizationMixin):
    # ------------------------------------------------------------------ convolution

    def conv2d(
        self,
        x: Tensor,
        name: str,
        out_channels: int | None = None,
        kernel_size: IntOr2 | None = None,
        *,
        stride: IntOr2 = 1,
        padding: IntOr2 = 0,
        dilation: IntOr2 = 1,
        groups: int = 1,
        bias: bool = True,
        bn: str | None = None,
        bn_eps: float = 1e-5,
    ) -> Tensor:
        """2-D convolution ``y = W * x + b`` reading ``{name}.weight`` (``out, in/groups, kh, kw``).

        ``out_channels`` and ``kernel_size`` default to the checkpoint's; ``bias`` as in
        ``torch.nn.Conv2d`` (a missing ``{name}.bias`` is an error unless ``bias=False``).
        ``bn="bn1"`` folds the BatchNorm ``bn1`` that follows into the convolution (as the ONNX exporter
        does): ``W' = W * g/sqrt(v+eps)``, ``b' = (b - m) * g/sqrt(v+eps) + beta``; the fold is recorded
        in :attr:`derived`.
        """
        in_channels = self._static_dim(x, 1, name, "input channels")
        ckpt_shape = self.checkpoint_shape(f"{name}.weight")
        if out_channels is None or kernel_size is None:
            if ckpt_shape is None or len(ckpt_shape) != 4:
                raise NetworkDefinitionError(
                    f"layer {self.names.qualified(name)!r}: give out_channels and kernel_size, or a checkpoint with "
                    f"a 4-D {self.names.qualified(name + '.weight')!r} (found {ckpt_shape})"
                )
            out_channels = out_channels or ckpt_shape[0]
            kernel_size = kernel_size or tuple(ckpt_shape[2:])
        kernel = _pair(kernel_size, "kernel_size")
        if in_channels % groups or out_channels % groups:
            raise NetworkDefinitionError(
                f"layer {self.names.qualified(name)!r}: groups={groups} must divide input channels ({in_channels}) "
                f"and output channels ({out_channels})"
            )
        weight = self._param(f"{name}.weight", (out_channels, in_channels // groups, *kernel))
        b = self._param(f"{name}.bias", (out_channels,)) if bias else None
        sources: dict[str, list[str] | None] = {f"{name}.weight": None, f"{name}.bias": None}
        folded: np.ndarray | ChannelScaled = weight
        if bn is not None:
            folded, b, sources = self._fold_batch_norm(name, weight, b, bn, bn_eps)
        owned = bn is not None  # folded: new arrays the table may keep without a copy
        return self._convolution(x, name, folded, b, kernel, stride, padding, dilation, groups, sources, owned)

    def _fold_batch_norm(
        self, name: str, weight: np.ndarray, bias: np.ndarray | None, bn: str, eps: float
    ) -> tuple[ChannelScaled, np.ndarray, dict[str, list[str] | None]]:
        """``weight * scale`` and ``(bias - mean) * scale + beta``, ``scale = gamma / sqrt(var + eps)``: the
        BatchNorm after a convolution folded into it. The kernel stays a :class:`ChannelScaled` product
        that the weight table computes in the network's dtype."""
        channels = weight.shape[0]
        gamma, beta, mean, var = (
            self._param(f"{bn}.{p}", (channels,)) for p in ("weight", "bias", "running_mean", "running_var")
        )
        scale = self._batch_norm_scale(bn, gamma, var, eps)
        folded_bias = ((bias if bias is not None else 0.0) - mean) * scale + beta
        bn_keys = [self.names.qualified(f"{bn}.{p}") for p in ("weight", "bias", "running_mean", "running_var")]
        conv_keys = [self.names.qualified(f"{name}.{p}") for p in ("weight", "bias")][: 1 if bias is None else 2]
        sources: dict[str, list[str] | None] = {
            f"{name}.weight": conv_keys[:1] + bn_keys,
            f"{name}.bias": conv_keys[1:] + bn_keys,
        }
        return ChannelScaled(weight, scale), folded_bias.astype(np.float32, copy=False), sources

    def _batch_norm_scale(self, bn: str, gamma: np.ndarray, var: np.ndarray, eps: float) -> np.ndarray:
        """``gamma / sqrt(var + eps)``; channels where ``var + eps <= 0`` are a problem (they would be NaN)."""
        denominator = var + np.float32(eps)
        bad = np.flatnonzero(~(denominator > 0) & np.isfinite(var))
        if bad.size:
            self.problems.append(
                f"BatchNorm {self.names.qualified(bn)!r}: running_var + eps <= 0 in {bad.size} channel(s) "
                f"(first: {bad[:5].tolist()}), which would make NaN weights"
            )
        with np.errstate(invalid="ignore", divide="ignore"):
            return (gamma / np.sqrt(denominator)).astype(np.float32)

    def _convolution(
        self,
        x: Tensor,
        name: str,
        weight: np.ndarray | ChannelScaled,
        bias: np.ndarray | None,
        kernel: tuple[int, int],
        stride: IntOr2,
        padding: IntOr2,
        dilation: IntOr2,
        groups: int,
        sources: dict[str, list[str] | None],
        owned: bool = False,
    ) -> Tensor:
        """int8: the input and the kernel go through Q/DQ; the kernel is then a constant read as input 1
        (the layer's kernel Weights stay empty), as TensorRT requires for quantized weights."""
        w_name, b_name = f"{name}.weight", f"{name}.bias"
        x = self._quantize_input(x, name)
        kernel_tensor = None
        if self.quantized:
            weight = weight.compute() if isinstance(weight, ChannelScaled) else weight  # its values set the scales
            kernel_tensor = self._constant(w_name, weight, sources=sources[w_name])
            kernel_tensor = self._quantize_weight(kernel_tensor, name, weight, axis=0)
            w_trt = self._weights(w_name, None)
        else:
            w_trt = self._weights(w_name, weight, sources=sources[w_name], owned=owned)
        b_trt = self._weights(b_name, bias, sources=sources[b_name], owned=owned)
        layer = self.trt_network.add_convolution_nd(x, weight.shape[0], kernel, w_trt, b_trt)
        if kernel_tensor is not None:
            layer.set_input(1, kernel_tensor)
        layer.stride_nd = _pair(stride, "stride")
        layer.padding_nd = _pair(padding, "padding")
        layer.dilation_nd = _pair(dilation, "dilation")
        layer.num_groups = groups
        return self._named(layer, "conv", name).get_output(0)

    def batch_norm(self, x: Tensor, name: str, eps: float = 1e-5) -> Tensor:
        """Inference BatchNorm over axis 1: ``y = (x - mean) / sqrt(var + eps) * weight + bias``.

        Emitted as one per-channel scale layer ``y = x * scale + shift`` whose weights are named
        ``{name}.scale`` and ``{name}.shift`` (derived from the four checkpoint entries).
        """
        channels = self._static_dim(x, 1, name, "channels")
        gamma, beta, mean, var = (
            self._param(f"{name}.{p}", (channels,)) for p in ("weight", "bias", "running_mean", "running_var")
        )
        scale = self._batch_norm_scale(name, gamma, var, eps)
        shift = (beta - mean * scale).astype(np.float32)
        keys = [self.names.qualified(f"{name}.{p}") for p in ("weight", "bias", "running_mean", "running_var")]
        scale_w = self._weights(f"{name}.scale", scale, sources=keys, owned=True)
        shift_w = self._weights(f"{name}.shift", shift, sources=keys, owned=True)
        layer = self.trt_network.add_scale_nd(
            x, trt.ScaleMode.CHANNEL, shift_w, scale_w, self._weights(f"{name}.power", None), 1
        )
        return self._named(layer, "batch_norm", name).get_output(0)

    # ------------------------------------------------------------------ pooling

    def max_pool2d(
        self,
        x: Tensor,
        kernel_size: IntOr2,
        stride: IntOr2 | None = None,
        padding: IntOr2 = 0,
        *,
        ceil_mode: bool = False,
        name: str | None = None,
    ) -> Tensor:
        """Max pooling; ``stride`` defaults to ``kernel_size`` as in PyTorch (TensorRT's default is 1)."""
        return self._pool(trt.PoolingType.MAX, x, kernel_size, stride, padding, ceil_mode, True, "max_pool", name)

    def avg_pool2d(
        self,
        x: Tensor,
        kernel_size: IntOr2,
        stride: IntOr2 | None = None,
        padding: IntOr2 = 0,
        *,
        ceil_mode: bool = False,
        count_include_pad: bool = True,
        name: str | None = None,
    ) -> Tensor:
        """Average pooling; ``stride`` defaults to ``kernel_size``; padding counts unless told otherwise."""
        return self._pool(
            trt.PoolingType.AVERAGE, x, kernel_size, stride, padding, ceil_mode, count_include_pad, "avg_pool", name
        )

    def _pool(self, kind, x, kernel_size, stride, padding, ceil_mode, count_include_pad, default_name, name):
        kernel = _pair(kernel_size, "kernel_size")
        strides = _pair(stride if stride is not None else kernel, "stride")
        pads = _pair(padding, "padding")
        layer = self.trt_network.add_pooling_nd(x, kind, kernel)
        layer.stride_nd = strides
        layer.padding_nd = pads
        if kind == trt.PoolingType.AVERAGE:
            layer.average_count_excludes_padding = not count_include_pad
        if ceil_mode:
            what = self.names.qualified(self.names.local(default_name, name))
            self._ceil_mode(layer, self.shape_of(x)[-2:], kernel, strides, pads, kind, count_include_pad, what)
        return self._named(layer, default_name, name).get_output(0)

    @staticmethod
    def _ceil_mode(layer, size, kernel, stride, padding, kind, count_include_pad, what) -> None:
        """PyTorch's ``ceil_mode``: ``O = ceil((I + 2P - K) / S) + 1``, less one where the last window
        would start in the right padding. TensorRT's EXPLICIT_ROUND_UP lacks that exception; where it
        applies, the same windows come from rounding down plus, on the other axis, explicit post-padding.
        """
        axes = list(zip(size, kernel, stride, padding, strict=True))
        up = [-(-(i + 2 * p - k) // s) + 1 for i, k, s, p in axes]
        torch_out = [o - 1 if (o - 1) * s >= i + p else o for o, (i, _, s, p) in zip(up, axes, strict=True)]
        if any(i < 0 for i in size) or up == torch_out:  # (a dynamic size gets TensorRT's rounding up)
            layer.padding_mode = trt.PaddingMode.EXPLICIT_ROUND_UP
            return
        extra = [max(0, (o - 1) * s + k - (i + 2 * p)) for o, (i, k, s, p) in zip(torch_out, axes, strict=True)]
        if not any(extra):
            return  # rounding down gives PyTorch's windows exactly
        if kind == trt.PoolingType.AVERAGE and count_include_pad and any(padding):
            raise NetworkDefinitionError(
                f"layer {what!r}: ceil_mode average pooling of a {size[0]}x{size[1]} input with padding {padding} "
                "counted in the average has no TensorRT equivalent; use count_include_pad=False or padding 0"
            )
        layer.pre_padding = padding
        layer.post_padding = tuple(p + e for p, e in zip(padding, extra, strict=True))
        if kind == trt.PoolingType.AVERAGE:
            layer.average_count_excludes_padding = True  # PyTorch never counts the ceil_mode overhang

    def adaptive_avg_pool2d(self, x: Tensor, output_size: IntOr2 = 1, *, name: str | None = None) -> Tensor:
        """Average over each of ``output_size`` spatial bins, as ``torch.nn.AdaptiveAvgPool2d``.

        Divisible input: one average pooling. Otherwise PyTorch's overlapping bins (bin ``i`` of
        ``m`` over ``n`` spans ``floor(i*n/m)`` to ``ceil((i+1)*n/m)``, e.g. 1x1 -> 7x7 replicates) as
        two matrix multiplies with constant averaging matrices: ``y = A_h @ x @ A_w.T``.
        """
        out_h, out_w = _pair(output_size, "output_size")
        base = self.names.local("avgpool", name)
        if (out_h, out_w) == (1, 1):
            return self.mean(x, (2, 3), keepdim=True, name=base)
        h = self._static_dim(x, 2, base, "height")
        w = self._static_dim(x, 3, base, "width")
        if h % out_h or w % out_w:
            a_h = self._pool_matrix(h, out_h, f"{base}.rows")
            a_w = self._pool_matrix(w, out_w, f"{base}.columns")
            y = self.matmul(x, a_w, transpose_b=True, name=f"{base}.width")
            return self.matmul(a_h, y, name=base)
        return self.avg_pool2d(x, (h // out_h, w // out_w), name=base)

    def _pool_matrix(self, size: int, bins: int, name: str) -> Tensor:
        """A constant ``(1, 1, bins, size)`` averaging matrix with PyTorch's adaptive bins (not a weight)."""
        matrix = np.zeros((1, 1, bins, size), dtype=self.precision.numpy)
        for i in range(bins):
            lo, hi = (i * size) // bins, -(-(i + 1) * size // bins)
            matrix[0, 0, i, lo:hi] = 1.0 / (hi - lo)
        return self._constant(name, matrix, role="fixed")

    # ------------------------------------------------------------------ matrix multiply

    def linear(self, x: Tensor, name: str, out_features: int | None = None, *, bias: bool = True) -> Tensor:
        """``y = x @ W.T + b`` over the last axis, reading ``{name}.weight`` (``out, in``) and ``{name}.bias``.

        A matrix multiply with a constant plus a bias add (``add_fully_connected`` is gone since
        TensorRT 10). ``out_features`` defaults to the checkpoint's.
        """
        rank = len(self.shape_of(x))
        in_features = self._static_dim(x, rank - 1, name, "input features")
        if out_features is None:
            ckpt_shape = self.checkpoint_shape(f"{name}.weight")
            if ckpt_shape is None or len(ckpt_shape) != 2:
                raise NetworkDefinitionError(
                    f"layer {self.names.qualified(name)!r}: give out_features, or a checkpoint with a 2-D "
                    f"{self.names.qualified(name + '.weight')!r} (found {ckpt_shape})"
                )
            out_features = ckpt_shape[0]
        weight = self._param(f"{name}.weight", (out_features, in_features))
        w = self._constant(f"{name}.weight", weight.reshape((1,) * (rank - 2) + weight.shape))
        x = self._quantize_input(x, name)  # int8: Q/DQ on both operands, the weight per output row
        w = self._quantize_weight(w, name, weight, axis=rank - 2)
        layer = self.trt_network.add_matrix_multiply(x, trt.MatrixOperation.NONE, w, trt.MatrixOperation.TRANSPOSE)
        y = self._named(layer, "linear", name).get_output(0)
        if not bias:
            return y
        b = self._param(f"{name}.bias", (out_features,))
        b_tensor = self._constant(f"{name}.bias", b.reshape((1,) * (rank - 1) + (out_features,)))
        add = self.trt_network.add_elementwise(y, b_tensor, trt.ElementWiseOperation.SUM)
        return self._named(add, "bias_add", f"{name}.bias_add").get_output(0)

    def matmul(
        self, a: Tensor, b: Tensor, *, transpose_a: bool = False, transpose_b: bool = False, name: str | None = None
    ) -> Tensor:
        """Batched matrix product over the last two axes (leading axes broadcast)."""
        a, b = self._same_rank(a, b)
        op_a = trt.MatrixOperation.TRANSPOSE if transpose_a else trt.MatrixOperation.NONE
        op_b = trt.MatrixOperation.TRANSPOSE if transpose_b else trt.MatrixOperation.NONE
        return self._named(self.trt_network.add_matrix_multiply(a, op_a, b, op_b), "matmul", name).get_output(0)

    # ------------------------------------------------------------------ activations

    def _activation(
        self,
        x: Tensor,
        kind: Any,
        default_name: str,
        name: str | None,
        alpha: float | None = None,
        beta: float | None = None,
    ) -> Tensor:
        layer = self.trt_network.add_activation(x, kind)
        if alpha is not None:
            layer.alpha = alpha
        if beta is not None:
            layer.beta = beta
        return self._named(layer, default_name, name).get_output(0)

    def relu(self, x: Tensor, *, name: str | None = None) -> Tensor:
        """``max(x, 0)``."""
        return self._activation(x, trt.ActivationType.RELU, "relu", name)

    def relu6(self, x: Tensor, *, name: str | None = None) -> Tensor:
        """``min(max(x, 0), 6)`` (a CLIP activation)."""
        return self._activation(x, trt.ActivationType.CLIP, "relu6", name, alpha=0.0, beta=6.0)

    def leaky_relu(self, x: Tensor, negative_slope: float = 0.01, *, name: str | None = None) -> Tensor:
        """``x if x >= 0 else negative_slope * x``."""
        return self._activation(x, trt.ActivationType.LEAKY_RELU, "leaky_relu", name, alpha=negative_slope)

    def sigmoid(self, x: Tensor, *, name: str | None = None) -> Tensor:
        """``1 / (1 + exp(-x))``."""
        return self._activation(x, trt.ActivationType.SIGMOID, "sigmoid", name)

    def tanh(self, x: Tensor, *, name: str | None = None) -> Tensor:
        """``tanh(x)``."""
        return self._activation(x, trt.ActivationType.TANH, "tanh", name)

    def gelu(self, x: Tensor, approximate: str = "none", *, name: str | None = None) -> Tensor:
        """``x * Phi(x)`` (erf form), or its tanh approximation with ``approximate="tanh"``."""
        kind = trt.ActivationType.GELU_TANH if approximate == "tanh" else trt.ActivationType.GELU_ERF
        return self._activation(x, kind, "gelu", name)

    def silu(self, x: Tensor, *, name: str | None = None) -> Tensor:
        """``x * sigmoid(x)``."""
        base = self.names.local("silu", name)
        return self.mul(x, self.sigmoid(x, name=f"{base}.sigmoid"), name=base)

    def hardswish(self, x: Tensor, *, name: str | None = None) -> Tensor:
        """``x * clip(x / 6 + 1/2, 0, 1)`` (a HARD_SIGMOID activation times x)."""
        base = self.names.local("hardswish", name)
        gate = self._activation(x, trt.ActivationType.HARD_SIGMOID, "hardsigmoid", f"{base}.gate", 1 / 6, 0.5)
        return self.mul(x, gate, name=base)

    def softmax(self, x: Tensor, dim: int = -1, *, name: str | None = None) -> Tensor:
        """``exp(x) / sum(exp(x))`` along ``dim`` (TensorRT's default axis is not the last one; ours is)."""
        rank = len(self.shape_of(x))
        layer = self.trt_network.add_softmax(x)
        layer.axes = 1 << self._dim(dim, rank, "softmax")
        return self._named(layer, "softmax", name).get_output(0)

    # ------------------------------------------------------------------ element-wise

    def _elementwise(self, a: Tensor, b: Tensor, op: Any, default_name: str, name: str | None) -> Tensor:
        a, b = self._same_rank(a, b)
        sa, sb = self.shape_of(a), self.shape_of(b)
        for da, db in zip(sa, sb, strict=True):
            if da != db and da != 1 and db != 1 and da != -1 and db != -1:
                raise NetworkDefinitionError(
                    f"layer {self.names.qualified(name or default_name)!r}: shapes {sa} and {sb} do not broadcast"
                )
        return self._named(self.trt_network.add_elementwise(a, b, op), default_name, name).get_output(0)

    def add(self, a: Tensor, b: Tensor, *, name: str | None = None) -> Tensor:
        """``a + b`` with NumPy broadcasting."""
        return self._elementwise(a, b, trt.ElementWiseOperation.SUM, "add", name)

    def sub(self, a: Tensor, b: Tensor, *, name: str | None = None) -> Tensor:
        """``a - b`` with NumPy broadcasting."""
        return self._elementwise(a, b, trt.ElementWiseOperation.SUB, "sub", name)

    def mul(self, a: Tensor, b: Tensor, *, name: str | None = None) -> Tensor:
        """``a * b`` with NumPy broadcasting."""
        return self._elementwise(a, b, trt.ElementWiseOperation.PROD, "mul", name)

    def scalar(self, value: float, like: Tensor, *, name: str | None = None) -> Tensor:
        """A constant ``value`` with ``like``'s rank and dtype (all dimensions 1), for element-wise use."""
        rank = len(self.shape_of(like))
        return self._constant(name, np.full((1,) * rank, value, dtype=np.float32), role="fixed", kind="scalar")

    # ------------------------------------------------------------------ shape

    def flatten(self, x: Tensor, start_dim: int = 1, *, name: str | None = None) -> Tensor:
        """Merge axes ``start_dim..`` into one (``torch.flatten``); earlier axes, batch too, are kept."""
        rank = len(self.shape_of(x))
        start = self._dim(start_dim, rank, "flatten")
        return self.reshape(x, (0,) * start + (-1,), name=self.names.local("flatten", name))

    def reshape(self, x: Tensor, shape: Sequence[int], *, name: str | None = None) -> Tensor:
        """Reshape; ``0`` copies the input's dimension at that position, ``-1`` is inferred."""
        layer = self.trt_network.add_shuffle(x)
        layer.reshape_dims = tuple(int(d) for d in shape)
        layer.zero_is_placeholder = True
        return self._named(layer, "reshape", name).get_output(0)

    def permute(self, x: Tensor, dims: Sequence[int], *, name: str | None = None) -> Tensor:
        """Reorder axes: output axis ``i`` is input axis ``dims[i]``."""
        layer = self.trt_network.add_shuffle(x)
        layer.first_transpose = tuple(int(d) for d in dims)
        return self._named(layer, "permute", name).get_output(0)

    def concat(self, tensors: Sequence[Tensor], dim: int = 1, *, name: str | None = None) -> Tensor:
        """Concatenate along ``dim`` (``torch.cat``; TensorRT's default axis depends on rank, ours is explicit)."""
        rank = len(self.shape_of(tensors[0]))
        layer = self.trt_network.add_concatenation(list(tensors))
        layer.axis = self._dim(dim, rank, "concat")
        return self._named(layer, "concat", name).get_output(0)

    def mean(self, x: Tensor, dim: int | Sequence[int], keepdim: bool = False, *, name: str | None = None) -> Tensor:
        """Mean over ``dim`` (an int or several, as ``torch.mean``)."""
        rank = len(self.shape_of(x))
        dims = (dim,) if isinstance(dim, int) else tuple(dim)
        mask = sum(1 << self._dim(d, rank, "mean") for d in dims)
        layer = self.trt_network.add_reduce(x, trt.ReduceOperation.AVG, mask, keepdim)
        return self._named(layer, "mean", name).get_output(0)

    # ------------------------------------------------------------------ helpers

    def _static_dim(self, x: Tensor, dim: int, layer: str, what: str) -> int:
        """The size of dimension ``dim`` of ``x``, which must be known when the network is defined."""
        shape = self.shape_of(x)
        if dim >= len(shape) or shape[dim] < 0:
            raise NetworkDefinitionError(
                f"layer {self.names.qualified(layer)!r}: needs a static {what} at axis {dim}, input shape is {shape}"
            )
        return shape[dim]

    @staticmethod
    def _dim(dim: int, rank: int, what: str) -> int:
        """``dim`` (negative counts from the end) as an index into a rank-``rank`` shape."""
        if not -rank <= dim < rank:
            raise NetworkDefinitionError(f"{what}: axis {dim} is out of range for a rank-{rank} tensor")
        return dim % rank

    def _same_rank(self, a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
        """Prepend 1-sized axes to the lower-rank operand (TensorRT needs equal ranks)."""
        ra, rb = len(self.shape_of(a)), len(self.shape_of(b))
        if ra < rb:
            a = self.reshape(a, (1,) * (rb - ra) + tuple(self.shape_of(a)), name=None)
        elif rb < ra:
            b = self.reshape(b, (1,) * (ra - rb) + tuple(self.shape_of(b)), name=None)
        return a, b


def num_parameters(network: NetworkCore) -> int:
    """The number of values in the network's refittable weights."""
    return sum(int(math.prod(a.shape)) for a in network.weights.values())

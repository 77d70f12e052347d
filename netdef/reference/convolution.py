"""Convolution and deconvolution (transposed convolution), N-D, grouped, dilated."""

from __future__ import annotations

import math

import numpy as np
from numpy.lib.stride_tricks import as_strided

from netdef.reference import costs
from netdef.reference.dtypes import FLOAT32, compute
from netdef.reference.registry import register
from netdef.reference.windows import deconv_window, forward_window, pad, strided_slices

_PARAMS = (
    "num_output_maps",
    "kernel_size_nd",
    "stride_nd",
    "dilation_nd",
    "pre_padding",
    "post_padding",
    "padding_mode",
    "num_groups",
)


def _kernel_and_bias(node, inputs, kernel_shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray | None]:
    """Kernel and bias from the layer's weights, or from input tensors 1 and 2 when those are set."""
    if len(inputs) > 1 and inputs[1] is not None:
        kernel = compute(inputs[1]).reshape(kernel_shape)
    else:
        stored = node.weights("kernel")
        kernel = node.memo(f"kernel{kernel_shape}", lambda: compute(stored).reshape(kernel_shape))
    if len(inputs) > 2 and inputs[2] is not None:
        bias = compute(inputs[2]).reshape(-1)
    else:
        bias = node.memo("bias", lambda: compute(node.weights("bias")).reshape(-1))
    return kernel, (bias if bias.size else None)


def _geometry(node, spatial: int):
    kernel = node.dims("kernel_size_nd")
    stride = node.dims("stride_nd") or (1,) * spatial
    dilation = node.dims("dilation_nd") or (1,) * spatial
    pre = node.dims("pre_padding") or (0,) * spatial
    post = node.dims("post_padding") or (0,) * spatial
    return kernel, stride, dilation, pre, post, node.attr("padding_mode")


def _detail(layer) -> str:
    text = costs.window_text(layer, layer.kernel_size_nd)
    if any(int(d) != 1 for d in layer.dilation_nd):
        text += f" dil {costs.same_text(layer.dilation_nd)}"
    if layer.num_groups != 1:
        text += f" groups {layer.num_groups}"
    return text + f", {layer.num_output_maps} maps"


def _convolution_flops(layer) -> int | None:
    """2 * Cin/groups * kernel area per output element (the bias add is not counted)."""
    inp, out = costs.input_shape(layer), costs.numel(costs.output_shape(layer))
    if inp is None or out is None:
        return None
    return 2 * out * (max(inp[1], 1) // layer.num_groups) * math.prod(int(d) for d in layer.kernel_size_nd)


def _deconvolution_flops(layer) -> int | None:
    """2 * Cout/groups * kernel area per input element."""
    inp = costs.numel(costs.input_shape(layer))
    if inp is None:
        return None
    return 2 * inp * (layer.num_output_maps // layer.num_groups) * math.prod(int(d) for d in layer.kernel_size_nd)


_WEIGHTS = costs.weight_count("kernel", "bias")


@register(
    "CONVOLUTION",
    "IConvolutionLayer",
    _PARAMS,
    family="convolution",
    flops=_convolution_flops,
    detail=_detail,
    weights=_WEIGHTS,
)
def convolution(node, inputs):
    """Grouped dilated N-D cross-correlation plus bias: y[n,k,o] = b[k] + sum_{c,f} W[k,c,f] x[n,gC'+c,oS+fD].

    Input x: [N, C, *I]; kernel W: [K, C/G, *F] (K = num_output_maps, G = num_groups, group
    g = k // (K/G)); bias b: [K] or empty. x is zero-padded by pre_padding B and post_padding A,
    or as ``padding_mode`` dictates (see PaddingMode). Output [N, K, *O] with, per spatial axis,
    O = floor((I + B + A - DK) / S) + 1 (EXPLICIT_ROUND_DOWN), DK = 1 + D * (F - 1).
    Kernel and bias may come from input tensors 1 and 2 instead of weights. float16/bfloat16
    inputs are accumulated in float32 and the result rounded to the output type.
    """
    x = compute(inputs[0])
    groups = int(node.attr("num_groups"))
    maps = int(node.attr("num_output_maps"))
    spatial = x.ndim - 2
    kernel_size, stride, dilation, pre, post, mode = _geometry(node, spatial)
    weights, bias = _kernel_and_bias(node, inputs, (maps, x.shape[1] // groups) + tuple(kernel_size))
    dilated = [1 + dilation[i] * (kernel_size[i] - 1) for i in range(spatial)]
    axes = [forward_window(mode, x.shape[2 + i], dilated[i], stride[i], pre[i], post[i]) for i in range(spatial)]
    padded = pad(x, [a.pre for a in axes], [a.post + a.extra for a in axes])
    out = correlate(padded, weights, tuple(stride), tuple(dilation), tuple(a.out for a in axes), groups)
    if bias is not None:
        out += bias.reshape((1, -1) + (1,) * spatial)
    return out


def correlate(x: np.ndarray, w: np.ndarray, stride, dilation, out_shape, groups: int) -> np.ndarray:
    """Valid grouped cross-correlation of padded x [N, C, *P] with w [K, C/G, *F] -> [N, K, *out_shape]."""
    n, channels = x.shape[:2]
    maps, group_channels = w.shape[:2]
    window = w.shape[2:]
    group_maps = maps // groups
    if group_channels == 1 and groups > 1:
        return _depthwise(x, w, stride, dilation, out_shape, groups)
    x = np.ascontiguousarray(x, dtype=FLOAT32)
    positions = math.prod(out_shape)
    unit = all(f == 1 for f in window) and all(s == 1 for s in stride)
    if unit and tuple(x.shape[2:]) == tuple(out_shape):
        cols = x.reshape(n, groups, group_channels, positions)
    else:
        spatial_strides = x.strides[2:]
        view = as_strided(
            x,
            shape=(n, groups, group_channels) + tuple(window) + tuple(out_shape),
            strides=(x.strides[0], x.strides[1] * group_channels, x.strides[1])
            + tuple(st * d for st, d in zip(spatial_strides, dilation, strict=True))
            + tuple(st * s for st, s in zip(spatial_strides, stride, strict=True)),
            writeable=False,
        )
        cols = view.reshape(n, groups, group_channels * math.prod(window), positions)
    w_mat = np.ascontiguousarray(w, dtype=FLOAT32).reshape(groups, group_maps, -1)
    return np.matmul(w_mat, cols).reshape((n, maps) + tuple(out_shape))


def _depthwise(x, w, stride, dilation, out_shape, groups):
    """Depthwise path (one input channel per group): one multiply-add per window offset."""
    n = x.shape[0]
    maps = w.shape[0]
    multiplier = maps // groups
    spatial = len(out_shape)
    acc = np.zeros((n, groups, multiplier) + tuple(out_shape), FLOAT32)
    taps = w.reshape((groups, multiplier) + tuple(w.shape[2:]))
    for offset, view in strided_slices(x, tuple(w.shape[2:]), stride, dilation, out_shape):
        tap = taps[(slice(None), slice(None)) + offset].reshape((1, groups, multiplier) + (1,) * spatial)
        acc += view[:, :, None] * tap
    return acc.reshape((n, maps) + tuple(out_shape))


@register(
    "DECONVOLUTION",
    "IDeconvolutionLayer",
    _PARAMS,
    family="convolution",
    flops=_deconvolution_flops,
    detail=_detail,
    weights=_WEIGHTS,
)
def deconvolution(node, inputs):
    """Grouped dilated N-D transposed convolution plus bias: x[n,c,i] adds x * W[c,k,f] to y[n,k,iS+fD-B].

    Input x: [N, C, *I]; kernel W: [C, K/G, *F] (the PyTorch ConvTranspose layout); bias b: [K] or
    empty. The full output, of length (I - 1) * S + DK per axis (DK = 1 + D * (F - 1)), is cropped
    by pre_padding B at the start and post_padding A at the end: O = (I - 1) * S + DK - B - A
    (SAME modes: P = max(DK - S, 0) split as in convolution). Kernel and bias may come from input
    tensors 1 and 2. float16/bfloat16 accumulate in float32.
    """
    x = compute(inputs[0])
    groups = int(node.attr("num_groups"))
    maps = int(node.attr("num_output_maps"))
    n, channels = x.shape[:2]
    spatial = x.ndim - 2
    kernel_size, stride, dilation, pre, post, mode = _geometry(node, spatial)
    kernel_size = tuple(kernel_size)
    weights, bias = _kernel_and_bias(node, inputs, (channels, maps // groups) + kernel_size)
    group_channels, group_maps = channels // groups, maps // groups
    taps = math.prod(kernel_size)
    w_t = weights.reshape(groups, group_channels, group_maps * taps).transpose(0, 2, 1)
    cols = np.matmul(w_t, np.ascontiguousarray(x).reshape(n, groups, group_channels, -1))
    cols = cols.reshape((n, maps) + kernel_size + tuple(x.shape[2:]))
    dilated = [1 + dilation[i] * (kernel_size[i] - 1) for i in range(spatial)]
    full_shape = tuple((x.shape[2 + i] - 1) * stride[i] + dilated[i] for i in range(spatial))
    full = np.zeros((n, maps) + full_shape, FLOAT32)
    lead = (slice(None), slice(None))
    for offset in np.ndindex(*kernel_size):
        target = tuple(
            slice(f * d, f * d + (size - 1) * s + 1, s)
            for f, d, size, s in zip(offset, dilation, x.shape[2:], stride, strict=True)
        )
        full[lead + target] += cols[lead + offset]
    axes = [deconv_window(mode, x.shape[2 + i], dilated[i], stride[i], pre[i], post[i]) for i in range(spatial)]
    out = pad(full, [-a.pre for a in axes], [-a.post for a in axes])
    if bias is not None:
        out = out + bias.reshape((1, -1) + (1,) * spatial)
    return np.ascontiguousarray(out)

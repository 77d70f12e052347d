"""Pooling against torch.nn.functional and against a per-window loop written from TensorRT's documentation."""

from __future__ import annotations

import itertools
import math

import numpy as np
import torch.nn.functional as F
from hypothesis import assume, given
from hypothesis import strategies as st
from refhelpers import SETTINGS, Net, close, rand, t

from netdef.backend import trt


def _add_pool(net, x, kind, window, stride, pre, post, excludes=True, mode=None, blend=None):
    layer = net.network.add_pooling_nd(x, kind, window)
    layer.stride_nd = stride
    layer.pre_padding = pre
    layer.post_padding = post
    layer.average_count_excludes_padding = excludes
    if mode is not None:
        layer.padding_mode = mode
    if blend is not None:
        layer.blend_factor = blend
    return layer


@SETTINGS
@given(
    st.sampled_from(["MAX", "AVERAGE"]),
    st.integers(1, 4),
    st.integers(1, 4),
    st.integers(1, 3),
    st.integers(1, 3),
    st.booleans(),
    st.integers(0, 2**31),
    st.data(),
)
def test_pooling_matches_torch(kind, kh, kw, sh, sw, excludes, seed, data):
    ph = data.draw(st.integers(0, kh // 2))
    pw = data.draw(st.integers(0, kw // 2))
    rng = np.random.default_rng(seed)
    x = rand(rng, 2, 3, data.draw(st.integers(kh, kh + 6)), data.draw(st.integers(kw, kw + 6)))
    net = Net()
    layer = _add_pool(
        net,
        net.input("x", x),
        getattr(trt.PoolingType, kind),
        (kh, kw),
        (sh, sw),
        (ph, pw),
        (ph, pw),
        excludes,
    )
    got = net.compute(layer)
    if kind == "MAX":
        expected = F.max_pool2d(t(x), (kh, kw), (sh, sw), (ph, pw))
    else:
        expected = F.avg_pool2d(t(x), (kh, kw), (sh, sw), (ph, pw), count_include_pad=not excludes)
    close(got, expected)


def _documented_pooling(x, kind, window, stride, pre, post, mode, excludes, blend):
    """Pool by looping over output positions, following IPoolingLayer and PaddingMode documentation."""
    sizes = x.shape[2:]
    before, after, outs = [], [], []
    for size, f, s, b, a in zip(sizes, window, stride, pre, post, strict=True):
        if mode in ("SAME_UPPER", "SAME_LOWER"):
            out = math.ceil(size / s)
            total = max((size - 1) // s * s + f - size, 0)
            b, a = (total // 2, total - total // 2) if mode == "SAME_UPPER" else (total - total // 2, total // 2)
        elif mode == "EXPLICIT_ROUND_UP":
            out = math.ceil((size + b + a - f) / s) + 1
        else:
            out = (size + b + a - f) // s + 1
        before.append(b)
        after.append(a)
        outs.append(out)
    result = np.zeros(x.shape[:2] + tuple(outs), np.float64)
    for position in itertools.product(*(range(o) for o in outs)):
        starts = [p * s - b for p, s, b in zip(position, stride, before, strict=True)]
        inside = tuple(slice(max(st_, 0), min(st_ + f, n)) for st_, f, n in zip(starts, window, sizes, strict=True))
        values = x[(slice(None), slice(None)) + inside].reshape(x.shape[0], x.shape[1], -1).astype(np.float64)
        maximum = values.max(axis=-1)
        if excludes:
            count = values.shape[-1]
        else:
            count = math.prod(
                min(st_ + f, n + a) - max(st_, -b)
                for st_, f, n, b, a in zip(starts, window, sizes, before, after, strict=True)
            )
        average = values.sum(axis=-1) / count
        index = (slice(None), slice(None)) + position
        if kind == "MAX":
            result[index] = maximum
        elif kind == "AVERAGE":
            result[index] = average
        else:
            result[index] = (1 - blend) * maximum + blend * average
    return result


@SETTINGS
@given(
    st.sampled_from(["MAX", "AVERAGE", "MAX_AVERAGE_BLEND"]),
    st.sampled_from(["EXPLICIT_ROUND_DOWN", "EXPLICIT_ROUND_UP", "SAME_UPPER", "SAME_LOWER"]),
    st.lists(st.integers(1, 4), min_size=2, max_size=2),
    st.lists(st.integers(1, 3), min_size=2, max_size=2),
    st.booleans(),
    st.floats(0, 1, width=32),
    st.integers(0, 2**31),
    st.data(),
)
def test_pooling_padding_modes_and_asymmetric_padding(kind, mode, window, stride, excludes, blend, seed, data):
    pre = [data.draw(st.integers(0, f - 1)) for f in window]
    post = [data.draw(st.integers(0, f - 1)) for f in window]
    sizes = [data.draw(st.integers(f, f + 5)) for f in window]
    if mode == "EXPLICIT_ROUND_UP":  # TensorRT rejects a last window lying wholly in the padding
        for size, f, s, b, a in zip(sizes, window, stride, pre, post, strict=True):
            out = math.ceil((size + b + a - f) / s) + 1
            assume((out - 1) * s + f - size - b < f)
    x = rand(np.random.default_rng(seed), 2, 2, *sizes)
    net = Net()
    layer = _add_pool(
        net,
        net.input("x", x),
        getattr(trt.PoolingType, kind),
        tuple(window),
        tuple(stride),
        tuple(pre),
        tuple(post),
        excludes,
        getattr(trt.PaddingMode, mode),
        blend,
    )
    got = net.compute(layer)
    close(got, _documented_pooling(x, kind, window, stride, pre, post, mode, excludes, blend), 1e-5, 1e-5)


@SETTINGS
@given(st.sampled_from(["MAX", "AVERAGE"]), st.integers(1, 3), st.integers(1, 2), st.integers(0, 2**31))
def test_pooling_3d_matches_torch(kind, window, stride, seed):
    x = rand(np.random.default_rng(seed), 1, 2, 5, 6, 4)
    net = Net()
    layer = _add_pool(
        net,
        net.input("x", x),
        getattr(trt.PoolingType, kind),
        (window,) * 3,
        (stride,) * 3,
        (0, 0, 0),
        (0, 0, 0),
    )
    got = net.compute(layer)
    pool = F.max_pool3d if kind == "MAX" else F.avg_pool3d
    close(got, pool(t(x), window, stride))


def test_global_average_pooling_uses_window_view_path():
    x = rand(np.random.default_rng(1), 2, 5, 12, 11)
    net = Net()
    layer = _add_pool(net, net.input("x", x), trt.PoolingType.AVERAGE, (12, 11), (1, 1), (0, 0), (0, 0))
    close(net.compute(layer), x.mean(axis=(2, 3), keepdims=True))

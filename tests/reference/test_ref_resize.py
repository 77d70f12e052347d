"""Resize (nearest, linear, cubic; coordinate transformations; output shape or scales) against torch."""

from __future__ import annotations

import numpy as np
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st
from refhelpers import SETTINGS, Net, close, rand, t

from netdef.backend import trt

# torch mode -> (InterpolationMode, coordinate transformation, nearest rounding)
TORCH_EQUIVALENT = {
    ("nearest", None): ("NEAREST", "ASYMMETRIC", "FLOOR"),
    ("bilinear", False): ("LINEAR", "HALF_PIXEL", None),
    ("bilinear", True): ("LINEAR", "ALIGN_CORNERS", None),
    ("bicubic", False): ("CUBIC", "HALF_PIXEL", None),
    ("bicubic", True): ("CUBIC", "ALIGN_CORNERS", None),
}


def _add_resize(net, x, mode, transform, rounding):
    layer = net.network.add_resize(x)
    layer.resize_mode = getattr(trt.InterpolationMode, mode)
    layer.coordinate_transformation = getattr(trt.ResizeCoordinateTransformation, transform)
    if rounding:
        layer.nearest_rounding = getattr(trt.ResizeRoundMode, rounding)
    return layer


@SETTINGS
@given(
    st.sampled_from(sorted(TORCH_EQUIVALENT, key=str)),
    st.integers(1, 9),
    st.integers(1, 9),
    st.integers(0, 2**31),
)
def test_resize_to_output_shape_matches_torch(torch_mode, out_h, out_w, seed):
    x = rand(np.random.default_rng(seed), 2, 3, 5, 4)
    net = Net()
    layer = _add_resize(net, net.input("x", x), *TORCH_EQUIVALENT[torch_mode])
    layer.shape = (2, 3, out_h, out_w)
    if torch_mode[0] == "bicubic":
        layer.cubic_coeff = -0.75
    mode, align = torch_mode
    expected = F.interpolate(t(x), size=(out_h, out_w), mode=mode, align_corners=align)
    close(net.compute(layer), expected, rtol=1e-4, atol=1e-5)


@SETTINGS
@given(
    st.sampled_from([("nearest", None), ("bilinear", False)]),
    st.sampled_from([0.5, 1.5, 2.0, 3.0, 2.5]),
    st.sampled_from([1.0, 2.0, 0.75]),
    st.integers(0, 2**31),
)
def test_resize_by_scales_matches_torch_scale_factor(torch_mode, scale_h, scale_w, seed):
    x = rand(np.random.default_rng(seed), 1, 2, 6, 8)
    net = Net()
    layer = _add_resize(net, net.input("x", x), *TORCH_EQUIVALENT[torch_mode])
    layer.scales = [1.0, 1.0, scale_h, scale_w]
    mode, align = torch_mode
    expected = F.interpolate(
        t(x), scale_factor=(scale_h, scale_w), mode=mode, align_corners=align, recompute_scale_factor=False
    )
    close(net.compute(layer), expected, rtol=1e-4, atol=1e-5)


@SETTINGS
@given(st.sampled_from([2, 3]), st.integers(0, 2**31))
def test_nearest_half_pixel_round_half_up_is_torch_nearest_exact(factor, seed):
    x = rand(np.random.default_rng(seed), 1, 2, 3, 5)
    net = Net()
    layer = _add_resize(net, net.input("x", x), "NEAREST", "HALF_PIXEL", "HALF_UP")
    layer.shape = (1, 2, 3 * factor, 5 * factor)
    expected = F.interpolate(t(x), scale_factor=factor, mode="nearest-exact")
    np.testing.assert_array_equal(net.compute(layer), expected.numpy())


def test_nearest_rounding_modes_pick_documented_neighbours():
    x = np.arange(4, dtype=np.float32).reshape(1, 4)
    results = {}
    for rounding in ("FLOOR", "CEIL", "HALF_UP", "HALF_DOWN"):
        net = Net()
        layer = _add_resize(net, net.input("x", x), "NEAREST", "ASYMMETRIC", rounding)
        layer.shape = (1, 8)  # source coordinates 0, 0.5, 1, ..., 3.5
        results[rounding] = net.compute(layer)[0]
    coords = np.arange(8) * 0.5
    np.testing.assert_array_equal(results["FLOOR"], np.floor(coords))
    np.testing.assert_array_equal(results["CEIL"], np.minimum(np.ceil(coords), 3))
    np.testing.assert_array_equal(results["HALF_UP"], np.minimum(np.floor(coords + 0.5), 3))
    np.testing.assert_array_equal(results["HALF_DOWN"], np.ceil(coords - 0.5).clip(0, 3))


@SETTINGS
@given(st.integers(1, 6), st.integers(1, 6), st.integers(1, 6), st.booleans(), st.integers(0, 2**31))
def test_trilinear_resize_matches_torch(d, h, w, align, seed):
    x = rand(np.random.default_rng(seed), 1, 2, 3, 4, 2)
    net = Net()
    layer = _add_resize(net, net.input("x", x), "LINEAR", "ALIGN_CORNERS" if align else "HALF_PIXEL", None)
    layer.shape = (1, 2, d, h, w)
    expected = F.interpolate(t(x), size=(d, h, w), mode="trilinear", align_corners=align)
    close(net.compute(layer), expected, rtol=1e-4, atol=1e-5)


def test_single_pixel_output_with_upper_selector_takes_first_pixel():
    x = rand(np.random.default_rng(9), 1, 1, 4, 4)
    net = Net()
    layer = _add_resize(net, net.input("x", x), "LINEAR", "HALF_PIXEL", None)
    layer.shape = (1, 1, 1, 1)
    layer.selector_for_single_pixel = trt.ResizeSelector.UPPER
    np.testing.assert_array_equal(net.compute(layer), x[:, :, :1, :1])

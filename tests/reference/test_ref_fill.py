"""The fill layer: LINSPACE vs NumPy from TensorRT's formula; random fills tested for shape, dtype and distribution.

Random fills cannot match TensorRT value by value. They are checked for their distribution instead: a
Kolmogorov-Smirnov test (scipy.stats) against the stated uniform or normal law with the layer's alpha
and beta, on 4096 draws, plus the range, mean and standard deviation.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from refhelpers import FEW, Net
from scipy import stats

from netdef.backend import trt
from netdef.errors import UnsupportedLayerError
from netdef.reference import ReferenceExecutor, run


@FEW
@given(st.data())
def test_linspace_with_dynamic_alpha_and_steps_matches_the_formula(data):
    shape = tuple(data.draw(st.integers(1, 4)) for _ in range(data.draw(st.integers(1, 3))))
    dtype = data.draw(st.sampled_from([np.float32, np.int32, np.int64]))
    alpha = data.draw(st.integers(-5, 5))
    steps = [data.draw(st.integers(-3, 3)) for _ in shape]
    net = Net()
    layer = net.network.add_fill(shape, trt.FillOperation.LINSPACE, {np.float32: trt.float32, np.int32: trt.int32,
                                                                     np.int64: trt.int64}[dtype])  # fmt: skip
    scalar_dtype = np.float32 if dtype == np.float32 else dtype
    layer.set_input(1, net.constant(np.array(alpha, scalar_dtype)))
    layer.set_input(2, net.constant(np.array(steps, scalar_dtype)))
    got = net.compute(layer)
    expected = alpha + sum(np.asarray(s) * np.indices(shape)[k] for k, s in enumerate(steps))
    assert got.dtype == dtype and got.shape == shape
    np.testing.assert_array_equal(got, np.asarray(expected).astype(dtype))


def test_linspace_static_one_axis_and_tensorrt_example():
    net = Net()
    layer = net.network.add_fill((5,), trt.FillOperation.LINSPACE, trt.float32)
    layer.alpha, layer.beta = 1.5, 0.25
    np.testing.assert_allclose(net.compute(layer), 1.5 + 0.25 * np.arange(5))
    # TensorRT's FillOperation documentation: dims [3, 4], alpha 1, beta [100, 10]
    net = Net()
    layer = net.network.add_fill((3, 4), trt.FillOperation.LINSPACE, trt.int32)
    layer.set_input(1, net.constant(np.array(1, np.int32)))
    layer.set_input(2, net.constant(np.array([100, 10], np.int32)))
    np.testing.assert_array_equal(net.compute(layer), [[1, 11, 21, 31], [101, 111, 121, 131], [201, 211, 221, 231]])


def test_linspace_static_beta_on_several_axes_is_refused():
    net = Net()
    layer = net.network.add_fill((2, 3), trt.FillOperation.LINSPACE, trt.float32)
    layer.name = "ramp"
    net.output(layer)
    with pytest.raises(UnsupportedLayerError, match=r"'ramp' \(FILL\).*one step"):
        run(net.network, {})


def test_fill_shape_from_an_input_tensor():
    net = Net()
    layer = net.network.add_fill((0,), trt.FillOperation.RANDOM_UNIFORM, trt.float16)
    layer.set_input(0, net.input("shape", np.array([3, 7], np.int64)))
    out = net.compute(layer)
    assert out.shape == (3, 7) and out.dtype == np.float16


@pytest.mark.parametrize("dtype", [trt.float32, trt.float16])
def test_random_uniform_is_uniform_between_alpha_and_beta(dtype):
    net = Net()
    layer = net.network.add_fill((64, 64), trt.FillOperation.RANDOM_UNIFORM, dtype)
    layer.alpha, layer.beta = -2.0, 3.0
    layer.name = "noise"
    values = net.compute(layer)
    assert values.shape == (64, 64) and values.dtype == (np.float32 if dtype == trt.float32 else np.float16)
    flat = values.astype(np.float64).ravel()
    assert flat.min() >= -2.0 and flat.max() <= 3.0
    assert stats.kstest(flat, stats.uniform(loc=-2.0, scale=5.0).cdf).pvalue > 1e-3
    assert abs(flat.mean() - 0.5) < 0.1


def test_random_normal_has_mean_alpha_and_deviation_beta():
    net = Net()
    layer = net.network.add_fill((4096,), trt.FillOperation.RANDOM_NORMAL, trt.float32)
    layer.set_input(1, net.constant(np.array(10.0, np.float32)))
    layer.set_input(2, net.constant(np.array(0.5, np.float32)))
    flat = net.compute(layer).astype(np.float64)
    assert stats.kstest(flat, stats.norm(loc=10.0, scale=0.5).cdf).pvalue > 1e-3
    assert abs(flat.mean() - 10.0) < 0.05 and abs(flat.std() - 0.5) < 0.05


def test_random_fill_is_repeatable_per_layer_name_and_differs_between_layers():
    net = Net()
    first = net.network.add_fill((100,), trt.FillOperation.RANDOM_UNIFORM, trt.float32)
    second = net.network.add_fill((100,), trt.FillOperation.RANDOM_UNIFORM, trt.float32)
    first.name, second.name = "a", "b"
    net.output(first), net.output(second)
    executor = ReferenceExecutor(net.network)
    one, two = executor.run({}).outputs, executor.run({}).outputs
    a, b = first.get_output(0).name, second.get_output(0).name
    np.testing.assert_array_equal(one[a], two[a])
    assert not np.array_equal(one[a], one[b])

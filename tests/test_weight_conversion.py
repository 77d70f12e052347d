"""The weight table's conversion to the network dtype: the cheap overflow check (range against the
target's largest value) finds exactly the values a narrower float turns into Inf, and nothing else."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from netdef.dtypes import bfloat16
from netdef.errors import CheckpointError
from netdef.network import Network

TARGETS = {"fp16": np.dtype(np.float16), "bf16": bfloat16}


def _exact_overflow(values: np.ndarray, target: np.dtype) -> int:
    """Element by element, the slow way: finite in the source, Inf after the cast."""
    with np.errstate(over="ignore"):
        converted = values.astype(target).astype(np.float64)
    return int(np.count_nonzero(np.isinf(converted) & np.isfinite(values)))


def _overflow_problems(precision: str, values: np.ndarray) -> list[str]:
    net = Network({}, precision=precision)
    stored = net.weight_table.add("w", values).array
    assert stored.dtype == TARGETS[precision] and stored.flags.c_contiguous
    return [p for p in net.problems if "overflow" in p]


@pytest.mark.parametrize(
    ("values", "overflows"),
    [
        ([65504.0, -65504.0, 1.0], 0),  # float16's largest finite value
        ([65519.0, -65519.0], 0),  # rounds down to 65504
        ([65520.0, 1.0, -7e4], 2),  # rounds up to Inf
        ([np.inf, -np.inf, np.nan, 3.0], 0),  # already not finite: not an overflow
        ([np.nan, 1e5], 1),  # NaN must not hide an overflow
        ([], 0),
    ],
)
def test_fp16_overflow_boundaries(values, overflows):
    problems = _overflow_problems("fp16", np.array(values, np.float32))
    assert len(problems) == (1 if overflows else 0)
    if overflows:
        assert f"{overflows} value(s) overflow float16" in problems[0]


def test_bf16_overflow():
    big = np.float32(np.finfo(np.float32).max)
    problems = _overflow_problems("bf16", np.array([big, 1.0, -big], np.float32))
    assert problems and "2 value(s) overflow bfloat16" in problems[0]
    assert not _overflow_problems("bf16", np.array([3e38, -3e38, np.inf], np.float32))


@settings(max_examples=40, deadline=None)
@given(
    st.sampled_from(sorted(TARGETS)),
    st.lists(st.floats(width=32, allow_nan=True, allow_infinity=True), min_size=1, max_size=20),
)
def test_overflow_count_agrees_with_elementwise(precision, values):
    array = np.array(values, np.float32)
    problems = _overflow_problems(precision, array)
    expected = _exact_overflow(array, TARGETS[precision])
    assert len(problems) == (1 if expected else 0)
    if expected:
        assert f"{expected} value(s) overflow" in problems[0]


def test_the_table_copies_what_others_hold_and_keeps_what_was_made_for_it():
    net = Network({}, precision="fp32")
    callers = np.arange(6, dtype=np.float32)
    stored = net.weight_table.add("callers", callers).array
    callers[0] = 99.0  # the caller changing its array later must not change the engine's weights
    assert stored[0] == 0.0 and not np.shares_memory(stored, callers)
    read_only = np.arange(4, dtype=np.float32)
    read_only.flags.writeable = False
    assert not np.shares_memory(net.weight_table.add("view", read_only, owned=True).array, read_only)
    folded = np.arange(6, dtype=np.float32) * np.float32(2)
    assert net.weight_table.add("folded", folded, owned=True).array is folded  # no second copy
    fp16 = Network({}, precision="fp16").weight_table.add("folded", folded, owned=True).array
    assert fp16.dtype == np.float16 and not np.shares_memory(fp16, folded)


def test_large_arrays_are_converted_alongside_and_settle_to_the_same_values_and_problems():
    """A large narrowing conversion runs in a second thread: the values, and an overflow problem, must
    be exactly what the conversion in line gives once the table settles."""
    import netdef.network.table as table_module

    values = np.random.default_rng(0).standard_normal(table_module._CAST_ALONGSIDE + 5).astype(np.float32) * 100
    values[7] = 1e6  # overflows float16
    values.flags.writeable = False  # only arrays nobody can change meanwhile are converted alongside
    net = Network({}, precision="fp16")
    stored = net.weight_table.add("big", values)
    assert net.weight_table._pending  # converting in the second thread
    net.weight_table.settle()
    with np.errstate(over="ignore"):
        np.testing.assert_array_equal(stored.array, values.astype(np.float16))
    assert net.problems == ["weight 'big': 1 value(s) overflow float16 (largest |value| 1e+06)"]
    writable = Network({}, precision="fp16")
    writable.weight_table.add("callers", values.copy())  # the caller may change it: converted in line
    assert not writable.weight_table._pending and len(writable.problems) == 1
    small = Network({}, precision="fp16")
    small.weight_table.add("small", values[:1000])
    assert not small.weight_table._pending and len(small.problems) == 1  # small ones convert in line
    checked = Network({}, precision="fp16")
    x = checked.input("x", (1, values.size))
    checked.output(checked.add(x, checked.constant("big", values[None, :])), "y")
    with pytest.raises(CheckpointError, match="overflow float16"):  # check() waits for the conversion
        checked.check()


@pytest.mark.parametrize("precision", ["fp32", "fp16", "bf16"])
@pytest.mark.parametrize("read_only", [True, False])
def test_a_folded_kernel_is_computed_once_into_the_network_dtype(precision, read_only):
    """conv2d(bn=...) folds BatchNorm into the kernel: the table computes ``w * gamma / sqrt(var + eps)``
    straight into the network's dtype (alongside when the checkpoint's kernel is large and read-only). The
    result must be bit for bit the float32 fold rounded once, and an overflow must be reported either way."""
    import netdef.network.table as table_module

    rng = np.random.default_rng(1)
    channels, per_channel = 256, 3 * 3 * 128  # 294,912 values: above the size converted alongside
    assert channels * per_channel >= table_module._CAST_ALONGSIDE
    kernel = rng.standard_normal((channels, 128, 3, 3)).astype(np.float32)
    kernel[5, 0, 0, 0] = 3e4  # times channel 5's scale of ~4: overflows float16 (but not bfloat16)
    gamma = rng.uniform(0.5, 2, channels).astype(np.float32)
    gamma[5] = 4.0
    var = rng.uniform(0.5, 2, channels).astype(np.float32)
    var[5] = 1.0 - 1e-5
    checkpoint = {
        "conv.weight": kernel,
        "bn.weight": gamma,
        "bn.bias": rng.standard_normal(channels).astype(np.float32),
        "bn.running_mean": rng.standard_normal(channels).astype(np.float32),
        "bn.running_var": var,
    }
    if read_only:
        for array in checkpoint.values():
            array.flags.writeable = False
    net = Network(checkpoint, precision=precision)
    x = net.input("x", (1, 128, 8, 8))
    net.output(net.conv2d(x, "conv", padding=1, bn="bn"), "y")
    assert bool(net.weight_table._pending) == read_only  # a writable kernel is folded in line
    scale = (gamma / np.sqrt(var + np.float32(1e-5))).astype(np.float32)
    folded = kernel * scale[:, None, None, None]
    stored = net.weight_table["conv.weight"].array  # settles
    with np.errstate(over="ignore"):
        np.testing.assert_array_equal(stored, folded.astype(stored.dtype))
    assert stored.dtype == (np.float32 if precision == "fp32" else TARGETS[precision])
    overflow = [p for p in net.problems if "overflow" in p]
    assert overflow == (["weight 'conv.weight': 1 value(s) overflow float16 (largest |value| 120000)"]
                        if precision == "fp16" else [])  # fmt: skip

"""TensorRT data types as NumPy dtypes, and the rounding a tensor of each type undergoes.

Low-precision floating types come from ``ml_dtypes`` (bfloat16, float8_e4m3fn, int4, ...).
Every computing layer works in float32 on float16/bfloat16 inputs (TensorRT accumulates in
fp32) and the executor rounds each output to its declared type, so precision loss shows.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from netdef import dtypes
from netdef.dtypes import DTypeError, is_float, is_integer
from netdef.errors import UnsupportedLayerError

__all__ = [
    "FLOAT32",
    "FP8_MAX",
    "compute",
    "convert",
    "integer_range",
    "is_float",
    "is_integer",
    "numpy_dtype",
    "round_to",
]

FLOAT32 = np.dtype(np.float32)

FP8_MAX = 448.0
"""Largest finite float8 e4m3 value; TensorRT clamps to [-448, 448] when quantizing to FP8."""


def numpy_dtype(dtype) -> np.dtype:
    """The NumPy dtype that holds a tensor of TensorRT ``dtype``."""
    try:
        return dtypes.numpy_dtype(dtype)
    except (DTypeError, ImportError) as exc:
        raise UnsupportedLayerError(f"no NumPy dtype for TensorRT {dtype}: {exc}") from None


def compute(x: np.ndarray) -> np.ndarray:
    """``x`` as TensorRT computes with it: float16/bfloat16/float8 widened to float32, others unchanged."""
    if x.dtype != FLOAT32 and is_float(x.dtype):
        return x.astype(FLOAT32)
    return x


def integer_range(dtype: np.dtype) -> tuple[int, int]:
    dtype = np.dtype(dtype)
    info: Any
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
    else:
        import ml_dtypes  # int4

        info = ml_dtypes.iinfo(dtype)
    return int(info.min), int(info.max)


def round_to(x: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Round a computed float array to a floating ``dtype`` (round to nearest even; overflow gives inf).

    float8 e4m3 has no infinity, so values are first clamped to [-448, 448] (TensorRT saturates).
    """
    dtype = np.dtype(dtype)
    if x.dtype == dtype:
        return x
    if dtype.name == "float8_e4m3fn":
        x = np.clip(compute(x), -FP8_MAX, FP8_MAX)
    with np.errstate(over="ignore"):
        return x.astype(dtype)


def convert(x: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Convert ``x`` to ``dtype`` the way TensorRT's cast does.

    - to float types: round to nearest even (float8 saturates to +-448);
    - float to integer: NaN -> 0, truncate toward zero, saturate to the integer range;
    - integer to narrower integer: saturate;
    - to bool: ``x != 0``; bool to numbers: 0 or 1.
    """
    dtype = np.dtype(dtype)
    if x.dtype == dtype:
        return x.copy()
    if dtype == np.bool_:
        return compute(x) != 0
    if x.dtype == np.bool_:
        return x.astype(dtype)
    if is_float(dtype):
        return round_to(x, dtype)
    low, high = integer_range(dtype)
    if is_float(x.dtype):
        wide = np.trunc(np.nan_to_num(compute(x).astype(np.float64), nan=0.0))
        return np.clip(wide, low, high).astype(dtype)
    return np.clip(x.astype(np.int64), low, high).astype(dtype)

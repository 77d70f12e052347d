"""TensorRT data types as NumPy dtypes, and the rounding a tensor of each type undergoes.

Low-precision floating types come from ``ml_dtypes`` (bfloat16, float8_e4m3fn, int4, ...).
Every computing layer works in float32 on float16/bfloat16 inputs (TensorRT accumulates in
fp32) and the executor rounds each output to its declared type, so precision loss shows.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from netdef.backend import trt
from netdef.errors import UnsupportedLayerError

try:  # ml_dtypes ships with JAX/TensorFlow/ONNX tooling; bf16/fp8/int4 tensors need it
    import ml_dtypes
except ImportError:  # pragma: no cover - exercised only where ml_dtypes is absent
    ml_dtypes = None  # type: ignore[assignment]  # optional dependency

_NUMPY: dict[Any, np.dtype] = {
    trt.DataType.FLOAT: np.dtype(np.float32),
    trt.DataType.HALF: np.dtype(np.float16),
    trt.DataType.INT8: np.dtype(np.int8),
    trt.DataType.INT32: np.dtype(np.int32),
    trt.DataType.INT64: np.dtype(np.int64),
    trt.DataType.BOOL: np.dtype(np.bool_),
    trt.DataType.UINT8: np.dtype(np.uint8),
}
_ML_DTYPES = {
    "BF16": "bfloat16",
    "FP8": "float8_e4m3fn",
    "INT4": "int4",
    "FP4": "float4_e2m1fn",
    "E8M0": "float8_e8m0fnu",
}
for _name, _ml_name in _ML_DTYPES.items():
    if ml_dtypes is not None and hasattr(trt.DataType, _name) and hasattr(ml_dtypes, _ml_name):
        _NUMPY[getattr(trt.DataType, _name)] = np.dtype(getattr(ml_dtypes, _ml_name))

FLOAT32 = np.dtype(np.float32)

FP8_MAX = 448.0
"""Largest finite float8 e4m3 value; TensorRT clamps to [-448, 448] when quantizing to FP8."""


def numpy_dtype(dtype) -> np.dtype:
    """The NumPy dtype that holds a tensor of TensorRT ``dtype``."""
    try:
        return _NUMPY[dtype]
    except KeyError:
        hint = " (install ml_dtypes)" if ml_dtypes is None else ""
        raise UnsupportedLayerError(f"no NumPy dtype for TensorRT {dtype}{hint}") from None


def trt_dtype_name(dtype) -> str:
    """``DataType.HALF`` -> ``"HALF"``."""
    return getattr(dtype, "name", str(dtype))


def is_float(dtype: np.dtype) -> bool:
    """True for float32/float16 and the ml_dtypes floating types (bfloat16, float8, float4)."""
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return True
    return ml_dtypes is not None and dtype.kind == "V" and _is_ml_float(dtype)


def _is_ml_float(dtype: np.dtype) -> bool:
    try:
        ml_dtypes.finfo(dtype)
    except (ValueError, TypeError):
        return False
    return True


def is_integer(dtype: np.dtype) -> bool:
    dtype = np.dtype(dtype)
    if dtype.kind in "iu":
        return True
    return ml_dtypes is not None and dtype.kind == "V" and not _is_ml_float(dtype)


def compute(x: np.ndarray) -> np.ndarray:
    """``x`` as TensorRT computes with it: float16/bfloat16/float8 widened to float32, others unchanged."""
    if x.dtype != FLOAT32 and is_float(x.dtype):
        return x.astype(FLOAT32)
    return x


def integer_range(dtype: np.dtype) -> tuple[int, int]:
    dtype = np.dtype(dtype)
    info = np.iinfo(dtype) if dtype.kind in "iu" else ml_dtypes.iinfo(dtype)
    return int(info.min), int(info.max)


def round_to(x: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Round a computed float array to a floating ``dtype`` (round to nearest even; overflow gives inf).

    float8 e4m3 has no infinity, so values are first clamped to [-448, 448] (TensorRT saturates).
    """
    dtype = np.dtype(dtype)
    if x.dtype == dtype:
        return x
    if ml_dtypes is not None and dtype == np.dtype(ml_dtypes.float8_e4m3fn):
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

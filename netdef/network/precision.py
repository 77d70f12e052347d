"""Precision policy: the dtype a network computes in, as TensorRT and NumPy spell it.

TensorRT 11 networks are strongly typed: precision comes from tensor dtypes and casts, never
from builder flags. A netdef network converts every weight to its compute dtype once, casts
its inputs from the I/O dtype and its outputs back to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from netdef.backend import trt
from netdef.weights.dtypes import bfloat16


@dataclass(frozen=True)
class Precision:
    name: str
    numpy: np.dtype
    trt: Any
    quantized: bool = False
    """INT8 Q/DQ around convolutions and matrix multiplies (the compute dtype above stays float)."""

    def __str__(self) -> str:
        return self.name


PRECISIONS = {
    "fp32": Precision("fp32", np.dtype(np.float32), trt.float32),
    "fp16": Precision("fp16", np.dtype(np.float16), trt.float16),
    "bf16": Precision("bf16", bfloat16, trt.bfloat16),
    "int8": Precision("int8", np.dtype(np.float32), trt.float32, quantized=True),
}

_TRT_TO_NUMPY = {
    trt.float32: np.dtype(np.float32),
    trt.float16: np.dtype(np.float16),
    trt.bfloat16: bfloat16,
    trt.int8: np.dtype(np.int8),
    trt.int32: np.dtype(np.int32),
    trt.int64: np.dtype(np.int64),
    trt.bool: np.dtype(np.bool_),
    trt.uint8: np.dtype(np.uint8),
}
_NUMPY_TO_TRT = {v: k for k, v in _TRT_TO_NUMPY.items()}


def precision(name: str | Precision) -> Precision:
    if isinstance(name, Precision):
        return name
    try:
        return PRECISIONS[name.lower()]
    except KeyError:
        raise ValueError(f"unknown precision {name!r}: expected one of {', '.join(PRECISIONS)}") from None


def numpy_dtype(trt_dtype: Any) -> np.dtype:
    """The NumPy dtype of a TensorRT ``DataType``."""
    try:
        return _TRT_TO_NUMPY[trt_dtype]
    except KeyError:
        raise ValueError(f"TensorRT dtype {trt_dtype} has no NumPy equivalent in netdef") from None


def trt_dtype(dtype: Any) -> Any:
    """The TensorRT ``DataType`` of a NumPy dtype (or a precision name such as ``"fp16"``)."""
    if isinstance(dtype, str) and dtype.lower() in PRECISIONS and not PRECISIONS[dtype.lower()].quantized:
        return PRECISIONS[dtype.lower()].trt
    try:
        return _NUMPY_TO_TRT[np.dtype(dtype)]
    except (KeyError, TypeError):
        raise ValueError(f"dtype {dtype} has no TensorRT equivalent") from None


def dtype_name(trt_dtype: Any) -> str:
    """Short, stable name of a TensorRT dtype for metadata and tables (``float16``)."""
    if trt_dtype in _TRT_TO_NUMPY:
        return str(_TRT_TO_NUMPY[trt_dtype])
    return str(trt_dtype).split(".")[-1].lower()

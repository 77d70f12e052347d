"""Precision policy: the dtype a network computes in, as TensorRT and NumPy spell it.

TensorRT 11 networks are strongly typed: precision comes from tensor dtypes and casts, never
from builder flags. A netdef network converts every weight to its compute dtype once, casts
its inputs from the I/O dtype and its outputs back to it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from netdef import dtypes


@dataclass(frozen=True)
class Precision:
    name: str
    dtype: str
    """The compute dtype's name (``float16``); see :mod:`netdef.dtypes`."""
    quantized: bool = False
    """INT8 Q/DQ around convolutions and matrix multiplies (the compute dtype above stays float)."""

    @property
    def numpy(self) -> np.dtype:
        return dtypes.numpy_dtype(self.dtype)

    @property
    def trt(self) -> Any:
        return dtypes.trt_dtype(self.dtype)

    def __str__(self) -> str:
        return self.name


PRECISIONS = {
    "fp32": Precision("fp32", "float32"),
    "fp16": Precision("fp16", "float16"),
    "bf16": Precision("bf16", "bfloat16"),
    "int8": Precision("int8", "float32", quantized=True),
}


def precision(name: str | Precision) -> Precision:
    if isinstance(name, Precision):
        return name
    try:
        return PRECISIONS[name.lower()]
    except KeyError:
        raise ValueError(f"unknown precision {name!r}: expected one of {', '.join(PRECISIONS)}") from None

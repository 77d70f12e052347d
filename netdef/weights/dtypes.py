"""Names of dtypes across checkpoint formats, including the ones NumPy lacks (bfloat16, float8).

NumPy has no bfloat16 or float8; ``ml_dtypes`` (the package JAX and TensorFlow use) adds them
as real NumPy dtypes, so such tensors stay zero-copy and bit-exact.
"""

from __future__ import annotations

import ml_dtypes
import numpy as np

from netdef.errors import CheckpointError

bfloat16 = np.dtype(ml_dtypes.bfloat16)
float8_e4m3fn = np.dtype(ml_dtypes.float8_e4m3fn)
float8_e5m2 = np.dtype(ml_dtypes.float8_e5m2)

_SAFETENSORS = {
    "F64": np.dtype(np.float64),
    "F32": np.dtype(np.float32),
    "F16": np.dtype(np.float16),
    "BF16": bfloat16,
    "F8_E4M3": float8_e4m3fn,
    "F8_E5M2": float8_e5m2,
    "I64": np.dtype(np.int64),
    "I32": np.dtype(np.int32),
    "I16": np.dtype(np.int16),
    "I8": np.dtype(np.int8),
    "U8": np.dtype(np.uint8),
    "BOOL": np.dtype(np.bool_),
}
_SAFETENSORS_NAMES = {v: k for k, v in _SAFETENSORS.items()}

# Short names users type (--dtype fp16) and precision names.
BY_SHORT_NAME = {
    "fp32": np.dtype(np.float32),
    "float32": np.dtype(np.float32),
    "fp16": np.dtype(np.float16),
    "float16": np.dtype(np.float16),
    "bf16": bfloat16,
    "bfloat16": bfloat16,
}


def numpy_dtype_for_safetensors(name: str, where: str) -> np.dtype:
    try:
        return _SAFETENSORS[name]
    except KeyError:
        raise CheckpointError(f"{where}: unsupported safetensors dtype {name!r}") from None


def safetensors_dtype_name(dtype: np.dtype, tensor: str) -> str:
    try:
        return _SAFETENSORS_NAMES[np.dtype(dtype)]
    except KeyError:
        raise CheckpointError(f"tensor {tensor!r}: dtype {dtype} cannot be stored in safetensors") from None


def parse_dtype(name: str) -> np.dtype:
    """``"fp16"`` -> ``np.float16`` and so on; a clear error for anything else."""
    try:
        return BY_SHORT_NAME[name.lower()]
    except KeyError:
        raise ValueError(f"unknown dtype {name!r}: expected one of {sorted(BY_SHORT_NAME)}") from None


def is_floating(dtype: np.dtype) -> bool:
    return np.issubdtype(dtype, np.floating) or dtype in (bfloat16, float8_e4m3fn, float8_e5m2)


_KINDS = {
    "b": "bool",
    "i": "integer",
    "u": "unsigned integer",
    "c": "complex",
    "U": "string",
    "S": "bytes",
    "O": "object",
}


def weight_dtype_problem(name: str, dtype: np.dtype) -> str | None:
    """Why checkpoint entry ``name`` of ``dtype`` cannot be a weight (None for a floating-point dtype).

    Weights are floats: an integer, bool, complex or string tensor would silently lose its
    meaning (bool becomes 0/1, complex loses its imaginary part), so it is a problem to report.
    """
    dtype = np.dtype(dtype)
    if is_floating(dtype):
        return None
    kind = _KINDS.get(dtype.kind, "non-numeric")
    return f"weight {name!r}: the checkpoint holds a {kind} tensor ({dtype}); weights must be floating point"

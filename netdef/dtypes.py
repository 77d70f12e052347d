"""Every dtype netdef knows, and its name in each world: NumPy, TensorRT, torch, safetensors, metadata, users.

One row per dtype (:data:`DTYPES`). The metadata name is NumPy's (``"float16"``, ``"bfloat16"``); users
may also type the short name (``"fp16"``). NumPy has no bfloat16 or float8: ``ml_dtypes`` (the package
JAX and TensorFlow use) adds them as real NumPy dtypes, so such tensors stay zero-copy and bit-exact.
It is imported only when one of those dtypes is used. TensorRT is imported only to name TensorRT dtypes.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np

from netdef.errors import NetdefError


class DTypeError(NetdefError, ValueError):
    """A dtype netdef has no row for, or one that has no name in the world asked for."""


@dataclass(frozen=True)
class DType:
    name: str
    """NumPy's name, also the engine metadata's: ``float16``."""
    short: str | None = None
    """What users type: ``fp16``."""
    trt: str | None = None
    """The ``trt.DataType`` member: ``HALF``."""
    safetensors: str | None = None
    """The safetensors header code: ``F16``."""
    storage: str | None = None
    """The legacy torch storage class in ``.pth`` pickles: ``HalfStorage``."""
    torch: bool = True
    """Whether ``torch.<name>`` exists."""
    floating: bool = False

    @property
    def numpy(self) -> np.dtype:
        return _numpy(self.name)


DTYPES = (
    DType("float32", "fp32", "FLOAT", "F32", "FloatStorage", floating=True),
    DType("float16", "fp16", "HALF", "F16", "HalfStorage", floating=True),
    DType("bfloat16", "bf16", "BF16", "BF16", "BFloat16Storage", floating=True),
    DType("float64", None, None, "F64", "DoubleStorage", floating=True),
    DType("float8_e4m3fn", "fp8", "FP8", "F8_E4M3", floating=True),
    DType("float8_e5m2", None, None, "F8_E5M2", floating=True),
    DType("float4_e2m1fn", "fp4", "FP4", torch=False, floating=True),
    DType("float8_e8m0fnu", None, "E8M0", torch=False, floating=True),
    DType("int64", None, "INT64", "I64", "LongStorage"),
    DType("int32", None, "INT32", "I32", "IntStorage"),
    DType("int16", None, None, "I16", "ShortStorage"),
    DType("int8", None, "INT8", "I8", "CharStorage"),
    DType("uint8", None, "UINT8", "U8", "ByteStorage"),
    DType("uint16"),
    DType("uint32"),
    DType("uint64"),
    DType("int4", None, "INT4", torch=False),
    DType("bool", None, "BOOL", "BOOL", "BoolStorage"),
    DType("complex64", None, None, None, "ComplexFloatStorage"),
    DType("complex128", None, None, None, "ComplexDoubleStorage"),
)
_ML_DTYPES = {"bfloat16", "float8_e4m3fn", "float8_e5m2", "float4_e2m1fn", "float8_e8m0fnu", "int4"}
_BY_NAME = {d.name: d for d in DTYPES} | {d.short: d for d in DTYPES if d.short}
_BY_TRT = {d.trt: d for d in DTYPES if d.trt}
_BY_SAFETENSORS = {d.safetensors: d for d in DTYPES if d.safetensors}
_BY_STORAGE = {d.storage: d for d in DTYPES if d.storage}


@functools.cache
def _numpy(name: str) -> np.dtype:
    if name in _ML_DTYPES:
        import ml_dtypes  # only bf16/fp8/fp4/int4 need it (it costs a noticeable import)

        return np.dtype(getattr(ml_dtypes, name))
    return np.dtype(name)


def lookup(dtype: Any) -> DType:
    """The row of ``dtype``: a NumPy dtype or type, a ``trt.DataType``, a ``torch.dtype``, or a name
    (metadata ``"float16"``, short ``"fp16"``, TensorRT's ``"HALF"``, ``"torch.float16"``)."""
    if isinstance(dtype, DType):
        return dtype
    if isinstance(dtype, str):
        if dtype in _BY_TRT:  # "HALF", as TensorRT names it
            return _BY_TRT[dtype]
        key = dtype.lower().removeprefix("torch.")
    elif type(dtype).__name__ == "DataType":  # trt.DataType (whichever TensorRT module)
        key = dtype.name
        if key in _BY_TRT:
            return _BY_TRT[key]
    elif type(dtype).__name__ == "dtype" and type(dtype).__module__ == "torch":
        key = str(dtype).removeprefix("torch.")
    else:
        try:
            key = np.dtype(dtype).name
        except TypeError:
            key = str(dtype)
    try:
        return _BY_NAME[key]
    except KeyError:
        raise DTypeError(f"unknown dtype {dtype!r}: netdef knows {', '.join(known_names())}") from None


def known_names() -> list[str]:
    return [d.name for d in DTYPES]


def numpy_dtype(dtype: Any) -> np.dtype:
    """The NumPy dtype of ``dtype`` (any form :func:`lookup` takes)."""
    return lookup(dtype).numpy


def dtype_name(dtype: Any) -> str:
    """The metadata name of ``dtype``: ``trt.float16`` -> ``"float16"``."""
    return lookup(dtype).name


def trt_dtype(dtype: Any) -> Any:
    """The ``trt.DataType`` of ``dtype`` (a NumPy dtype, a name such as ``"fp16"``, or a DataType)."""
    from netdef.backend import trt

    row = lookup(dtype)
    if row.trt is None or not hasattr(trt.DataType, row.trt):
        raise DTypeError(f"dtype {row.name} has no TensorRT equivalent")
    return getattr(trt.DataType, row.trt)


def torch_dtype(dtype: Any) -> Any:
    """The ``torch.dtype`` of ``dtype`` (imports torch)."""
    import torch

    row = lookup(dtype)
    if not row.torch:
        raise DTypeError(f"dtype {row.name} has no torch equivalent")
    return getattr(torch, row.name)


def from_safetensors(code: str) -> np.dtype | None:
    """The NumPy dtype of a safetensors header code (``"BF16"``), None if unknown."""
    row = _BY_SAFETENSORS.get(code)
    return None if row is None else row.numpy


def safetensors_code(dtype: Any) -> str | None:
    """The safetensors header code of ``dtype``, None if safetensors cannot store it."""
    row = _BY_NAME.get(np.dtype(dtype).name)
    return None if row is None else row.safetensors


def from_storage(storage: str) -> np.dtype | None:
    """The NumPy dtype of a torch storage class name (``"HalfStorage"``), None if unknown."""
    row = _BY_STORAGE.get(storage)
    return None if row is None else row.numpy


def from_torch_name(name: str) -> np.dtype | None:
    """The NumPy dtype of ``torch.<name>`` (``"float16"``), None if netdef has no row for it."""
    row = _BY_NAME.get(name)
    return None if row is None or not row.torch or row.short == name else row.numpy


def torch_to_numpy(tensor: Any) -> np.ndarray:
    """A CPU torch tensor's values as a NumPy array sharing its memory (bfloat16 and float8 through their bits)."""
    import torch

    name = str(tensor.dtype).removeprefix("torch.")
    if name in _ML_DTYPES:  # torch cannot hand NumPy these: view the bits as a same-size integer
        bits = {1: torch.uint8, 2: torch.int16}[tensor.element_size()]
        return tensor.view(bits).numpy().view(_numpy(name))
    return tensor.numpy()


def numpy_to_torch(array: np.ndarray) -> Any:
    """A torch CPU tensor sharing ``array``'s memory (bfloat16 and float8 included)."""
    import torch

    row = lookup(array.dtype)
    if row.name in _ML_DTYPES:
        bits = {1: np.uint8, 2: np.int16}[array.itemsize]
        return torch.from_numpy(array.view(bits)).view(torch_dtype(row))
    return torch.from_numpy(array)


def parse_float(name: str) -> np.dtype:
    """A floating dtype users name on the command line: ``"fp16"`` or ``"float16"`` (fp32, fp16, bf16)."""
    row = _BY_NAME.get(name.lower())
    if row is None or row.short not in ("fp32", "fp16", "bf16"):
        choices = sorted(n for d in DTYPES if d.short in ("fp32", "fp16", "bf16") for n in (d.name, d.short))
        raise DTypeError(f"unknown dtype {name!r}: expected one of {choices}")
    return row.numpy


def is_float(dtype: Any) -> bool:
    """True for every floating dtype, the ml_dtypes ones (bfloat16, float8, float4) included."""
    try:
        return lookup(dtype).floating
    except DTypeError:
        return np.dtype(dtype).kind == "f"


def is_integer(dtype: Any) -> bool:
    """True for signed and unsigned integers, int4 included (not bool)."""
    try:
        row = lookup(dtype)
    except DTypeError:
        return np.dtype(dtype).kind in "iu"
    return not row.floating and row.name not in ("bool", "complex64", "complex128")


def largest_finite(dtype: Any) -> float:
    """The largest finite value of a floating ``dtype``."""
    return _largest_finite(lookup(dtype).name)


@functools.cache
def _largest_finite(name: str) -> float:
    if name in _ML_DTYPES:
        import ml_dtypes

        return float(ml_dtypes.finfo(_numpy(name)).max)
    return float(np.finfo(np.dtype(name)).max)


def __getattr__(name: str) -> np.dtype:
    """``netdef.dtypes.bfloat16`` and the other ml_dtypes dtypes, imported on first use."""
    if name in _ML_DTYPES:
        return _numpy(name)
    raise AttributeError(f"module 'netdef.dtypes' has no attribute {name!r}")

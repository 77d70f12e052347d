"""Reading a layer's settings back through the TensorRT Python API.

Measured facts this relies on (see the project's TensorRT API notes):
- ``network.get_layer(i)`` returns a plain ``ILayer``; its class must be set to the concrete layer class;
- on pooling and activation layers ``.type`` is shadowed, so the LayerType comes from ``ILayer.type.fget``;
- weights read back as flat NumPy views, except BF16/FP8/INT4/FP4, which come back as ``trt.Weights``
  whose data the binding does not expose (read here from the ``nvinfer1::Weights`` struct, after checking
  that its type and count fields agree with what the binding reports);
- transposes read back as 8 entries.
"""

from __future__ import annotations

import ctypes
import sys
from typing import Any

import numpy as np

from netdef.backend import trt
from netdef.errors import UnsupportedLayerError
from netdef.reference.dtypes import numpy_dtype


def layer_type(layer) -> Any:
    """The ``trt.LayerType`` of any layer, including those whose ``.type`` is shadowed."""
    return trt.ILayer.type.fget(layer)


def dims(value) -> tuple[int, ...] | None:
    """A ``trt.Dims`` (or sequence) as a tuple of ints; None when TensorRT reports no dims."""
    if value is None:
        return None
    return tuple(int(v) for v in value)


def tensor_shape(tensor) -> tuple[int, ...] | None:
    """TensorRT's inferred shape of ``tensor`` (``-1`` for dynamic dims), or None when it cannot say."""
    try:
        return dims(tensor.shape)
    except RuntimeError:
        return None


def weights_array(value) -> np.ndarray:
    """Weights read back from a layer as a flat NumPy array (a copy, owned by the caller)."""
    if isinstance(value, np.ndarray):
        return value.copy()
    if isinstance(value, trt.Weights):
        return _weights_struct_array(value)
    return np.asarray(value).copy()


_PYOBJECT_HEAD = 2 * ctypes.sizeof(ctypes.c_void_p)


def _weights_struct_array(weights) -> np.ndarray:
    """Copy the data of a ``trt.Weights`` whose type NumPy cannot view (BF16, FP8, INT4, FP4).

    ``nvinfer1::Weights`` is ``{DataType type; void const* values; int64_t count;}`` and the pybind11
    instance of a simple type stores a pointer to it right after the Python object header.
    """
    dtype = numpy_dtype(weights.dtype)
    count = int(weights.size)
    if count == 0:
        return np.zeros(0, dtype)
    if hasattr(sys, "_is_gil_enabled") and not sys._is_gil_enabled():  # free-threaded layout differs
        raise UnsupportedLayerError(f"cannot read {weights.dtype} weights on a free-threaded Python")
    struct_address = ctypes.c_void_p.from_address(id(weights) + _PYOBJECT_HEAD).value
    if not struct_address:
        raise UnsupportedLayerError(f"cannot read {weights.dtype} weights through this TensorRT binding")
    type_field = ctypes.c_int32.from_address(struct_address).value
    values = ctypes.c_void_p.from_address(struct_address + ctypes.sizeof(ctypes.c_void_p)).value
    count_field = ctypes.c_int64.from_address(struct_address + 2 * ctypes.sizeof(ctypes.c_void_p)).value
    if type_field != int(weights.dtype) or count_field != count or not values:
        raise UnsupportedLayerError(f"cannot read {weights.dtype} weights through this TensorRT binding")
    nbytes = int(weights.nbytes)
    raw = np.ctypeslib.as_array((ctypes.c_uint8 * nbytes).from_address(values)).copy()
    if dtype.itemsize * count == nbytes:
        return raw.view(dtype)
    # 4-bit types: two values per byte, low nibble first.
    nibbles = np.stack([raw & 0x0F, raw >> 4], axis=-1).reshape(-1)[:count]
    if dtype.name.startswith("int4"):
        return np.where(nibbles >= 8, nibbles.astype(np.int8) - 16, nibbles).astype(np.int8).astype(dtype)
    return nibbles.astype(np.uint8).view(dtype)  # float4: the code sits in the low bits of each byte


def permutation(value, rank: int) -> tuple[int, ...]:
    """A transpose read back (always 8 entries) cut to the tensor's rank."""
    return tuple(int(v) for v in value)[:rank]


def bits(mask: int, rank: int) -> tuple[int, ...]:
    """The axes set in a TensorRT axes bitmask (bit i = axis i)."""
    return tuple(axis for axis in range(rank) if int(mask) >> axis & 1)

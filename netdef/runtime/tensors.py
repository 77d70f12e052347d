"""NumPy and PyTorch buffers as the runner sees them: shape, dtype, device, and dtype mapping.

PyTorch is optional: nothing here imports it unless a torch tensor is given or asked for.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from netdef.weights.dtypes import bfloat16

_TORCH_NAMES = {
    np.dtype(np.float32): "float32",
    np.dtype(np.float16): "float16",
    bfloat16: "bfloat16",
    np.dtype(np.float64): "float64",
    np.dtype(np.int8): "int8",
    np.dtype(np.uint8): "uint8",
    np.dtype(np.int16): "int16",
    np.dtype(np.int32): "int32",
    np.dtype(np.int64): "int64",
    np.dtype(np.bool_): "bool",
}
_NUMPY_BY_TORCH_NAME = {v: k for k, v in _TORCH_NAMES.items()}


def is_torch(x: Any) -> bool:
    """Whether ``x`` is a ``torch.Tensor`` (checked without importing torch)."""
    return type(x).__module__.partition(".")[0] == "torch" and hasattr(x, "data_ptr")


def torch_dtype(dtype: Any) -> Any:
    """The ``torch.dtype`` of a NumPy dtype (bfloat16 from ml_dtypes included)."""
    import torch

    try:
        return getattr(torch, _TORCH_NAMES[np.dtype(dtype)])
    except KeyError:
        raise ValueError(f"dtype {dtype} has no PyTorch equivalent") from None


def numpy_dtype_of(x: Any) -> np.dtype:
    """The NumPy dtype of a NumPy array, a torch tensor, or anything ``np.asarray`` accepts."""
    if is_torch(x):
        name = str(x.dtype).removeprefix("torch.")
        try:
            return _NUMPY_BY_TORCH_NAME[name]
        except KeyError:
            raise ValueError(f"torch dtype {x.dtype} has no NumPy equivalent in netdef") from None
    if isinstance(x, np.ndarray):
        return x.dtype
    return np.asarray(x).dtype


def shape_of(x: Any) -> tuple[int, ...]:
    return tuple(int(d) for d in (x.shape if hasattr(x, "shape") else np.shape(x)))


def cuda_device_of(x: Any) -> int | None:
    """The CUDA device index a torch tensor lives on, or None for host memory (and NumPy)."""
    if is_torch(x) and x.device.type == "cuda":
        return int(x.device.index or 0)
    return None


def to_numpy(x: Any, dtype: Any = None) -> np.ndarray:
    """A C-contiguous host array (of ``dtype`` when given); torch CUDA tensors are copied to the host."""
    if is_torch(x):
        x = x.detach()
        if x.device.type != "cpu":
            x = x.cpu()
        if str(x.dtype) == "torch.bfloat16":  # NumPy has no bfloat16: go through the bits
            x = x.view(_torch().int16).numpy().view(bfloat16)
        else:
            x = x.numpy()
    return np.ascontiguousarray(x, dtype=dtype)


def from_numpy(array: np.ndarray) -> Any:
    """A torch CPU tensor sharing ``array``'s memory (bfloat16 included)."""
    torch = _torch()
    if array.dtype == bfloat16:
        return torch.from_numpy(array.view(np.int16)).view(torch.bfloat16)
    return torch.from_numpy(array)


def _torch() -> Any:
    import torch

    return torch

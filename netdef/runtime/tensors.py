"""NumPy and PyTorch buffers as the runner sees them: shape, dtype, device, and dtype mapping.

PyTorch is optional: nothing here imports it unless a torch tensor is given or asked for.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from netdef import dtypes


def is_torch(x: Any) -> bool:
    """Whether ``x`` is a ``torch.Tensor`` (checked without importing torch)."""
    return type(x).__module__.partition(".")[0] == "torch" and hasattr(x, "data_ptr")


def numpy_dtype_of(x: Any) -> np.dtype:
    """The NumPy dtype of a NumPy array, a torch tensor, or anything ``np.asarray`` accepts."""
    if is_torch(x):
        return dtypes.numpy_dtype(x.dtype)
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
        x = dtypes.torch_to_numpy(x)
    return np.ascontiguousarray(x, dtype=dtype)


from_numpy = dtypes.numpy_to_torch
torch_dtype = dtypes.torch_dtype

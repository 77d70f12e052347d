"""PyTorch ``.pth``/``.pt`` checkpoints, loaded safely with ``torch.load(weights_only=True)``.

Training scripts often save ``{"state_dict": ...}`` or ``{"model": ..., "optimizer": ...}``;
the tensors are found wherever they are nested. A file whose unpickling would run arbitrary
code is refused rather than executed.
"""

from __future__ import annotations

import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from netdef.errors import CheckpointError
from netdef.weights.checkpoint import register_reader
from netdef.weights.dtypes import bfloat16

_WRAPPER_KEYS = ("state_dict", "model_state_dict", "model", "module", "net", "weights", "params")


@register_reader(".pth", ".pt", ".bin")
def read_torch(path: Path) -> dict[str, np.ndarray]:
    try:
        import torch
    except ImportError:
        raise CheckpointError(
            f"{path}: reading PyTorch checkpoints needs torch: pip install 'netdef-trt[torch]'"
        ) from None
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(
            f"{path}: refused: this file needs arbitrary code to unpickle (torch.load with weights_only=True "
            f"rejected it: {str(exc).splitlines()[0]}). Re-save it as a plain state_dict "
            "(torch.save(model.state_dict(), ...)) or convert it with safetensors."
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint: {exc}") from None
    state = _find_state_dict(obj, torch)
    if state is None:
        raise CheckpointError(f"{path}: no tensors found (top-level type {type(obj).__name__})")
    return {name: _to_numpy(t, torch) for name, t in state.items()}


def _find_state_dict(obj: Any, torch: Any) -> Mapping[str, Any] | None:
    if not isinstance(obj, Mapping):
        return None
    tensors = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if tensors and len(tensors) >= len(obj) / 2:
        return tensors
    for key in _WRAPPER_KEYS:
        if key in obj:
            found = _find_state_dict(obj[key], torch)
            if found is not None:
                return found
    return tensors or None


def _to_numpy(tensor: Any, torch: Any) -> np.ndarray:
    tensor = tensor.detach().contiguous()
    if tensor.dtype == torch.bfloat16:
        return tensor.view(torch.int16).numpy().view(bfloat16)
    return tensor.numpy()

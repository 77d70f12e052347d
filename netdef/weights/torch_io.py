"""PyTorch ``.pth``/``.pt`` checkpoints, loaded safely with ``torch.load(weights_only=True)``.

Training scripts often save ``{"state_dict": ...}`` or ``{"model": ..., "optimizer": ...}``;
the tensors are found wherever they are nested. A file whose unpickling would run arbitrary
code is refused rather than executed.
"""

from __future__ import annotations

import pickle
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from netdef.errors import CheckpointError
from netdef.weights.checkpoint import register_reader
from netdef.weights.dtypes import bfloat16, float8_e4m3fn, float8_e5m2

_WRAPPER_KEYS = ("state_dict", "model_state_dict", "model", "module", "net", "weights", "params")


@register_reader(".pth", ".pt", ".bin")
def read_torch(path: Path) -> dict[str, np.ndarray]:
    try:
        import torch
    except ImportError:
        raise CheckpointError(
            f"{path}: reading PyTorch checkpoints needs torch: pip install 'netdef-trt[torch]'"
        ) from None
    with open(path, "rb") as f:
        is_zip = f.read(4) == b"PK\x03\x04"  # torch's own test: the zip format of torch.save since 1.6
    try:
        # mmap needs the zip format; older (legacy) files are read into memory.
        obj = torch.load(path, map_location="cpu", weights_only=True, mmap=is_zip)
    except pickle.UnpicklingError as exc:
        detail = _weights_only_detail(exc)
        if "GLOBAL" not in detail:
            raise CheckpointError(f"{path}: not a readable PyTorch checkpoint: {detail}") from None
        raise CheckpointError(
            f"{path}: refused: this file needs arbitrary code to unpickle ({detail}). Re-save it as a plain "
            "state_dict (torch.save(model.state_dict(), ...)) or convert it with safetensors."
        ) from None
    except Exception as exc:  # noqa: BLE001 - torch raises many types for damaged or foreign files
        form = "zip archive" if is_zip else "no zip archive; read as a legacy torch.save file"
        first = (str(exc).splitlines() or [""])[0]
        raise CheckpointError(
            f"{path}: not a readable PyTorch checkpoint ({form}): {type(exc).__name__} {first}"
        ) from None
    state = _find_state_dict(obj, torch)
    if state is None:
        raise CheckpointError(f"{path}: no tensors found (top-level type {type(obj).__name__})")
    arrays, problems = {}, []
    for name, tensor in state.items():
        try:
            arrays[name] = _to_numpy(tensor, torch)
        except (TypeError, RuntimeError):
            problems.append(f"  - {name}: dtype {tensor.dtype} has no NumPy equivalent in netdef")
    if problems:
        raise CheckpointError("\n".join([f"{path}: {len(problems)} tensor(s) cannot be read:", *problems]))
    return arrays


def _weights_only_detail(exc: Exception) -> str:
    """The line of torch's weights_only error that says what went wrong (e.g. the class it refused)."""
    boilerplate = ("Weights only load failed", "Please file an issue", "Check the documentation", "(1)", "(2)")
    lines = [re.sub(r"\x1b\[[0-9;]*m", "", line).strip() for line in str(exc).splitlines()]
    lines = [line.removeprefix("WeightsUnpickler error: ") for line in lines if line]
    for line in lines:
        if "GLOBAL" in line:
            return line.split(". Please use", 1)[0]
    useful = [line for line in lines if not line.startswith(boilerplate)]
    return (useful or lines or [type(exc).__name__])[0]


def _find_state_dict(obj: Any, torch: Any) -> Mapping[str, Any] | None:
    if not isinstance(obj, Mapping):
        return None
    tensors = {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if tensors and len(tensors) == len(obj):
        return tensors
    for key in _WRAPPER_KEYS:  # before loose top-level tensors such as {"model": ..., "step": tensor(3)}
        if key in obj:
            found = _find_state_dict(obj[key], torch)
            if found is not None:
                return found
    return tensors or None


def _to_numpy(tensor: Any, torch: Any) -> np.ndarray:
    tensor = tensor.detach().contiguous()
    if tensor.dtype == torch.bfloat16:
        return tensor.view(torch.int16).numpy().view(bfloat16)
    float8 = {getattr(torch, "float8_e4m3fn", None): float8_e4m3fn, getattr(torch, "float8_e5m2", None): float8_e5m2}
    if tensor.dtype in float8:
        return tensor.view(torch.uint8).numpy().view(float8[tensor.dtype])
    return tensor.numpy()

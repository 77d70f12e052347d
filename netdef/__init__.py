"""netdef: build TensorRT engines layer by layer from raw checkpoints, and refit them by name.

The TensorRT-dependent parts (``Network``, ``build``) are imported lazily so that reading and
converting checkpoints works without TensorRT installed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

from netdef.engine import Engine
from netdef.errors import (
    BackendNotFoundError,
    BuildError,
    CheckpointError,
    EngineFileError,
    GPUUnavailableError,
    NetdefError,
    NetworkDefinitionError,
)
from netdef.weights import Checkpoint, load_checkpoint

_LAZY = {"Network": "netdef.network", "BuildConfig": "netdef.build", "build": "netdef.build"}

if TYPE_CHECKING:
    from netdef.build import BuildConfig, build
    from netdef.network import Network


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'netdef' has no attribute {name!r}")


__all__ = [
    "BackendNotFoundError",
    "BuildConfig",
    "BuildError",
    "Checkpoint",
    "CheckpointError",
    "Engine",
    "EngineFileError",
    "GPUUnavailableError",
    "NetdefError",
    "Network",
    "NetworkDefinitionError",
    "__version__",
    "build",
    "load_checkpoint",
]

"""netdef: build TensorRT engines layer by layer from raw checkpoints, and refit them by name.

The TensorRT-dependent parts (``Network``, ``build``, ``register``) are imported lazily so that
reading and converting checkpoints works without TensorRT installed.
"""

from __future__ import annotations

import sys
import types
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

_LAZY = {
    "Network": "netdef.network",
    "BuildConfig": "netdef.build",
    "build": "netdef.build",
    "register": "netdef.definition",
}

if TYPE_CHECKING:
    from netdef.build import BuildConfig, build
    from netdef.definition import register
    from netdef.network import Network


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'netdef' has no attribute {name!r}")


class _Package(types.ModuleType):
    """Keeps ``netdef.build`` the function: importing the submodule ``netdef.build`` would otherwise
    make the package attribute the module (``TypeError: 'module' object is not callable``)."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "build" and isinstance(value, types.ModuleType):
            value = value.build
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


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
    "register",
]

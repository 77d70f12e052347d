"""The table of checkpoint readers by file suffix (the readers register themselves here)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np

Reader = Callable[[Path], Mapping[str, np.ndarray]]
_READERS: dict[str, Reader] = {}
BUILTIN_MODULES = {
    ".safetensors": "safetensors_io",
    ".pth": "torch_io",
    ".pt": "torch_io",
    ".bin": "torch_io",
    ".npz": "npz_io",
    ".wts": "wts_io",
}
"""Suffix -> the module of :mod:`netdef.weights` whose reader registers it (imported when first needed)."""


def register_reader(*suffixes: str) -> Callable[[Reader], Reader]:
    """Register a function ``path -> {name: array}`` for files ending in ``suffixes``."""

    def decorate(reader: Reader) -> Reader:
        for suffix in suffixes:
            _READERS[suffix.lower()] = reader
        return reader

    return decorate

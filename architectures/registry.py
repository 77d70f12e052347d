"""The zoo's registry is netdef's: :func:`netdef.register`, :func:`netdef.definition.get` and friends.

Importing :mod:`architectures` lets the registry find every definition in this package by name.
"""

from __future__ import annotations

import importlib
import pkgutil

from netdef.definition import Architecture, Definition, add_loader, get, names, register

__all__ = ["Architecture", "Definition", "get", "load_all", "names", "register"]


def load_all() -> None:
    """Import every module of :mod:`architectures` (each registers its definitions)."""
    import architectures

    for module in pkgutil.iter_modules(architectures.__path__):
        if module.name != "registry":
            importlib.import_module(f"architectures.{module.name}")


add_loader(load_all)

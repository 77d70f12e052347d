"""The zoo's registry is netdef's: :func:`netdef.register`, :func:`netdef.definition.get` and friends.

Importing :mod:`architectures` lets the registry find every definition in this package by name.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
from pathlib import Path

from netdef.definition import Architecture, Definition, add_loader, declare_parameters, get, names, register

__all__ = ["Architecture", "Definition", "get", "load_all", "names", "register"]


PARAMETERS = Path(__file__).with_name("parameters.json")
"""Each architecture's parameter count with its default options (``python -m architectures.parameters``
writes it; ``tests/test_parameter_table.py`` checks it against the definitions)."""


def load_all() -> None:
    """Import every module of :mod:`architectures` (each registers its definitions)."""
    import architectures

    for module in pkgutil.iter_modules(architectures.__path__):
        if module.name not in ("registry", "parameters"):
            importlib.import_module(f"architectures.{module.name}")
    if PARAMETERS.is_file():
        declare_parameters(json.loads(PARAMETERS.read_text()))


add_loader(load_all)

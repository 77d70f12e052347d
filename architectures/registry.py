"""The zoo's registry is netdef's: :func:`netdef.register`, :func:`netdef.definition.get` and friends.

Importing :mod:`architectures` lets the registry find every definition in this package by name.
"""

from __future__ import annotations

import importlib
import json
import pkgutil
from pathlib import Path
from typing import Any

from netdef.definition import (
    Architecture,
    Definition,
    add_finder,
    add_loader,
    declare_parameters,
    get,
    names,
    register,
)

__all__ = ["Architecture", "Definition", "get", "load_all", "names", "register"]


PARAMETERS = Path(__file__).with_name("parameters.json")
"""The zoo's index: each architecture's module and its parameter count with its default options
(``python -m architectures.parameters`` writes it; ``tests/test_parameter_table.py`` checks it)."""


def read_index() -> dict[str, dict[str, Any]]:
    """``name -> {"module": ..., "parameters": ...}`` from :data:`PARAMETERS` (empty when absent)."""
    return json.loads(PARAMETERS.read_text()) if PARAMETERS.is_file() else {}


def load_all() -> None:
    """Import every module of :mod:`architectures` (each registers its definitions)."""
    import architectures

    for module in pkgutil.iter_modules(architectures.__path__):
        if module.name not in ("registry", "parameters"):
            importlib.import_module(f"architectures.{module.name}")
    declare_parameters({name: entry["parameters"] for name, entry in read_index().items()})


def find(name: str) -> None:
    """Import only the module the index names for ``name`` (a build needs one family, not the zoo)."""
    module = read_index().get(name, {}).get("module")
    if isinstance(module, str) and module.isidentifier():
        importlib.import_module(f"architectures.{module}")


add_finder(find)
add_loader(load_all)

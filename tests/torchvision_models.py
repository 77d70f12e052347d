"""torchvision's own model code, loaded without torchvision's compiled operators.

The registry's torchvision 0.28.0 wheel is built against the CUDA build of torch. Next to the
CPU build that this project pins, ``import torchvision`` fails in its ``__init__`` while it
registers fake kernels for its compiled operators ("operator torchvision::nms does not exist").
The classification models need none of those operators, so this module imports the package
*without running its ``__init__``*: a bare module object carrying the installed package's
``__path__`` stands in for ``torchvision``, and ``torchvision.models`` (plain Python) is imported
beneath it. The model code that runs is torchvision's own, unchanged.

Use :func:`torchvision_models` (or :func:`get_model`) from tests; a test that needs torchvision
calls :func:`require_torchvision`, which skips with the reason when it is not installed.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import sys
import types
import warnings
from collections.abc import Iterator
from typing import Any


def torchvision_models() -> types.ModuleType:
    """``torchvision.models``, importable next to the CPU build of torch."""
    loaded = sys.modules.get("torchvision")
    if loaded is not None and hasattr(loaded, "models"):
        return loaded.models
    if loaded is None:
        spec = importlib.util.find_spec("torchvision")
        if spec is None or not spec.submodule_search_locations:
            raise ModuleNotFoundError("torchvision is not installed (pip install torchvision==0.28.0 torch==2.13.0)")
        package = types.ModuleType("torchvision")
        package.__path__ = list(spec.submodule_search_locations)
        package.__file__ = spec.origin
        package.__spec__ = spec
        sys.modules["torchvision"] = package
    return importlib.import_module("torchvision.models")


def is_bare_package() -> bool:
    """Whether ``sys.modules["torchvision"]`` is this module's stand-in (its compiled ops are absent)."""
    loaded = sys.modules.get("torchvision")
    return loaded is not None and not hasattr(loaded, "__version__")


@contextlib.contextmanager
def hidden_when_bare() -> Iterator[None]:
    """Hide the stand-in from ``sys.modules`` for a while: code that calls ``torchvision.ops.nms`` when it sees
    torchvision imported (Ultralytics' NMS does) then takes its own fallback, as it would without torchvision."""
    if not is_bare_package():
        yield
        return
    saved = {name: module for name, module in sys.modules.items() if name.split(".")[0] == "torchvision"}
    for name in saved:
        del sys.modules[name]
    try:
        yield
    finally:
        sys.modules.update(saved)


def require_torchvision() -> types.ModuleType:
    """:func:`torchvision_models`, or a pytest skip that says why it is unavailable."""
    import pytest

    try:
        return torchvision_models()
    except ImportError as exc:  # pragma: no cover - depends on the machine
        pytest.skip(f"torchvision's model code is not importable here: {exc}")


def list_classification_models() -> list[str]:
    """torchvision's classification builders (``list_models(module=torchvision.models)``)."""
    models = torchvision_models()
    return sorted(models.list_models(module=models))


def get_model(name: str, **kwargs: Any) -> Any:
    """torchvision's ``get_model(name, weights=None, **kwargs)`` in eval mode, its init warnings silenced."""
    models = torchvision_models()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # googlenet/inception_v3's init notice
        return models.get_model(name, weights=None, **kwargs).eval()

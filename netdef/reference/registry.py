"""The registry of layer semantics: one function per ``trt.LayerType``.

A layer function takes a :class:`~netdef.reference.node.Node` (the layer, read back through the
TensorRT API) and the list of its input arrays (``None`` for an absent optional input), and returns
its output array, or a list of arrays for a layer with several outputs. The first line of its
docstring is the one-line semantics; the rest states the formula and the shape rule.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from netdef.backend import trt

_LAYER_MODULES = (
    "activation",
    "control",
    "convolution",
    "elementwise",
    "gather",
    "matmul",
    "normalization",
    "pooling",
    "quantization",
    "reduction",
    "resize",
    "shape_ops",
    "slicing",
)


@dataclass(frozen=True)
class LayerOp:
    """How the reference executor computes one layer type."""

    layer_type: Any
    layer_class: type
    fn: Callable[..., Any]
    params: tuple[str, ...] | Callable[[Any], dict]
    """Layer attributes :func:`~netdef.reference.describe.describe_layer` reports, or a function of the
    (cast) layer returning them, for layers where some attributes must not be read in some states."""

    @property
    def doc(self) -> str:
        return inspect.cleandoc(self.fn.__doc__ or "")

    @property
    def semantics(self) -> str:
        return self.doc.splitlines()[0] if self.doc else ""


_REGISTRY: dict[Any, LayerOp] = {}
_loaded = False


def register(type_name: str, class_name: str, params: tuple[str, ...] | Callable = ()) -> Callable:
    """Register the decorated function for ``trt.LayerType.<type_name>``.

    Types or classes the installed TensorRT lacks are skipped, so one registry serves TensorRT
    10, 11 and TensorRT-RTX.
    """

    def decorate(fn: Callable) -> Callable:
        layer_type = getattr(trt.LayerType, type_name, None)
        layer_class = getattr(trt, class_name, None)
        if layer_type is not None and layer_class is not None:
            described = params if callable(params) else tuple(params)
            _REGISTRY[layer_type] = LayerOp(layer_type, layer_class, fn, described)
        return fn

    return decorate


def _load() -> None:
    global _loaded
    if not _loaded:
        for module in _LAYER_MODULES:
            importlib.import_module(f"netdef.reference.{module}")
        _loaded = True


def lookup(layer_type) -> LayerOp | None:
    """The registered op for a ``trt.LayerType``, or None when the executor does not support it."""
    _load()
    return _REGISTRY.get(layer_type)


def supported_layer_types() -> list:
    """Every ``trt.LayerType`` the reference executor can compute, in enum order."""
    _load()
    return sorted(_REGISTRY, key=int)

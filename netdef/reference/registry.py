"""The layer-type registry: everything netdef knows about each ``trt.LayerType``, in one entry.

Every consumer reads it: the reference executor (``fn``), ``netdef explain`` (the semantics, which are
the first line of ``fn``'s docstring, and ``params``), ``netdef inspect`` (``detail``, ``flops``,
``weights``), graph pictures (``family`` -> colour) and the coverage table of docs/reference.md.

A layer function takes a :class:`~netdef.reference.node.Node` (the layer, read back through the
TensorRT API) and the list of its input arrays (``None`` for an absent optional input), and returns
its output array, or a list of arrays for a layer with several outputs. The first line of its
docstring is the one-line semantics; the rest states the formula and the shape rule.

Adding a TensorRT layer type is one ``@register`` on its reference function (plus a builder method).
``tests/reference/test_ref_registry.py`` fails when an entry lacks what a consumer needs.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from netdef.backend import trt
from netdef.reference import costs

_LAYER_MODULES = (
    "activation",
    "attention",
    "control",
    "convolution",
    "detection",
    "elementwise",
    "fill",
    "gather",
    "gridsample",
    "matmul",
    "normalization",
    "plugins",
    "pooling",
    "quantization",
    "reduction",
    "resize",
    "scatter",
    "shape_ops",
    "slicing",
)

FAMILY_COLOURS = {
    "convolution": "#9ecae1",
    "reduction": "#a1d99b",
    "matmul": "#fdae6b",
    "activation": "#fff2a8",
    "elementwise": "#fcbba1",
    "normalization": "#c6dbef",
    "softmax": "#dadaeb",
    "attention": "#bcbddc",
    "constant": "#f0f0f0",
    "data": "#e0e0e0",
    "sampling": "#c7e9c0",
    "quantization": "#fdd0a2",
    "control": "#d9d9d9",
    "detection": "#fc9272",
    "generator": "#f7f7f7",
    "plugin": "#fbb4ae",
}
"""Fill colour of each family of layer types in graph pictures."""

Describe = Callable[[Any], str]
Count = Callable[[Any], "int | None"]


@dataclass(frozen=True)
class LayerOp:
    """Everything netdef knows about one layer type; ``layer`` arguments are cast to ``layer_class``."""

    layer_type: Any
    layer_class: type
    fn: Callable[..., Any]
    """The reference semantics: ``fn(node, inputs) -> array | list of arrays``."""
    params: tuple[str, ...] | Callable[[Any], dict]
    """Layer attributes :func:`~netdef.reference.describe.describe_layer` reports, or a function of the
    (cast) layer returning them, for layers where some attributes must not be read in some states."""
    family: str
    """The group of layer types it belongs to (graph colour; see ``FAMILY_COLOURS``)."""
    detail: Describe
    """Its main settings in a few words (``netdef inspect``), e.g. ``5x5 /1, 20 maps``."""
    flops: Count
    """Floating-point operations for TensorRT's inferred shapes, or None where the data decides."""
    weights: Count
    """Weights the layer itself holds (kernels, biases, scales, constants)."""
    refusal: Callable[[Any], str | None] | None = None
    """For types the executor runs only in some cases (plugins): why it refuses this layer, or None."""

    @property
    def doc(self) -> str:
        return inspect.cleandoc(self.fn.__doc__ or "")

    @property
    def semantics(self) -> str:
        return self.doc.splitlines()[0] if self.doc else ""

    @property
    def colour(self) -> str:
        return FAMILY_COLOURS[self.family]

    def settings(self, layer) -> dict:
        """The parameters ``params`` names, read from the (cast) layer; unreadable ones are left out."""
        return read_settings(self.params, layer)


def read_settings(params: tuple[str, ...] | Callable[[Any], dict], layer) -> dict:
    """Layer attributes by name (or ``params(layer)`` when it is a function); unreadable ones are left out."""
    if callable(params):
        return params(layer)
    found = {}
    for name in params:
        try:
            found[name] = getattr(layer, name)
        except RuntimeError:
            continue
    return found


_REGISTRY: dict[Any, LayerOp] = {}
_loaded = False


def register(
    type_name: str,
    class_name: str,
    params: tuple[str, ...] | Callable = (),
    *,
    family: str,
    flops: Count,
    detail: Describe | None = None,
    weights: Count = costs.no_weights,
    refusal: Callable[[Any], str | None] | None = None,
) -> Callable:
    """Register the decorated reference function for ``trt.LayerType.<type_name>``, with its inspect facts.

    ``detail`` defaults to the ``params`` in a few words. Types the installed TensorRT lacks are skipped,
    so one registry serves TensorRT 10, 11 and TensorRT-RTX; a missing class falls back to ``ILayer``.
    """
    if family not in FAMILY_COLOURS:
        raise ValueError(f"unknown layer family {family!r}; add it to FAMILY_COLOURS")

    def decorate(fn: Callable) -> Callable:
        layer_type = getattr(trt.LayerType, type_name, None)
        layer_class = getattr(trt, class_name, None) or trt.ILayer
        if layer_type is not None:
            described = params if callable(params) else tuple(params)
            text = detail or (lambda layer: costs.settings_text(read_settings(described, layer)))
            _REGISTRY[layer_type] = LayerOp(
                layer_type, layer_class, fn, described, family, text, flops, weights, refusal
            )
        return fn

    return decorate


def _load() -> None:
    global _loaded
    if not _loaded:
        for module in _LAYER_MODULES:
            importlib.import_module(f"netdef.reference.{module}")
        _loaded = True


def lookup(layer_type) -> LayerOp | None:
    """The registry entry for a ``trt.LayerType``, or None when netdef knows nothing of it."""
    _load()
    return _REGISTRY.get(layer_type)


def registered_layer_types() -> list:
    """Every ``trt.LayerType`` with a registry entry, in enum order."""
    _load()
    return sorted(_REGISTRY, key=int)


def supported_layer_types() -> list:
    """Every ``trt.LayerType`` the reference executor computes for any layer, in enum order.

    Plugin types are left out: they run only when a NumPy implementation is registered for the plugin
    (:func:`netdef.reference.register_plugin`); :func:`refused_layer_types` lists them.
    """
    return [kind for kind in registered_layer_types() if _REGISTRY[kind].refusal is None]


def refused_layer_types() -> list:
    """The types refused unless the user registers an implementation (plugins), in enum order."""
    return [kind for kind in registered_layer_types() if _REGISTRY[kind].refusal is not None]

"""Plugin layers, run only through NumPy implementations the user registers, and distributed collectives.

A plugin is compiled code that TensorRT calls; nothing in the network says what it computes, so the
reference executor refuses a plugin layer unless :func:`register_plugin` gave it a NumPy function for
that plugin's name::

    from netdef.reference import register_plugin

    register_plugin("MyGelu", lambda inputs, plugin: [0.5 * x * (1 + np.tanh(0.8 * x)) for x in inputs[:1]])

The function receives the layer's input arrays and TensorRT's plugin object (to read its fields) and
returns the output array, or a list of arrays; each is checked against the layer's declared outputs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from netdef.reference import costs
from netdef.reference.node import Unsupported
from netdef.reference.registry import register

PluginFunction = Callable[[list[np.ndarray], Any], Any]
_PLUGINS: dict[str, PluginFunction] = {}


def register_plugin(name: str, fn: PluginFunction) -> None:
    """Run plugin layers whose plugin is called ``name`` with ``fn(inputs, plugin) -> array | list of arrays``.

    Registering the same name again replaces the function; ``fn=None`` is refused (use
    :func:`unregister_plugin`).
    """
    if not callable(fn):
        raise TypeError(f"register_plugin({name!r}, ...) needs a function, got {type(fn).__name__}")
    _PLUGINS[name] = fn


def unregister_plugin(name: str) -> None:
    """Forget the NumPy implementation registered for plugin ``name`` (no error when there is none)."""
    _PLUGINS.pop(name, None)


def plugin_name(layer: Any) -> str:
    """The name (type) of a plugin layer's plugin: ``plugin_type`` (V2) or the core interface's ``plugin_name`` (V3)."""
    plugin = getattr(layer, "plugin", None)
    for attribute in ("plugin_type", "plugin_name"):
        name = getattr(plugin, attribute, None)
        if name:
            return str(name)
    core = getattr(plugin, "get_capability_interface", None)
    if core is not None:
        try:
            from netdef.backend import trt

            interface = core(trt.PluginCapabilityType.CORE)
            return str(interface.plugin_name)
        except Exception:  # noqa: BLE001 - any binding failure means the name cannot be read
            pass
    return "<unknown plugin>"


def _refusal(layer: Any) -> str | None:
    name = plugin_name(layer)
    if name in _PLUGINS:
        return None
    return (
        f"plugin '{name}' has no NumPy implementation; register one with netdef.reference.register_plugin({name!r}, fn)"
    )


def _describe(layer: Any) -> dict:
    return {"plugin": plugin_name(layer)}


def _run_plugin(node, inputs):
    """A plugin layer: the NumPy function registered for its plugin name (netdef.reference.register_plugin).

    Without a registered function the layer is refused, naming the plugin.
    """
    name = plugin_name(node.layer)
    fn = _PLUGINS.get(name)
    if fn is None:
        raise Unsupported(_refusal(node.layer))
    return fn(list(inputs), getattr(node.layer, "plugin", None))


for _type, _class in (("PLUGIN", "IPluginLayer"), ("PLUGIN_V2", "IPluginV2Layer"), ("PLUGIN_V3", "IPluginV3Layer")):
    register(_type, _class, _describe, family="plugin", flops=costs.data_dependent, refusal=_refusal)(_run_plugin)


@register("DIST_COLLECTIVE", "IDistCollectiveLayer", family="data", flops=costs.free)
def dist_collective(node, inputs):
    """A collective across ranks, run as the single-rank case: y = x (one rank reduces, gathers or scatters to itself).

    The reference executor is one process, so every collective (all-reduce, all-gather, broadcast,
    reduce, reduce-scatter, all-to-all, gather, scatter) sees one rank and returns its input; the output
    shape is checked against TensorRT's inference, which fails for a multi-rank definition.
    """
    return inputs[0]

"""Human-readable descriptions of layers: what TensorRT computes, and with which settings."""

from __future__ import annotations

from typing import Any

import numpy as np

from netdef.backend import trt
from netdef.reference.readback import layer_type, tensor_shape
from netdef.reference.registry import lookup


def _as_layer_type(value) -> Any:
    if isinstance(value, trt.LayerType):
        return value
    if isinstance(value, str):
        try:
            return getattr(trt.LayerType, value.upper())
        except AttributeError:
            raise ValueError(f"no TensorRT layer type named {value!r}") from None
    raise TypeError(f"expected a trt.LayerType or its name, got {type(value).__name__}")


def semantics(kind) -> str:
    """One line saying what TensorRT computes for a layer type (a ``trt.LayerType`` or its name).

    For a type the reference executor does not support, the line says so.
    """
    kind = _as_layer_type(kind)
    op = lookup(kind)
    if op is None:
        return f"{kind.name}: not supported by the NumPy reference executor"
    return op.semantics


def documentation(kind) -> str:
    """The full statement of what TensorRT computes for a layer type: formula and shape rule."""
    kind = _as_layer_type(kind)
    op = lookup(kind)
    return op.doc if op is not None else semantics(kind)


def _plain(value: Any) -> Any:
    """A layer attribute as plain Python: Dims -> tuple, enums -> name, weights -> a summary."""
    if isinstance(value, np.ndarray):
        return {"weights": list(value.shape), "dtype": str(value.dtype), "count": int(value.size)}
    if isinstance(value, trt.Weights):
        return {"weights": [int(value.size)], "dtype": value.dtype.name, "count": int(value.size)}
    if isinstance(value, trt.Dims):
        return tuple(int(v) for v in value)
    if hasattr(value, "name") and hasattr(value, "value") and not isinstance(value, (int, float, str)):
        return value.name
    if isinstance(value, (list, tuple)) or type(value).__name__ == "Permutation":
        return tuple(_plain(v) for v in value)
    if isinstance(value, float):
        return float(np.float32(value))
    return value


def _tensor(tensor) -> dict | None:
    if tensor is None:
        return None
    return {"name": tensor.name, "shape": tensor_shape(tensor), "dtype": tensor.dtype.name}


def describe_layer(layer) -> dict:
    """Name, type, semantics, input/output tensors (name, shape, dtype) and key parameters of a layer.

    ``layer`` may be the plain ``ILayer`` that ``network.get_layer(i)`` returns; its class is set
    to the concrete layer class. Parameters are read through the TensorRT API; weights are
    summarised (shape, dtype, count), not listed.
    """
    kind = layer_type(layer)
    op = lookup(kind)
    params: dict[str, Any] = {}
    if op is not None:
        layer.__class__ = op.layer_class
        raw = op.settings(layer)
        params = {name: _plain(value) for name, value in raw.items()}
    return {
        "name": layer.name,
        "type": kind.name,
        "semantics": semantics(kind),
        "inputs": [_tensor(layer.get_input(i)) for i in range(layer.num_inputs)],
        "outputs": [_tensor(layer.get_output(i)) for i in range(layer.num_outputs)],
        "params": params,
    }


def coverage_table() -> str:
    """docs/reference.md's coverage table: every registered layer type, its family and what TensorRT computes."""
    from netdef.reference.registry import lookup, registered_layer_types

    lines = ["| layer type | family | what TensorRT computes |", "|---|---|---|"]
    for kind in registered_layer_types():
        entry = lookup(kind)
        assert entry is not None  # registered
        line = entry.semantics.replace("|", "\\|")
        if entry.refusal is not None:
            line += " (refused unless registered)"
        lines.append(f"| `{kind.name}` | {entry.family} | {line} |")
    return "\n".join(lines)

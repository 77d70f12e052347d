"""What ``netdef explain`` shows of a network, as plain data: layers, their tensors, settings and weights.

The text explain and the HTML page both read the network through these functions, so they agree
on which weights a layer holds and where each weight came from in the checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

_SHORT_DTYPES = {
    "FLOAT": "fp32",
    "HALF": "fp16",
    "BF16": "bf16",
    "float32": "fp32",
    "float16": "fp16",
    "bfloat16": "bf16",
}


def short_dtype(name: str) -> str:
    """``FLOAT``/``float32`` -> ``fp32``, ``HALF`` -> ``fp16``; other names in lower case (``int32``)."""
    return _SHORT_DTYPES.get(name, name.lower())


def shape_text(dims: Any) -> str:
    """``(1, -1, 8)`` -> ``1x?x8``; ``()`` -> ``scalar``; None (not inferable) -> ``?``."""
    if dims is None:
        return "?"
    return "x".join("?" if d == -1 else str(d) for d in dims) or "scalar"


def setting_text(key: str, value: Any) -> str:
    """One layer setting as read back from TensorRT (``kernel_size_nd=(5, 5)`` -> ``5x5``)."""
    if isinstance(value, dict) and "count" in value:
        return f"{value['count']:,} {value['dtype']} values"
    spatial = key.endswith("_nd") or key.endswith("padding") or key == "shape"
    if spatial and isinstance(value, tuple) and value and all(isinstance(v, int) for v in value):
        return "x".join(map(str, value))
    if isinstance(value, float):
        return f"{value:.7g}"
    return str(value)


@dataclass(frozen=True)
class WeightInfo:
    """A named weight handed to TensorRT, and the checkpoint entries it was made from."""

    name: str
    array: np.ndarray
    role: str
    """``checkpoint`` (an entry as it is), ``derived`` (computed from entries, e.g. BatchNorm folded
    into a convolution) or ``fixed`` (a constant of the definition, e.g. a 1/sqrt(d) scale)."""
    sources: tuple[str, ...]
    """The checkpoint keys the values come from (empty for fixed constants)."""

    @property
    def shape_text(self) -> str:
        return shape_text(self.array.shape)

    @property
    def dtype(self) -> str:
        return short_dtype(self.array.dtype.name)


def network_weights(network: Any) -> dict[str, WeightInfo]:
    """Every named weight of a netdef ``Network`` with its role and checkpoint sources."""
    derived = getattr(network, "derived", None) or {}
    expected = getattr(network, "expected", None) or {}
    found = {}
    for name, array in (getattr(network, "weights", None) or {}).items():
        if name in derived:
            role, sources = "derived", tuple(derived[name])
        elif name in expected:
            role, sources = "checkpoint", (name,)
        else:
            role, sources = "fixed", ()
        found[name] = WeightInfo(name, array, role, sources)
    return found


def folded_into(network: Any) -> dict[str, str]:
    """Convolution layer -> the BatchNorm module folded into its weights."""
    from netdef.reference.compare import folded_batch_norms

    return {conv: bn for bn, conv in folded_batch_norms(network).items()}


def own_weights(weights: dict[str, WeightInfo], layer_name: str, layer_names: set[str]) -> list[WeightInfo]:
    """The weights a layer holds itself: ``conv1.weight`` in layer ``conv1``, or a constant layer's values.

    A weight that is a constant layer of its own (``fc1.weight``) belongs to that constant layer, not to
    the matrix multiply ``fc1`` it feeds (see :func:`constant_inputs`).
    """
    return [
        info
        for name, info in weights.items()
        if name == layer_name or (name not in layer_names and name.rpartition(".")[0] == layer_name)
    ]


def constant_inputs(layer: dict, constants: set[str]) -> list[str]:
    """Names of the constant layers feeding ``layer`` (a ``describe_layer`` dict) directly."""
    return [t["name"] for t in layer["inputs"] if t is not None and t["name"] in constants]

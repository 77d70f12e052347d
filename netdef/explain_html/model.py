"""What ``netdef explain`` shows of a network, as plain data: layers, their tensors, settings and weights.

The text explain and the HTML page both read the network through these functions, so they agree
on which weights a layer holds and where each weight came from in the checkpoint (the network's
weight table records both).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from netdef import dtypes, tensorspec


def short_dtype(name: str) -> str:
    """``FLOAT``/``float32`` -> ``fp32``, ``HALF`` -> ``fp16``; a name netdef does not know in lower case."""
    try:
        row = dtypes.lookup(name)
    except dtypes.DTypeError:
        return name.lower()
    return row.short or row.name


def shape_text(dims: Any) -> str:
    """``(1, -1, 8)`` -> ``1x?x8``; ``()`` -> ``scalar``; None (not inferable) -> ``?``."""
    return "?" if dims is None else tensorspec.shape_text(dims, compact=True)


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
    """A named weight handed to TensorRT, the layer holding it, and the checkpoint entries it was made from."""

    name: str
    array: np.ndarray
    role: str
    """``checkpoint`` (an entry as it is), ``derived`` (computed from entries, e.g. BatchNorm folded
    into a convolution), ``fixed`` (a constant of the definition, e.g. a 1/sqrt(d) scale) or
    ``scale`` (an INT8 quantization scale)."""
    sources: tuple[str, ...]
    """The checkpoint keys the values come from (empty for fixed constants and scales)."""
    layer: str
    """The TensorRT layer that holds it: a constant layer of its own, or e.g. the convolution."""

    @property
    def shape_text(self) -> str:
        return shape_text(self.array.shape)

    @property
    def dtype(self) -> str:
        return short_dtype(self.array.dtype.name)

    @property
    def refittable(self) -> bool:
        return self.role in ("checkpoint", "derived")


def network_weights(network: Any) -> dict[str, WeightInfo]:
    """Every named weight of a netdef ``Network`` (its weight table) with its role, sources and layer."""
    return {e.name: WeightInfo(e.name, e.array, e.role, tuple(e.sources), e.layer) for e in network.weight_table}


def folded_into(network: Any) -> dict[str, str]:
    """Convolution layer -> the BatchNorm module folded into its weights."""
    from netdef.reference.compare import folded_batch_norms

    return {conv: bn for bn, conv in folded_batch_norms(network).items()}


def own_weights(weights: dict[str, WeightInfo], layer_name: str) -> list[WeightInfo]:
    """The weights layer ``layer_name`` holds itself (a convolution's kernel and bias, a constant's values).

    A weight that is a constant layer of its own (``fc1.weight``) belongs to that constant layer, not to
    the matrix multiply ``fc1`` it feeds (see :func:`constant_inputs`).
    """
    return [info for info in weights.values() if info.layer == layer_name]


def constant_inputs(layer: dict, constants: set[str]) -> list[str]:
    """Names of the constant layers feeding ``layer`` (a ``describe_layer`` dict) directly."""
    return [t["name"] for t in layer["inputs"] if t is not None and t["name"] in constants]

"""One layer, read back through the TensorRT API and prepared for repeated execution."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from netdef.errors import UnsupportedLayerError
from netdef.reference.dtypes import numpy_dtype
from netdef.reference.readback import dims, layer_type, tensor_shape, weights_array
from netdef.reference.registry import LayerOp

_MISSING = object()


class Unsupported(UnsupportedLayerError):
    """Raised by a layer function for a setting it cannot compute; the executor adds the layer's name."""


class Node:
    """A layer cast to its concrete class, with its tensors' names, types and shapes.

    Settings are read from TensorRT on first use and cached, so a network can be executed many
    times without re-reading (and re-converting) weights.
    """

    def __init__(self, layer, op: LayerOp, index: int):
        layer.__class__ = op.layer_class
        self.layer = layer
        self.op = op
        self.index = index
        self.name: str = layer.name
        self.type = layer_type(layer)
        inputs = [layer.get_input(i) for i in range(layer.num_inputs)]
        outputs = [layer.get_output(i) for i in range(layer.num_outputs)]
        self.inputs: tuple[str | None, ...] = tuple(t.name if t is not None else None for t in inputs)
        self.outputs: tuple[str, ...] = tuple(t.name for t in outputs)
        self.output_dtypes: tuple[np.dtype, ...] = tuple(numpy_dtype(t.dtype) for t in outputs)
        self.output_shapes = tuple(tensor_shape(t) for t in outputs)
        self._cache: dict[str, Any] = {}

    def input_name(self, index: int) -> str:
        """The name of input ``index``, which must be set."""
        name = self.inputs[index]
        if name is None:
            raise Unsupported(f"input {index} of {self.type_name} layer '{self.name}' is not set")
        return name

    @property
    def type_name(self) -> str:
        return self.type.name

    def attr(self, name: str, default: Any = _MISSING) -> Any:
        """``layer.<name>``, read once; ``default`` when TensorRT cannot report it."""
        key = "attr:" + name
        if key not in self._cache:
            try:
                self._cache[key] = getattr(self.layer, name)
            except RuntimeError:
                if default is _MISSING:
                    raise
                self._cache[key] = default
        return self._cache[key]

    def dims(self, name: str) -> tuple[int, ...] | None:
        """A ``Dims`` attribute as a tuple of ints (None when TensorRT reports none)."""
        return self.memo("dims:" + name, lambda: dims(self.attr(name, None)))

    def weights(self, name: str) -> np.ndarray:
        """A weights attribute as a flat array in its own dtype (empty when unset)."""
        return self.memo("weights:" + name, lambda: weights_array(getattr(self.layer, name)))

    def memo(self, key: str, compute: Callable[[], Any]) -> Any:
        """``compute()``, cached under ``key`` for the lifetime of this node."""
        if key not in self._cache:
            self._cache[key] = compute()
        return self._cache[key]

    def __repr__(self) -> str:
        return f"<Node {self.index} {self.name!r} {self.type_name}>"

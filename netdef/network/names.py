"""The naming part of a :class:`~netdef.network.Network`: scopes and unique layer and tensor names.

Layers are named after their scope (``layer1.0.conv1``); a layer given no name gets its kind,
made unique in its scope (``relu``, ``relu_1``, ...). A layer's single output tensor takes the
layer's name; several outputs are ``name:0``, ``name:1``, ...
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from netdef.errors import NetworkDefinitionError


class Names:
    """The scope stack and every layer and tensor name used so far in one network."""

    def __init__(self) -> None:
        self._scopes: list[str] = []
        self.layers: set[str] = set()
        self.tensors: set[str] = set()

    @contextlib.contextmanager
    def scope(self, name: str | int) -> Iterator[None]:
        """Prefix every name defined inside with ``name.`` (nestable)."""
        self._scopes.append(str(name))
        try:
            yield
        finally:
            self._scopes.pop()

    def qualified(self, name: str) -> str:
        """``name`` inside the current scope: ``qualified("conv1")`` in ``layer1.0`` -> ``layer1.0.conv1``."""
        return ".".join([*self._scopes, name]) if name else ".".join(self._scopes)

    def local(self, kind: str, name: str | None) -> str:
        """``name``, or the first of ``kind``, ``kind_1``, ... not yet a layer in the current scope (unqualified)."""
        if name is not None:
            return name
        candidate, n = kind, 1
        while self.qualified(candidate) in self.layers:
            candidate, n = f"{kind}_{n}", n + 1
        return candidate

    def layer(self, kind: str, name: str | None) -> str:
        """The full name the next layer of ``kind`` called ``name`` gets; a given name must be new."""
        full = self.qualified(self.local(kind, name))
        if name is not None and full in self.layers:
            raise NetworkDefinitionError(f"duplicate layer name {full!r}: every layer needs its own name")
        return full

    def name_layer(self, layer: Any, kind: str, name: str | None) -> str:
        """Name ``layer`` and its outputs; returns the full name."""
        full = self.layer(kind, name)
        layer.name = full
        self.layers.add(full)
        for i in range(layer.num_outputs):
            self.name_tensor(layer.get_output(i), full if layer.num_outputs == 1 else f"{full}:{i}")
        return full

    def name_tensor(self, tensor: Any, name: str) -> None:
        """Rename ``tensor`` to ``name``, which no other tensor may have."""
        if name in self.tensors:
            raise NetworkDefinitionError(f"duplicate tensor name {name!r}")
        self.tensors.discard(tensor.name)
        tensor.name = name
        self.tensors.add(name)

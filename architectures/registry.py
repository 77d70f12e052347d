"""The architecture registry: name -> definition function, input shape and output names."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from netdef.errors import NetdefError
from netdef.network import Network, Tensor

Definition = Callable[..., Tensor]


@dataclass(frozen=True)
class Architecture:
    name: str
    define: Definition
    input_shape: tuple[int, ...]
    """Shape of one sample (without the batch axis)."""
    output: str
    description: str = ""
    input_name: str = "input"
    options: dict[str, Any] = field(default_factory=dict)
    """Keyword options the definition accepts, with their defaults."""

    def build_network(
        self,
        checkpoint: Mapping[str, np.ndarray],
        *,
        precision: str = "fp32",
        batch: int = -1,
        io_dtype: str = "fp32",
        calibration: Any = None,
        **options: Any,
    ) -> Network:
        """Define this architecture on ``checkpoint``; ``batch=-1`` makes the batch dynamic.

        ``calibration``: activation scales for ``precision="int8"`` (see :mod:`netdef.calibration`).

        Raises one :class:`~netdef.CheckpointError` listing every missing or mismatched weight.
        """
        unknown = sorted(set(options) - set(self.options))
        if unknown:
            raise NetdefError(
                f"architecture {self.name!r} has no option(s) {unknown}; it takes {sorted(self.options) or 'none'}"
            )
        net = Network(checkpoint, precision=precision, io_dtype=io_dtype, name=self.name, calibration=calibration)
        x = net.input(self.input_name, (batch, *self.input_shape))
        y = self.define(net, x, **options)
        net.output(y, self.output)
        net.check()
        return net

    def expected_weights(self, **options: Any) -> dict[str, tuple[int, ...]]:
        """The checkpoint entries this architecture reads, with their shapes (no checkpoint needed)."""
        net = Network({}, name=self.name)
        self.define(net, net.input(self.input_name, (1, *self.input_shape)), **options)
        return dict(net.expected)

    def num_parameters(self, **options: Any) -> int:
        return sum(int(np.prod(s)) for s in self.expected_weights(**options).values())


_REGISTRY: dict[str, Architecture] = {}


def register(
    name: str, *, input_shape: tuple[int, ...], output: str = "logits", description: str = ""
) -> Callable[[Definition], Definition]:
    """Register ``define(net, x, **options) -> output tensor`` as architecture ``name``."""

    def decorate(define: Definition) -> Definition:
        params = list(inspect.signature(define).parameters.values())[2:]
        options = {p.name: p.default for p in params if p.default is not inspect.Parameter.empty}
        doc = description or (inspect.getdoc(define) or "").split("\n")[0]
        _REGISTRY[name] = Architecture(name, define, tuple(input_shape), output, doc, options=options)
        return define

    return decorate


def get(name: str) -> Architecture:
    _load_all()
    try:
        return _REGISTRY[name]
    except KeyError:
        import difflib

        near = difflib.get_close_matches(name, list(_REGISTRY), n=3)
        hint = f"; did you mean {', '.join(near)}?" if near else ""
        raise NetdefError(f"unknown architecture {name!r}{hint} (known: {', '.join(sorted(_REGISTRY))})") from None


def names() -> list[str]:
    _load_all()
    return sorted(_REGISTRY)


def _load_all() -> None:
    import importlib
    import pkgutil

    import architectures

    for module in pkgutil.iter_modules(architectures.__path__):
        if module.name != "registry":
            importlib.import_module(f"architectures.{module.name}")

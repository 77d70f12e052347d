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
    """Shape of one sample (without the batch axis), with the default options."""
    output: str
    description: str = ""
    input_name: str = "input"
    options: dict[str, Any] = field(default_factory=dict)
    """Keyword options the definition accepts, with their defaults."""
    input_shape_of: Callable[..., tuple[int, ...]] | None = None
    """The sample shape as a function of some options (e.g. ``imgsz``), when it depends on them."""

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
        x = net.input(self.input_name, (batch, *self.sample_shape(**options)))
        y = self.define(net, x, **options)
        for name, tensor in y.items() if isinstance(y, Mapping) else [(self.output, y)]:
            net.output(tensor, name)
        net.check()
        return net

    def sample_shape(self, **options: Any) -> tuple[int, ...]:
        """The input shape of one sample for these options."""
        if self.input_shape_of is None:
            return self.input_shape
        accepted = inspect.signature(self.input_shape_of).parameters
        return tuple(self.input_shape_of(**{k: v for k, v in options.items() if k in accepted}))

    def expected_weights(self, **options: Any) -> dict[str, tuple[int, ...]]:
        """The checkpoint entries this architecture reads, with their shapes (no checkpoint needed)."""
        net = Network({}, name=self.name)
        self.define(net, net.input(self.input_name, (1, *self.sample_shape(**options))), **options)
        return dict(net.expected)

    def num_parameters(self, **options: Any) -> int:
        return sum(int(np.prod(s)) for s in self.expected_weights(**options).values())


_REGISTRY: dict[str, Architecture] = {}


def register(
    name: str,
    *,
    input_shape: tuple[int, ...] | Callable[..., tuple[int, ...]],
    output: str = "logits",
    description: str = "",
) -> Callable[[Definition], Definition]:
    """Register ``define(net, x, **options) -> output tensor`` as architecture ``name``.

    ``define`` may return ``{output name: tensor}`` for several outputs; ``input_shape`` may be a
    function of some of the options (``lambda imgsz=640: (3, imgsz, imgsz)``).
    """

    def decorate(define: Definition) -> Definition:
        params = list(inspect.signature(define).parameters.values())[2:]
        options = {p.name: p.default for p in params if p.default is not inspect.Parameter.empty}
        doc = description or (inspect.getdoc(define) or "").split("\n")[0]
        shape_of = input_shape if callable(input_shape) else None
        shape = tuple(input_shape()) if callable(input_shape) else tuple(input_shape)
        _REGISTRY[name] = Architecture(name, define, shape, output, doc, options=options, input_shape_of=shape_of)
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

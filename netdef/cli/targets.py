"""What the commands take as a network: a definition or an engine file, made into a :class:`~netdef.Network`.

A definition is a registered name (``netdef list``), ``path/to/file.py:function`` or
``package.module:function``; an engine file is defined again from its record
(:func:`netdef.definition.redefine`). Every command that defines a network goes through
:func:`define`, so options, unused checkpoint entries and ``--strict`` mean the same everywhere.
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from netdef.cli.app import err_console
from netdef.cli.stages import mark

Options = Annotated[
    list[str] | None,
    typer.Option(
        "--option", "-O", help="Definition option key=value (repeatable), typed from its default; see `netdef list`."
    ),
]
Strict = Annotated[bool, typer.Option("--strict", help="Checkpoint entries the network does not use are errors.")]
TARGET_HELP = "Architecture name (`netdef list`), path/to/file.py:function, package.module:function"


def load_zoo() -> None:
    """Make the zoo's definitions findable by name (the library itself never imports :mod:`architectures`)."""
    import architectures  # noqa: F401  (registers its loader)


def architecture(spec: str) -> Any:
    """The :class:`~netdef.definition.Architecture` a name, ``file.py:function`` or ``module:function`` names."""
    from netdef.definition import resolve

    load_zoo()
    return resolve(spec)


def is_engine(target: str) -> bool:
    """An existing file that does not name a definition (``file.py:function``) is an engine file."""
    return Path(target).is_file() and not target.endswith(".py")


@dataclass
class Defined:
    """A network defined for a command, and where it came from."""

    network: Any
    architecture: Any
    """The :class:`~netdef.definition.Architecture`; for an engine, the one its record names."""
    checkpoint: str
    """The checkpoint's path (or ``zeros``)."""
    engine: Any = None
    """The :class:`~netdef.Engine` when the target was an engine file."""


def define(
    target: str,
    weights: Path | None,
    *,
    precision: str = "fp32",
    batch: int = -1,
    calibration: Path | None = None,
    options: list[str] | None = None,
    strict: bool = False,
    zeros: bool = False,
    warn_unused: bool = True,
) -> Defined:
    """Define ``target`` on ``weights``: a definition (``zeros``: zeros of the expected shapes stand in
    when no checkpoint is given) or an engine file (its recorded checkpoint unless ``weights``).

    Checkpoint entries the network does not read are warned about (``warn_unused``), or with
    ``strict`` raised as one error."""
    from netdef.weights import Checkpoint

    load_zoo()
    if is_engine(target):
        return _from_engine(Path(target), weights, options, strict, warn_unused)
    arch = architecture(target)
    parsed = arch.parse_options(options or [])
    if weights is None and not zeros:
        raise ValueError(f"{target} is a definition: give its checkpoint with --weights")
    checkpoint: Any = Checkpoint.load(weights) if weights is not None else arch.zeros(**parsed)
    mark("read")
    network = arch.build_network(checkpoint, precision=precision, batch=batch, calibration=calibration, **parsed)
    source = str(weights) if weights is not None else "zeros"
    report_unused(network, source, arch.name, strict, warn_unused)
    return Defined(network, arch, source)


def _from_engine(path: Path, weights: Path | None, options: list[str] | None, strict: bool, warn: bool) -> Defined:
    from netdef.definition import record_of, redefine
    from netdef.engine import Engine

    if options:
        raise ValueError(f"{path}: an engine's options are recorded in it; --option is for definitions")
    engine = Engine.load(path)
    network = redefine(engine, weights, source=str(path))
    record = record_of(engine)
    assert record is not None  # redefine refused an engine without one
    source = str(weights) if weights is not None else str(record.checkpoint)
    arch = record.resolve()
    report_unused(network, source, arch.name, strict, warn)
    return Defined(network, arch, source, engine)


def report_unused(network: Any, source: str, name: str, strict: bool, warn: bool = True) -> None:
    """Warn about checkpoint entries ``network`` does not read; with ``strict`` they are one error."""
    from netdef.errors import CheckpointError

    unused = network.unused_keys()
    if strict and unused:
        lines = [f"{source}: {len(unused)} checkpoint entr{'y is' if len(unused) == 1 else 'ies are'} not used by "
                 f"{name} (--strict):", *(f"  - {key!r}" for key in unused)]  # fmt: skip
        raise CheckpointError("\n".join(lines))
    for key in unused if warn else ():
        err_console.print(f"[yellow]warning:[/] {escape(source)}: entry {escape(repr(key))} is not used by {name}")


def batch_range(batch: str | None) -> tuple[int, tuple[int, int, int] | None]:
    """``--batch`` as (the batch to define with, -1 when dynamic; the dynamic range or None)."""
    from netdef.build import parse_batch

    low, opt, high = parse_batch(batch) if batch else (1, 1, 1)
    return (-1, (low, opt, high)) if low != high else (low, None)

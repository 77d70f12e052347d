"""The engine metadata schema: the type of every field any netdef command reads.

:func:`validate_metadata` runs when an engine file is loaded, so ``info``, ``run``, ``refit`` and
``bench`` only ever see metadata of the right shape; a mismatch is one :class:`EngineFileError`
naming the file and every offending field (``io[0].shape[1]``).

The schema is a table: :data:`SCHEMA` maps each top-level field to ``(spec, required)``. A spec
is a small checker built from :func:`of`, :func:`list_of`, :func:`dict_of` and :func:`record`;
to add a field, add a row. Fields the table does not name are allowed (newer files may carry
more).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from netdef.errors import EngineFileError

Spec = Callable[[Any, str], list[str]]
"""``spec(value, where) -> problems`` (``where`` is the field's path, e.g. ``io[0].shape``)."""

_TYPE_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "true or false", type(None): "null"}
_MAX_LISTED = 20


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def of(*types: type, minimum: int | None = None, choices: tuple | None = None) -> Spec:
    """A value of one of ``types`` (bool is never an int; an int is a number), optionally bounded."""

    def check(value: Any, where: str) -> list[str]:
        ok = any(_is(value, t) for t in types)
        if not ok:
            wanted = " or ".join(_TYPE_NAMES.get(t, t.__name__) for t in types)
            return [f"{where}: expected {wanted}, found {_shown(value)}"]
        if minimum is not None and isinstance(value, (int, float)) and not isinstance(value, bool) and value < minimum:
            return [f"{where}: expected a value >= {minimum}, found {_shown(value)}"]
        if choices is not None and value not in choices:
            return [f"{where}: expected one of {', '.join(map(repr, choices))}, found {_shown(value)}"]
        return []

    return check


def _is(value: Any, kind: type) -> bool:
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, kind)


def list_of(item: Spec, length: int | None = None, optional: bool = False) -> Spec:
    def check(value: Any, where: str) -> list[str]:
        if value is None and optional:
            return []
        if not isinstance(value, list):
            return [f"{where}: expected a list, found {_shown(value)}"]
        if length is not None and len(value) != length:
            return [f"{where}: expected {length} entries, found {len(value)}"]
        return [p for i, v in enumerate(value) for p in item(v, f"{where}[{i}]")]

    return check


def dict_of(item: Spec, optional: bool = False) -> Spec:
    """An object with any string keys, each value checked by ``item``."""

    def check(value: Any, where: str) -> list[str]:
        if value is None and optional:
            return []
        if not isinstance(value, dict):
            return [f"{where}: expected an object, found {_shown(value)}"]
        return [p for k, v in value.items() for p in item(v, f"{where}[{k!r}]")]

    return check


def record(fields: Mapping[str, tuple[Spec, bool]], optional: bool = False) -> Spec:
    """An object whose named fields are checked: ``{name: (spec, required)}``; other keys are allowed."""

    def check(value: Any, where: str) -> list[str]:
        if value is None and optional:
            return []
        if not isinstance(value, dict):
            return [f"{where}: expected an object, found {_shown(value)}"]
        return _check_fields(value, fields, f"{where}.")

    return check


def any_of(*specs: Spec) -> Spec:
    """A value that fits one of ``specs`` (the first spec's problems are reported when none fits)."""

    def check(value: Any, where: str) -> list[str]:
        results = [spec(value, where) for spec in specs]
        return [] if any(not r for r in results) else results[0]

    return check


def _check_fields(value: Mapping[str, Any], fields: Mapping[str, tuple[Spec, bool]], prefix: str) -> list[str]:
    problems = []
    for name, (spec, required) in fields.items():
        if name not in value:
            if required:
                problems.append(f"{prefix}{name}: missing")
            continue
        problems += spec(value[name], f"{prefix}{name}")
    return problems


_text = of(str)
_optional_text = of(str, type(None))
_dimension = of(int, minimum=-1)
_size = of(int, minimum=0)
_shape = list_of(_dimension)

SCHEMA: dict[str, tuple[Spec, bool]] = {
    "netdef_version": (_text, False),
    "backend": (_text, False),
    "backend_version": (_text, False),
    "built_on_gpu": (record({"name": (_text, False), "compute_capability": (list_of(_size), False)}, True), False),
    "name": (_text, False),
    "precision": (_text, False),
    "io_dtype": (_text, False),
    "io": (
        list_of(
            record(
                {
                    "name": (_text, True),
                    "mode": (of(str, choices=("input", "output")), True),
                    "shape": (_shape, True),
                    "dtype": (_text, True),
                }
            )
        ),
        False,
    ),
    "profile": (
        record(
            {
                "batch": (list_of(of(int, minimum=1), length=3, optional=True), False),
                "shapes": (dict_of(list_of(list_of(of(int, minimum=0)), length=3), optional=True), False),
            },
            optional=True,
        ),
        False,
    ),
    "num_layers": (of(int, type(None), minimum=0), False),
    "weights": (dict_of(record({"shape": (list_of(_size), True), "dtype": (_text, True)})), False),
    "derived_weights": (dict_of(list_of(_text)), False),
    "refit": (of(bool, type(None)), False),
    "refit_mode": (_optional_text, False),
    "strip_weights": (of(bool, type(None)), False),
    "build_seconds": (of(float, type(None), minimum=0), False),
    "created": (_optional_text, False),
    "definition": (  # netdef.definition.DefinitionRecord (format 2); format 1 has architecture, options, checkpoint
        record(
            {
                "architecture": (_optional_text, False),
                "function": (_optional_text, False),
                "module": (_optional_text, False),
                "file": (_optional_text, False),
                "options": (dict_of(lambda value, where: [], optional=True), False),
                "inputs": (dict_of(_shape, optional=True), False),
                "precision": (_text, False),
                "io_dtype": (_text, False),
                "calibration": (any_of(_optional_text, dict_of(of(float))), False),
                "checkpoint": (_optional_text, False),
                "checkpoint_fingerprint": (
                    record(
                        {"size": (_size, True), "xxh3_128": (_text, False), "blake2b": (_text, False)}, optional=True
                    ),
                    False,
                ),
            },
            optional=True,
        ),
        False,
    ),
    "refitted": (_optional_text, False),
    "refit_history": (list_of(lambda value, where: [], optional=True), False),
    "plan_bytes": (_size, True),
    "plan_sha256": (of(str), True),
}


def metadata_problems(metadata: Any) -> list[str]:
    """Every field of ``metadata`` that does not fit :data:`SCHEMA` (empty when all fit)."""
    if not isinstance(metadata, dict):
        return [f"the metadata is {_shown(type(metadata).__name__)}, expected a JSON object"]
    return _check_fields(metadata, SCHEMA, "")


def validate_metadata(metadata: Any, source: str) -> dict[str, Any]:
    """``metadata`` itself, or one :class:`EngineFileError` naming ``source`` and every bad field."""
    problems = metadata_problems(metadata)
    if problems:
        raise EngineFileError(
            f"{source}: invalid engine metadata ({len(problems)} problem(s))",
            [f"field {p}" for p in problems],
            limit=_MAX_LISTED,
        )
    return metadata

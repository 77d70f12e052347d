"""Refit plans: every weight an engine needs, recomputed from a new checkpoint and validated on the CPU.

A netdef engine's metadata records how to define its network (:class:`netdef.definition.DefinitionRecord`)
and lists every named weight with its shape and dtype. Defining the same network again on a new
checkpoint (:func:`netdef.definition.redefine`) gives the new value of every weight under its engine
name, derived ones included (BatchNorm folded into a convolution, weights cast to fp16/bf16).
:func:`refit_plan` does that and checks the result against the engine before anything touches it;
all problems come back in one :class:`RefitError`.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

from netdef.definition import DefinitionRecord, redefine
from netdef.engine import Engine
from netdef.errors import DefinitionError, RefitError
from netdef.weights import Checkpoint

CheckpointLike = str | Path | Mapping[str, np.ndarray]


@dataclass(frozen=True)
class PlannedWeight:
    """One weight to hand the refitter: its engine name, new value and where it came from."""

    name: str
    array: np.ndarray
    """C-contiguous, in the engine's dtype: exactly the bytes TensorRT receives."""
    sources: tuple[str, ...]
    """Checkpoint entries it was computed from (one for a plain weight, several for a derived one)."""

    @property
    def derived(self) -> bool:
        return self.sources != (self.name,)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.array.shape)

    @property
    def dtype(self) -> str:
        return str(self.array.dtype)


@dataclass
class RefitPlan:
    """The validated new weights of one engine, by engine weight name (iteration follows the engine's order)."""

    weights: dict[str, PlannedWeight]
    checkpoint: str
    """Where the new weights came from (a path, or ``<in-memory checkpoint>``)."""
    engine_name: str
    precision: str
    unused_keys: list[str] = field(default_factory=list)
    """Checkpoint entries no engine weight was computed from (allowed unless ``strict``)."""
    seconds: float = 0.0
    """Time spent defining the network on the new checkpoint and validating it."""

    def __iter__(self) -> Iterator[PlannedWeight]:
        return iter(self.weights.values())

    def __len__(self) -> int:
        return len(self.weights)

    def __getitem__(self, name: str) -> PlannedWeight:
        return self.weights[name]

    @property
    def names(self) -> list[str]:
        return list(self.weights)

    @property
    def nbytes(self) -> int:
        return sum(w.array.nbytes for w in self)

    @property
    def arrays(self) -> dict[str, np.ndarray]:
        """``{engine weight name: array}``, e.g. to compare with a fresh ``Network.weights``."""
        return {w.name: w.array for w in self}

    def max_abs_diff(self, other: RefitPlan | Mapping[str, np.ndarray]) -> dict[str, float | None]:
        """``max |self - other|`` per weight (in float64); None where ``other`` lacks the weight or its shape."""
        arrays = other.arrays if isinstance(other, RefitPlan) else other
        diffs: dict[str, float | None] = {}
        for w in self:
            old = arrays.get(w.name)
            if old is None or tuple(old.shape) != w.shape:
                diffs[w.name] = None
            elif w.array.size == 0:
                diffs[w.name] = 0.0
            else:
                diffs[w.name] = float(np.max(np.abs(w.array.astype(np.float64) - old.astype(np.float64))))
        return diffs

    def to_device(self, device: str = "cuda") -> dict[str, Any]:
        """The plan as torch tensors on ``device`` (GPU-resident weights for the refitter); needs torch."""
        return {w.name: to_torch(w.array, device) for w in self}


def to_torch(array: np.ndarray, device: str = "cuda") -> Any:
    """A torch tensor with ``array``'s bytes on ``device``; bfloat16 (ml_dtypes) goes through an int16 view."""
    from netdef.dtypes import numpy_to_torch

    return numpy_to_torch(np.ascontiguousarray(array)).to(device).contiguous()


# --------------------------------------------------------------------------- planning


def engine_metadata(engine: Engine | Mapping[str, Any]) -> dict[str, Any]:
    """The metadata dict of an :class:`Engine` (or the dict itself)."""
    return dict(engine.metadata if isinstance(engine, Engine) else engine)


def refit_plan(
    engine: Engine | Mapping[str, Any],
    checkpoint: CheckpointLike | None,
    *,
    strict: bool = False,
    engine_source: str | None = None,
) -> RefitPlan:
    """Recompute every weight of ``engine`` from ``checkpoint`` by defining its network again.

    ``checkpoint=None`` takes the checkpoint the engine records, refused when it has changed since
    the build (its fingerprint).

    Uses the metadata only (the definition record, ``weights``), so it runs on the CPU and the
    engine need not be refittable. Raises one :class:`RefitError` listing every problem: a definition
    that cannot be found, an unknown option, a missing or unreadable checkpoint, missing or misshapen
    checkpoint entries, weights the engine has that the definition no longer produces and the reverse,
    shape and dtype changes, NaN/Inf (also after casting to fp16/bf16), and with ``strict`` the
    checkpoint entries that no weight uses.
    """
    started = time.perf_counter()
    meta = engine_metadata(engine)
    where = engine_source or _engine_label(meta)
    try:
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # NaN/Inf are reported as problems
            network = redefine(meta, _as_checkpoint(checkpoint), source=where, check=False)
    except DefinitionError as exc:
        _raise(exc.problems or [str(exc)], where, checkpoint)
    except (RefitError, ValueError) as exc:
        _raise([f"defining the network on the new checkpoint failed: {exc}"], where, checkpoint)
    return _plan(meta, network, [], where, strict, started)


def refit_plan_from_network(
    engine: Engine | Mapping[str, Any],
    network: Any,
    *,
    strict: bool = False,
    engine_source: str | None = None,
) -> RefitPlan:
    """The plan for an engine whose network is not in the registry: ``network`` is your definition
    run on the new checkpoint (a :class:`~netdef.Network`, same names, precision and shapes)."""
    started = time.perf_counter()
    meta = engine_metadata(engine)
    return _plan(meta, network, [], engine_source or _engine_label(meta), strict, started)


def _plan(
    meta: dict[str, Any], network: Any, problems: list[str], where: str, strict: bool, started: float
) -> RefitPlan:
    problems = problems + [f"checkpoint: {p}" for p in network.problems]
    problems += _compare(meta, network)
    unused = list(network.unused_keys())
    if strict:
        problems += [f"checkpoint entry {k!r} is not used by any engine weight (strict)" for k in unused]
    if problems:
        _raise(problems, where, network.checkpoint.source)
    expected = meta.get("weights", {})
    weights = {}
    for name in expected:  # the engine's order
        entry = network.weight_table[name]
        weights[name] = PlannedWeight(name, np.ascontiguousarray(entry.array), entry.sources)
    return RefitPlan(
        weights=weights,
        checkpoint=network.checkpoint.source,
        engine_name=str(meta.get("name", "?")),
        precision=str(meta.get("precision", "?")),
        unused_keys=unused,
        seconds=time.perf_counter() - started,
    )


def _compare(meta: dict[str, Any], network: Any) -> list[str]:
    """Every difference between the engine's weight table and the network's weights.

    (NaN/Inf in the checkpoint, from folding BatchNorm or from casting to fp16/bf16 are problems of
    the definition itself: ``Network.check`` reports them.)"""
    new: Mapping[str, np.ndarray] = network.weight_table.refittable()
    expected: dict[str, dict[str, Any]] = meta.get("weights") or {}
    problems = []
    if not expected:
        problems.append("the engine metadata lists no weights (not a netdef engine, or built without weights)")
    for name, info in expected.items():
        if name not in new:
            problems.append(
                f"missing weight {name!r}: the engine has it ({_describe(info)}), "
                "the new definition does not produce it"
            )
    for name, array in new.items():
        recorded = expected.get(name)
        if recorded is None:
            if expected:
                problems.append(
                    f"extra weight {name!r} ({_describe_array(array)}): the new definition produces it, "
                    "the engine has no such weight"
                )
            continue
        if list(array.shape) != list(recorded["shape"]):
            problems.append(
                f"weight {name!r}: shape changed: engine has {tuple(recorded['shape'])}, new is {tuple(array.shape)}"
            )
        if str(array.dtype) != recorded["dtype"]:
            problems.append(f"weight {name!r}: dtype changed: engine has {recorded['dtype']}, new is {array.dtype}")
    return problems


def _as_checkpoint(checkpoint: CheckpointLike | None) -> Checkpoint | Mapping[str, np.ndarray] | str | Path | None:
    """Plain mappings become a :class:`Checkpoint`; a path is read by :func:`redefine`."""
    if isinstance(checkpoint, Mapping) and not isinstance(checkpoint, Checkpoint):
        return Checkpoint(checkpoint)
    return checkpoint


def _engine_label(meta: Mapping[str, Any]) -> str:
    record = DefinitionRecord.from_metadata(meta)
    name = record.spec if record is not None else meta.get("name", "?")
    return f"engine {name!s} ({meta.get('precision', '?')})"


def _describe(info: Mapping[str, Any]) -> str:
    return f"shape {tuple(info.get('shape', ()))}, {info.get('dtype', '?')}"


def _describe_array(array: np.ndarray) -> str:
    return f"shape {tuple(array.shape)}, {array.dtype}"


def _raise(problems: list[str], where: str, checkpoint: Any) -> NoReturn:
    source = checkpoint.source if isinstance(checkpoint, Checkpoint) else checkpoint
    if source is None:
        source = "the checkpoint it records"
    if isinstance(source, Mapping):
        source = "<in-memory checkpoint>"
    raise RefitError(f"cannot refit {where} from {source}; the engine was not touched", problems)

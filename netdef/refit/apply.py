"""Apply a refit plan with TensorRT's ``Refitter``: to an engine file, an in-memory engine, or a live runner.

Needs a GPU the backend supports (deserializing and refitting run on it); on any other machine
every function here raises :class:`GPUUnavailableError` with the reason before doing anything.
The plan is validated against the engine's own refittable weights (names, element counts, dtypes)
before a single weight is handed over, and ``get_missing_weights()`` must be empty before
``refit_cuda_engine()`` is called, so a refused refit leaves the engine as it was.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from netdef import backend
from netdef.backend import trt
from netdef.compat import backend_problems
from netdef.dtypes import DTypeError, trt_dtype
from netdef.engine import Engine
from netdef.errors import GPUUnavailableError, RefitError
from netdef.refit.plan import CheckpointLike, RefitPlan, engine_metadata, refit_plan

WeightsLike = RefitPlan | Mapping[str, Any]
"""A plan, or ``{engine weight name: numpy array | torch tensor (CPU or CUDA)}``."""


@dataclass
class RefitReport:
    """What a refit did and how long each part took."""

    engine: str
    checkpoint: str
    weights: int
    nbytes: int
    location: str
    """``host`` (NumPy arrays) or ``device`` (CUDA tensors) or ``mixed``."""
    plan_seconds: float = 0.0
    deserialize_seconds: float = 0.0
    refit_seconds: float = 0.0
    serialize_seconds: float = 0.0
    output: Path | None = None

    @property
    def total_seconds(self) -> float:
        return self.plan_seconds + self.deserialize_seconds + self.refit_seconds + self.serialize_seconds


def require_gpu(what: str = "refitting an engine") -> None:
    """Raise :class:`GPUUnavailableError` with :func:`backend.capabilities`'s reason unless engines can run here."""
    caps = backend.capabilities()
    if not caps.can_run:
        raise GPUUnavailableError(f"{what} needs a GPU that {backend.describe()} supports: {caps.reason}")


# --------------------------------------------------------------------------- public entry points


def refit_engine_file(
    engine_path: Path | str,
    checkpoint: CheckpointLike | RefitPlan,
    out_path: Path | str,
    *,
    strict: bool = False,
    location: str = "host",
) -> RefitReport:
    """Refit the engine file ``engine_path`` with ``checkpoint`` and write the result to ``out_path``.

    The input file is never modified; ``out_path`` is written atomically and only after TensorRT
    accepted every weight. ``location="device"`` uploads the new weights to the GPU first (torch).
    """
    require_gpu()
    engine = Engine.load(engine_path)
    refitted, report = refit_engine(engine, checkpoint, strict=strict, location=location, source=str(engine_path))
    report.output = refitted.save(out_path)
    return report


def refit_engine(
    engine: Engine,
    checkpoint: CheckpointLike | RefitPlan,
    *,
    strict: bool = False,
    location: str = "host",
    source: str | None = None,
) -> tuple[Engine, RefitReport]:
    """Refit an in-memory :class:`Engine` (weight-stripped ones included): a new Engine with the weights in it."""
    require_gpu()
    where = source or "engine"
    _check_engine(engine, where)
    plan = _as_plan(engine, checkpoint, strict, where)
    started = time.perf_counter()
    runtime, cuda_engine = deserialize(engine, where)
    deserialized = time.perf_counter()
    location_used = apply_weights(cuda_engine, _weights_at(plan, location), where=where)
    refitted = time.perf_counter()
    plan_bytes = serialize_refitted(cuda_engine)
    serialized = time.perf_counter()
    del runtime
    report = RefitReport(
        engine=where,
        checkpoint=plan.checkpoint,
        weights=len(plan),
        nbytes=plan.nbytes,
        location=location_used,
        plan_seconds=plan.seconds,
        deserialize_seconds=deserialized - started,
        refit_seconds=refitted - deserialized,
        serialize_seconds=serialized - refitted,
    )
    return Engine(plan_bytes, refitted_metadata(engine.metadata, plan, report)), report


def refit_runner(
    runner: Any, checkpoint: CheckpointLike | RefitPlan, *, strict: bool = False, location: str = "host"
) -> RefitReport:
    """Hot swap: refit the engine a live ``netdef.runtime`` Runner executes, in place.

    The plan is computed and validated first, while the runner keeps serving. Then, holding every
    context (``runner.exclusive()``: queued work finished, no new calls start, captured CUDA graphs
    dropped afterwards), ``runner.cuda_engine`` is refit. Its execution contexts stay valid and the
    next inference uses the new weights. ``runner.engine`` (the file's bytes and metadata) is left
    as it was: save a refitted file with :func:`refit_engine_file`.
    """
    require_gpu("refitting a live engine")
    engine: Engine = runner.engine
    where = f"live engine {engine.metadata.get('name', '?')!r}"
    _check_engine(engine, where)
    plan = _as_plan(engine, checkpoint, strict, where)
    weights = _weights_at(plan, location)
    with _paused(runner):
        started = time.perf_counter()
        location_used = apply_weights(runner.cuda_engine, weights, where=where)
        seconds = time.perf_counter() - started
    return RefitReport(
        engine=where,
        checkpoint=plan.checkpoint,
        weights=len(plan),
        nbytes=plan.nbytes,
        location=location_used,
        plan_seconds=plan.seconds,
        refit_seconds=seconds,
    )


@contextlib.contextmanager
def _paused(runner: Any) -> Iterator[None]:
    """No inference in flight on ``runner`` inside the block (``exclusive()`` where the runner has it)."""
    exclusive = getattr(runner, "exclusive", None)
    if exclusive is None:
        runner.synchronize()
        yield
        return
    with exclusive():
        yield


# --------------------------------------------------------------------------- the TensorRT part


def deserialize(engine: Engine, where: str = "engine") -> tuple[Any, Any]:
    """``(runtime, cuda_engine)``: keep the runtime alive as long as the engine."""
    require_gpu("deserializing an engine")
    runtime = backend.create_runtime()
    with backend.capture_errors() as errors:
        cuda_engine = runtime.deserialize_cuda_engine(engine.plan)
    if cuda_engine is None:
        built = f"{engine.backend[0]} {engine.backend[1]}"
        message = f"{where}: {backend.describe()} could not deserialize the plan (built with {built})"
        raise RefitError(message, [], errors)
    return runtime, cuda_engine


def apply_weights(cuda_engine: Any, weights: WeightsLike, *, where: str = "engine") -> str:
    """Hand every weight to a ``trt.Refitter`` and refit ``cuda_engine``; returns the location used.

    Checked first, all at once: every name is a refittable weight of the engine with the element count
    and dtype of its prototype. Then, after setting, TensorRT's ``get_missing_weights()`` must be empty.
    On any of these problems nothing is refit. The arrays are kept alive until ``refit_cuda_engine`` returns.
    """
    items = weights.arrays if isinstance(weights, RefitPlan) else dict(weights)
    refitter = trt.Refitter(cuda_engine, backend.LOGGER)
    # (name, trt.Weights, location, owner): the owners keep the memory alive until refit_cuda_engine returns
    prepared = [(name, *_trt_weights(name, value)) for name, value in items.items()]
    problems = _check_prototypes(refitter, prepared)
    if problems:
        raise RefitError(f"{where}: the new weights do not fit the engine; nothing was refit", problems)
    with backend.capture_errors() as errors:
        rejected = [name for name, w, loc, _ in prepared if not refitter.set_named_weights(name, w, loc)]
        missing = [name or "<unnamed>" for name in refitter.get_missing_weights()]
    if rejected or missing:
        problems = [f"TensorRT rejected weight {n!r}" for n in rejected]
        problems += [f"the engine still needs weight {n!r} (not given)" for n in missing]
        raise RefitError(f"{where}: refit refused before it started; nothing was refit", problems, errors)
    with backend.capture_errors() as errors:
        ok = refitter.refit_cuda_engine()
    if not ok:
        raise RefitError(
            f"{where}: TensorRT's refit_cuda_engine() failed; some weights may already be replaced, "
            "so reload the engine before using it",
            [],
            errors,
        )
    locations = {loc for _, _, loc, _ in prepared}
    return "mixed" if len(locations) > 1 else ("device" if locations == {trt.TensorLocation.DEVICE} else "host")


def serialize_refitted(cuda_engine: Any) -> bytes:
    """Serialize with the weights in (even for a weight-stripped engine) and still refittable."""
    with backend.capture_errors() as errors:
        memory = backend.serialize_with_weights(cuda_engine)
    if memory is None:
        raise RefitError("serializing the refitted engine failed", [], errors)
    return bytes(memoryview(memory))


def refitted_metadata(metadata: Mapping[str, Any], plan: RefitPlan, report: RefitReport) -> dict[str, Any]:
    """The old metadata, updated: new checkpoint, weights present again, and a refit history entry."""
    meta = engine_metadata(metadata)
    previous_sha = meta.pop("plan_sha256", None)
    meta.pop("plan_bytes", None)
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    definition = dict(meta.get("definition") or {})
    definition["checkpoint"] = plan.checkpoint
    meta["definition"] = definition
    meta["weights"] = {w.name: {"shape": list(w.shape), "dtype": w.dtype} for w in plan}
    meta["derived_weights"] = {w.name: list(w.sources) for w in plan if w.derived}
    meta["strip_weights"] = False
    meta["refit"] = True
    meta["refitted"] = now
    meta["refit_history"] = [
        *meta.get("refit_history", []),
        {
            "time": now,
            "checkpoint": plan.checkpoint,
            "from_plan_sha256": previous_sha,
            "weights": len(plan),
            "refit_seconds": round(report.refit_seconds, 4),
            "location": report.location,
        },
    ]
    return meta


# --------------------------------------------------------------------------- helpers


def _check_engine(engine: Engine, where: str) -> None:
    problems = []
    if not engine.refittable:
        problems.append("the engine was not built refittable: rebuild it with `netdef build --refit`")
    problems += backend_problems(engine.metadata, backend.BACKEND, backend.VERSION)
    if problems:
        raise RefitError(f"cannot refit {where}", problems)


def _weights_at(plan: RefitPlan, location: str) -> WeightsLike:
    """The plan itself (host arrays) or its weights uploaded to the GPU as torch tensors."""
    if location not in ("host", "device"):
        raise ValueError(f"location must be 'host' or 'device', got {location!r}")
    return plan if location == "host" else plan.to_device()


def _as_plan(engine: Engine, checkpoint: CheckpointLike | RefitPlan, strict: bool, where: str) -> RefitPlan:
    if isinstance(checkpoint, RefitPlan):
        return checkpoint
    return refit_plan(engine, checkpoint, strict=strict, engine_source=where)


def _trt_weights(name: str, value: Any) -> tuple[Any, Any, Any]:
    """``(trt.Weights, TensorLocation, owner)`` for a NumPy array or a torch tensor (``owner`` keeps it alive)."""
    if isinstance(value, np.ndarray):
        array = np.ascontiguousarray(value)
        weights = trt.Weights(trt_dtype(array.dtype), array.ctypes.data, array.size)
        return weights, trt.TensorLocation.HOST, array
    if hasattr(value, "data_ptr") and hasattr(value, "is_cuda"):  # a torch tensor
        tensor = value.contiguous()
        weights = trt.Weights(_torch_trt_dtype(name, tensor.dtype), tensor.data_ptr(), tensor.numel())
        location = trt.TensorLocation.DEVICE if tensor.is_cuda else trt.TensorLocation.HOST
        return weights, location, tensor
    raise RefitError(f"weight {name!r}: expected a NumPy array or a torch tensor, got {type(value).__name__}")


def _torch_trt_dtype(name: str, dtype: Any) -> Any:
    try:
        return trt_dtype(dtype)
    except DTypeError:
        raise RefitError(f"weight {name!r}: torch dtype {dtype} has no TensorRT equivalent") from None


def _check_prototypes(refitter: Any, prepared: list[tuple[str, Any, Any, Any]]) -> list[str]:
    refittable = set(refitter.get_all_weights())
    problems = []
    for name, weights, _, _ in prepared:
        if name not in refittable:
            problems.append(
                f"weight {name!r} is not refittable in this engine (TensorRT exposes {len(refittable)} "
                "refittable weights; was it marked refittable at build time?)"
            )
            continue
        proto = refitter.get_weights_prototype(name)
        if proto.size != weights.size:
            problems.append(f"weight {name!r}: engine expects {proto.size} elements, new has {weights.size}")
        if proto.dtype != weights.dtype:
            problems.append(f"weight {name!r}: engine expects dtype {proto.dtype}, new is {weights.dtype}")
    return problems

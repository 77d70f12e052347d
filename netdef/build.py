"""Build a :class:`~netdef.Network` into an :class:`~netdef.engine.Engine`.

The plan comes from ``build_serialized_network``; the workspace is a memory-pool limit; precision
is not a builder flag (networks are strongly typed). The engine's metadata records how to define
the network again (:class:`netdef.definition.DefinitionRecord`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from netdef import __version__, backend
from netdef.backend import trt
from netdef.engine import Engine
from netdef.errors import BuildError, NetworkDefinitionError
from netdef.network import Network

BatchRange = tuple[int, int, int]
log = logging.getLogger("netdef.build")


@dataclass
class BuildConfig:
    """How to build.

    ``batch``: (min, opt, max) for inputs whose first dimension is dynamic (-1).
    ``shapes``: per-input (min, opt, max) shapes for any other dynamic dimensions.
    ``workspace``: memory-pool limit in bytes for the workspace (None: TensorRT's default).
    ``refit``: mark every checkpoint-named weight refittable (REFIT_INDIVIDUAL).
    ``strip_weights``: build a weight-stripped plan, refit from a checkpoint at load time.
    ``timing_cache``: a file to read and update (ignored by TensorRT-RTX, which has none).
    """

    batch: BatchRange | None = None
    shapes: dict[str, tuple[Sequence[int], Sequence[int], Sequence[int]]] = field(default_factory=dict)
    workspace: int | None = None
    refit: bool = False
    strip_weights: bool = False
    timing_cache: Path | None = None
    optimization_level: int | None = None
    progress_monitor: Any = None

    def __post_init__(self) -> None:
        if self.batch is not None:
            lo, opt, hi = self.batch
            if not 1 <= lo <= opt <= hi:
                raise ValueError(f"batch range must satisfy 1 <= min <= opt <= max, got {self.batch}")


def parse_batch(text: str) -> BatchRange:
    """``"1:8:64"`` -> (1, 8, 64); ``"8"`` -> (8, 8, 8)."""
    try:
        parts = [int(p) for p in text.split(":")]
    except ValueError:
        raise ValueError(f"batch {text!r}: expected N or MIN:OPT:MAX") from None
    if len(parts) == 1:
        parts *= 3
    if len(parts) != 3:
        raise ValueError(f"batch {text!r}: expected N or MIN:OPT:MAX")
    return BuildConfig(batch=tuple(parts)).batch  # type: ignore[arg-type, return-value]


def parse_size(text: str) -> int:
    """``"512M"``, ``"2G"``, ``"1048576"`` -> bytes."""
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    text = text.strip().upper().removesuffix("B").removesuffix("I")
    try:
        if text and text[-1] in units:
            return int(float(text[:-1]) * units[text[-1]])
        return int(text)
    except ValueError:
        raise ValueError(f"size {text!r}: expected bytes or a number with K, M or G") from None


def build(network: Network, config: BuildConfig | None = None, *, definition: dict[str, Any] | None = None) -> Engine:
    """Check ``network``'s weights, build it, and return the engine with its metadata.

    The metadata records how to define the network again (``network.definition``, which networks
    defined by a registered function carry): the definition function, options, inputs, precision,
    calibration and checkpoint with its fingerprint, so the engine can be run by the reference
    executor, inspected and refit from any directory. ``definition`` overrides recorded fields.
    A network assembled ad hoc has no such record: a warning says so.
    """
    config = config or BuildConfig()
    network.check()
    if network.definition is None and definition is None:
        log.warning(
            "network %r was assembled ad hoc (no registered definition function): its engine cannot be run "
            "by the reference executor or refit from the command line; in Python use "
            "netdef.refit.refit_plan_from_network(engine, network), or build from a function decorated "
            "with @netdef.register",
            network.name,
        )
    builder_config = _builder_config(network, config)
    network.checkpoint.release_pages()  # the weights are the table's copies now: the file need not stay resident
    started = time.perf_counter()
    plan = backend.build_serialized_network(network.builder, network.trt_network, builder_config)
    seconds = time.perf_counter() - started
    _save_timing_cache(builder_config, config)
    return Engine(plan, _metadata(network, config, seconds, definition))


def _builder_config(network: Network, config: BuildConfig) -> Any:
    builder_config = network.builder.create_builder_config()
    if config.workspace is not None:
        builder_config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, config.workspace)
    if config.optimization_level is not None:
        builder_config.builder_optimization_level = config.optimization_level
    if config.progress_monitor is not None:
        builder_config.progress_monitor = config.progress_monitor
    if config.refit or config.strip_weights:
        _configure_refit(network, builder_config, config)
    profile = _profile(network, config)
    if profile is not None:
        builder_config.add_optimization_profile(profile)
    _load_timing_cache(builder_config, config)
    return builder_config


REFIT_MODE = "individual"
"""REFIT_INDIVIDUAL with every checkpoint-derived weight marked refittable: each weight the refitter
may need has a name we know. Plain REFIT is avoided: TensorRT 11.3 documents that it can drop a GEMM
bias (treated as zero, not exposed to the refitter) even without a refit. tests/test_refit.py checks on
a GPU that a refittable engine computes what a plain one does, which would catch the same bug here."""


def _configure_refit(network: Network, builder_config: Any, config: BuildConfig) -> None:
    builder_config.set_flag(backend.refit_builder_flag(REFIT_MODE))
    refittable = [e.name for e in network.weight_table if e.refittable]
    refused = [name for name in refittable if not network.trt_network.mark_weights_refittable(name)]
    if refused:
        raise BuildError(f"TensorRT refused to mark {len(refused)} weight(s) refittable: {', '.join(refused)}")
    if config.strip_weights:  # with REFIT_INDIVIDUAL, exactly the marked weights are stripped
        builder_config.set_flag(trt.BuilderFlag.STRIP_PLAN)


def _profile(network: Network, config: BuildConfig) -> Any:
    net = network.trt_network
    inputs = [net.get_input(i) for i in range(net.num_inputs)]
    unknown = sorted(set(config.shapes) - {t.name for t in inputs})
    if unknown:
        raise NetworkDefinitionError(
            f"BuildConfig.shapes names {unknown}, which are not inputs of {network.name!r} "
            f"(inputs: {[t.name for t in inputs]})"
        )
    dynamic = [t for t in inputs if any(d == -1 for d in t.shape)]
    if not dynamic:
        return None
    profile = network.builder.create_optimization_profile()
    problems = []
    for tensor in dynamic:
        shape = tuple(tensor.shape)
        if tensor.name in config.shapes:
            lo, opt, hi = (tuple(s) for s in config.shapes[tensor.name])
        elif config.batch is not None and -1 not in shape[1:]:
            lo, opt, hi = ((b, *shape[1:]) for b in config.batch)
        else:
            problems.append(
                f"input {tensor.name!r} has dynamic shape {shape}: give BuildConfig(batch=(min, opt, max))"
                + (" and shapes for the other dynamic dimensions" if -1 in shape[1:] else "")
            )
            continue
        profile.set_shape(tensor.name, lo, opt, hi)
    if problems:
        raise NetworkDefinitionError("the network's dynamic inputs need an optimization profile", problems)
    return profile


def _load_timing_cache(builder_config: Any, config: BuildConfig) -> None:
    if config.timing_cache is None or backend.IS_RTX:
        return
    from netdef.fileio import read_regular_file

    path = Path(config.timing_cache)
    data = read_regular_file(path, "timing cache") if path.exists() else b""
    cache = builder_config.create_timing_cache(data)
    builder_config.set_timing_cache(cache, ignore_mismatch=False)


def _save_timing_cache(builder_config: Any, config: BuildConfig) -> None:
    if config.timing_cache is None or backend.IS_RTX:
        return
    cache = builder_config.get_timing_cache()
    if cache is not None:
        from netdef.fileio import write_bytes

        write_bytes(config.timing_cache, bytes(memoryview(cache.serialize())))


def _metadata(network: Network, config: BuildConfig, seconds: float, definition: dict[str, Any] | None) -> dict:
    caps = backend.capabilities()
    profile: dict[str, Any] = {}
    dynamic_batch = any(t["shape"][:1] == [-1] for t in network.io_tensors() if t["mode"] == "input")
    if config.batch is not None and dynamic_batch:  # a static network has no batch range
        profile["batch"] = list(config.batch)
    if config.shapes:
        profile["shapes"] = {k: [list(s) for s in v] for k, v in config.shapes.items()}
    return {
        "netdef_version": __version__,
        "backend": backend.BACKEND,
        "backend_version": backend.VERSION,
        "built_on_gpu": {"name": caps.gpu.name, "compute_capability": list(caps.gpu.compute_capability)}
        if caps.gpu
        else None,
        "name": network.name,
        "precision": network.precision.name,
        "io_dtype": network.io_precision.name,
        "io": network.io_tensors(),
        "profile": profile,
        "num_layers": network.num_layers,
        **network.weight_table.metadata(),  # "weights" and "derived_weights"
        "refit": bool(config.refit or config.strip_weights),
        "refit_mode": REFIT_MODE if (config.refit or config.strip_weights) else None,
        "strip_weights": bool(config.strip_weights),
        "build_seconds": round(seconds, 4),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "definition": _definition(network, definition),
    }


def _definition(network: Network, overrides: dict[str, Any] | None) -> dict[str, Any] | None:
    """The network's definition record as stored (fingerprint included), with ``overrides`` applied."""
    recorded = network.definition.to_json() if network.definition is not None else None
    if overrides is None:
        return recorded
    merged = {**(recorded or {}), **overrides}
    if "checkpoint" in overrides and overrides["checkpoint"] != (recorded or {}).get("checkpoint"):
        merged["checkpoint_fingerprint"] = _fingerprint(overrides["checkpoint"])
    return merged


def _fingerprint(path: Any) -> dict[str, Any] | None:
    from netdef.weights.fingerprint import fingerprint

    return fingerprint(path) if path and Path(str(path)).is_file() else None

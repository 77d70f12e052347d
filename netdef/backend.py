"""Which TensorRT is present, what this machine can do with it, and TensorRT's logger.

netdef runs on TensorRT 10.x/11.x (module ``tensorrt``) or TensorRT-RTX (module
``tensorrt_rtx``); both expose the same network-definition API. This module is the
only place that knows the difference: everything else does ``from netdef.backend
import trt``.

Selection: ``tensorrt`` when importable, else ``tensorrt_rtx``. The environment
variable ``NETDEF_BACKEND=tensorrt|rtx`` forces one.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import importlib
import logging
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from netdef.errors import BackendNotFoundError, BuildError

_MODULES = {"tensorrt": "tensorrt", "rtx": "tensorrt_rtx"}
_EXTRAS = {"tensorrt": "netdef-trt[tensorrt]", "rtx": "netdef-trt[rtx]"}

# TensorRT-RTX targets these compute capabilities only (measured: Hopper's 9.0 is refused).
_RTX_COMPUTE_CAPABILITIES = {(7, 5), (8, 0), (8, 6), (8, 9), (12, 0), (12, 1)}
# TensorRT 10/11 support Turing (7.5) and newer.
_TRT_MIN_COMPUTE_CAPABILITY = (7, 5)

trt_log = logging.getLogger("netdef.trt")


def _import_backend() -> tuple[Any, str]:
    forced = os.environ.get("NETDEF_BACKEND", "").strip().lower()
    if forced and forced not in _MODULES:
        raise BackendNotFoundError(f"NETDEF_BACKEND={forced!r} is not a backend: expected one of {sorted(_MODULES)}")
    candidates = [forced] if forced else ["tensorrt", "rtx"]
    failures = []
    for name in candidates:
        try:
            module = importlib.import_module(_MODULES[name])
        except ImportError as exc:
            failures.append(f"{_MODULES[name]}: {exc}")
            continue
        if not hasattr(module, "Builder"):  # e.g. a stubs-only namespace package
            failures.append(f"{_MODULES[name]}: imported {module!r} but it has no Builder")
            continue
        return module, name
    extras = " or ".join(f"pip install '{_EXTRAS[n]}'" for n in candidates)
    raise BackendNotFoundError(
        "no TensorRT backend could be imported (" + "; ".join(failures) + f"). Install one: {extras}"
    )


trt: Any
BACKEND: str
trt, BACKEND = _import_backend()
"""The selected TensorRT module and its short name, ``"tensorrt"`` or ``"rtx"``."""

VERSION: str = trt.__version__
IS_RTX: bool = BACKEND == "rtx"
MAJOR_VERSION: int = int(VERSION.split(".")[0])


def describe() -> str:
    """One line naming the backend, e.g. ``tensorrt_rtx 1.7.1.116``."""
    return f"{_MODULES[BACKEND]} {VERSION}"


# --------------------------------------------------------------------------- GPUs


@dataclass(frozen=True)
class GPU:
    index: int
    name: str
    compute_capability: tuple[int, int]

    @property
    def sm(self) -> str:
        major, minor = self.compute_capability
        return f"sm_{major}{minor}"


@functools.cache
def gpus() -> tuple[GPU, ...]:
    """The CUDA GPUs visible through the driver (``libcuda``), without needing a CUDA toolkit."""
    try:
        cuda = ctypes.CDLL("libcuda.so.1")
    except OSError:
        return ()
    if cuda.cuInit(0) != 0:
        return ()
    count = ctypes.c_int(0)
    if cuda.cuDeviceGetCount(ctypes.byref(count)) != 0:
        return ()
    found = []
    for index in range(count.value):
        device = ctypes.c_int(0)
        if cuda.cuDeviceGet(ctypes.byref(device), index) != 0:
            continue
        major, minor = ctypes.c_int(0), ctypes.c_int(0)
        cuda.cuDeviceGetAttribute(ctypes.byref(major), 75, device)  # COMPUTE_CAPABILITY_MAJOR
        cuda.cuDeviceGetAttribute(ctypes.byref(minor), 76, device)  # COMPUTE_CAPABILITY_MINOR
        name = ctypes.create_string_buffer(256)
        cuda.cuDeviceGetName(name, 256, device)
        found.append(GPU(index, name.value.decode(errors="replace"), (major.value, minor.value)))
    return tuple(found)


def gpu_is_supported(gpu: GPU) -> bool:
    """Whether the selected backend can run engines on ``gpu``."""
    if IS_RTX:
        return gpu.compute_capability in _RTX_COMPUTE_CAPABILITIES
    return gpu.compute_capability >= _TRT_MIN_COMPUTE_CAPABILITY


@dataclass(frozen=True)
class Capabilities:
    backend: str
    version: str
    can_build: bool
    """Engines can be built here (TensorRT-RTX builds on the CPU; TensorRT needs a GPU)."""
    can_build_refittable: bool
    """Engines with refittable or stripped weights can be built here (needs a supported GPU)."""
    can_run: bool
    """Engines can be deserialized, executed and refit here (needs a supported GPU)."""
    gpu: GPU | None
    reason: str
    """Why something cannot be done, in words; empty when everything can."""


@functools.cache
def capabilities() -> Capabilities:
    """What this machine can do with the selected backend."""
    visible = gpus()
    supported = [g for g in visible if gpu_is_supported(g)]
    gpu = supported[0] if supported else None
    if gpu is not None:
        reason = ""
    elif visible:
        names = ", ".join(f"{g.name} ({g.sm})" for g in visible)
        reason = f"{describe()} does not support the GPUs present: {names}"
    else:
        reason = "no CUDA GPU is visible on this machine"
    return Capabilities(
        backend=BACKEND,
        version=VERSION,
        can_build=IS_RTX or gpu is not None,
        can_build_refittable=gpu is not None,
        can_run=gpu is not None,
        gpu=gpu,
        reason=reason,
    )


# --------------------------------------------------------------------------- logging

_SEVERITY_TO_LEVEL = {
    trt.ILogger.Severity.INTERNAL_ERROR: logging.CRITICAL,
    trt.ILogger.Severity.ERROR: logging.ERROR,
    trt.ILogger.Severity.WARNING: logging.WARNING,
    trt.ILogger.Severity.INFO: logging.INFO,
    trt.ILogger.Severity.VERBOSE: logging.DEBUG,
}


def is_cpu_only_noise(message: str) -> bool:
    """TensorRT-RTX on a machine without a GPU follows each error with a spurious CUDA error line."""
    return "catchCudaError" in message or "cudaError 35" in message


class _Logger(trt.ILogger):
    """Forwards TensorRT's messages to the ``netdef.trt`` Python logger and collects errors."""

    def __init__(self) -> None:
        trt.ILogger.__init__(self)
        self._local = threading.local()

    @property
    def _captures(self) -> list[list[str]]:
        if not hasattr(self._local, "captures"):
            self._local.captures = []
        return self._local.captures

    def log(self, severity: Any, msg: str) -> None:  # called by TensorRT; must never raise
        try:
            level = _SEVERITY_TO_LEVEL.get(severity, logging.INFO)
            if level >= logging.ERROR and is_cpu_only_noise(msg):
                level = logging.DEBUG
            elif level >= logging.ERROR:
                for capture in self._captures:
                    capture.append(msg)
            trt_log.log(level, "%s", msg)
        except Exception:  # noqa: BLE001 - TensorRT swallows exceptions from callbacks anyway
            pass


LOGGER = _Logger()
"""The one TensorRT logger netdef uses (TensorRT wants a single logger per process)."""


@contextlib.contextmanager
def capture_errors() -> Iterator[list[str]]:
    """Collect the error lines TensorRT logs on this thread inside the block."""
    errors: list[str] = []
    captures = LOGGER._captures
    captures.append(errors)
    try:
        yield errors
    finally:  # by identity: list.remove would take the first *equal* list, e.g. an enclosing capture's
        del captures[next(i for i in reversed(range(len(captures))) if captures[i] is errors)]


# --------------------------------------------------------------------------- builders


def create_builder() -> Any:
    """A ``trt.Builder`` using netdef's logger."""
    return trt.Builder(LOGGER)


def create_network(builder: Any) -> Any:
    """A strongly typed network: precision comes from tensor dtypes and casts, never builder flags."""
    flag = 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    network = builder.create_network(flag)
    if network is None:
        raise BuildError(f"{describe()} refused to create a network with creation flags {flag}")
    return network


def build_serialized_network(builder: Any, network: Any, config: Any) -> memoryview:
    """Build a plan, raising :class:`BuildError` with TensorRT's own messages when it fails.

    The plan stays in TensorRT's host memory, seen through a read-only byte view (which keeps that
    memory alive): no copy of a plan that can be hundreds of MB."""
    with capture_errors() as errors:
        plan = builder.build_serialized_network(network, config)
    if plan is None:
        raise BuildError(f"{describe()} failed to build the engine", errors)
    return memoryview(plan).cast("B").toreadonly()


def refit_builder_flag(mode: str) -> Any:
    """The BuilderFlag for a refit ``mode``: ``"individual"``, ``"identical"`` or ``"all"``."""
    return {
        "individual": trt.BuilderFlag.REFIT_INDIVIDUAL,
        "identical": trt.BuilderFlag.REFIT_IDENTICAL,
        "all": trt.BuilderFlag.REFIT,
    }[mode]


def create_runtime() -> Any:
    return trt.Runtime(LOGGER)


def add_normalization(network: Any, x: Any, scale: Any, bias: Any, axes: int) -> Any:
    """A normalization layer: ``add_normalization_v2`` (TensorRT 10.15+, 11, RTX) where it exists, which
    supersedes ``add_normalization``; both compute the same for layer norm."""
    add = getattr(network, "add_normalization_v2", None) or network.add_normalization
    return add(x, scale, bias, axes)


# --------------------------------------------------------------------------- engines

HAS_NATIVE_CUDA_GRAPHS: bool = hasattr(trt, "CudaGraphStrategy")
"""TensorRT-RTX can capture CUDA graphs itself, through a runtime configuration."""


def create_execution_context(cuda_engine: Any, *, cuda_graph: bool = False) -> tuple[Any, Any]:
    """``(context, runtime_config)``; with ``cuda_graph`` and a backend that captures CUDA graphs
    itself, the context is made with whole-graph capture (``runtime_config`` must then outlive it).
    """
    if cuda_graph and HAS_NATIVE_CUDA_GRAPHS and hasattr(cuda_engine, "create_runtime_config"):
        config = cuda_engine.create_runtime_config()
        config.cuda_graph_strategy = trt.CudaGraphStrategy.WHOLE_GRAPH_CAPTURE
        return cuda_engine.create_execution_context(config), config
    return cuda_engine.create_execution_context(), None


def serialize_with_weights(cuda_engine: Any) -> Any:
    """Serialize an engine with its weights in (even a weight-stripped one) and still refittable.

    Returns TensorRT's host memory, or None when TensorRT fails (it logs why).
    """
    config = cuda_engine.create_serialization_config()
    config.clear_flag(trt.SerializationFlag.EXCLUDE_WEIGHTS)
    include_refit = getattr(trt.SerializationFlag, "INCLUDE_REFIT", None)  # TensorRT >= 10.14 and RTX
    if include_refit is not None:
        config.set_flag(include_refit)
    return cuda_engine.serialize_with_config(config)

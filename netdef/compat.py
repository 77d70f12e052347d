"""Can this engine run here? Backend, version and GPU checks made before TensorRT sees the plan.

TensorRT plans are not portable: a plan runs only on the TensorRT (or TensorRT-RTX) version that
built it, and a plan built for one GPU model is not guaranteed to run on another. The engine
file's metadata records what built it; these checks compare that with this machine and name
both sides.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from netdef.engine import Engine
from netdef.errors import EngineMismatchError, GPUUnavailableError

_MODULE_NAMES = {"tensorrt": "tensorrt", "rtx": "tensorrt_rtx"}


def _backend_text(name: str, version: str) -> str:
    return f"{_MODULE_NAMES.get(name, name)} {version}"


def _rebuild_hint(metadata: Mapping[str, Any]) -> str:
    definition = metadata.get("definition") or {}
    arch, checkpoint = definition.get("architecture"), definition.get("checkpoint")
    if definition.get("file") and definition.get("function") and not definition.get("module"):
        arch = f"{definition['file']}:{definition['function']}"
    if arch and checkpoint:
        return f"; rebuild it here: netdef build {arch} --weights {checkpoint} -o ENGINE"
    return "; rebuild it here with netdef build"


def backend_problems(metadata: Mapping[str, Any], backend: str, version: str) -> list[str]:
    """Why an engine with ``metadata`` cannot be deserialized by TensorRT ``backend`` ``version``."""
    built_backend, built_version = metadata.get("backend"), metadata.get("backend_version")
    if not built_backend or not built_version:
        return ["the engine metadata does not say which TensorRT built it ('backend', 'backend_version')"]
    here = _backend_text(backend, version)
    there = _backend_text(built_backend, built_version)
    if built_backend != backend:
        return [f"built with {there}, but this netdef runs {here}: one TensorRT flavour never loads the other's plans"]
    if built_version != version:
        return [f"built with {there}, but this netdef runs {here}: a plan loads only in the version that built it"]
    return []


def gpu_problems(metadata: Mapping[str, Any], gpu: Any) -> list[str]:
    """Why an engine built on ``metadata['built_on_gpu']`` should not run on ``gpu`` (a ``backend.GPU``).

    An engine built without a GPU (TensorRT-RTX builds on the CPU) is not tied to one.
    """
    built = metadata.get("built_on_gpu")
    if not built:
        return []
    built_cc = tuple(int(c) for c in built.get("compute_capability", ()))
    if built_cc and built_cc != tuple(gpu.compute_capability):
        built_sm = "sm_" + "".join(str(c) for c in built_cc)
        return [
            f"built on {built.get('name', '?')} ({built_sm}), but device {gpu.index} is {gpu.name} ({gpu.sm}): "
            "TensorRT plans are specific to the GPU's compute capability"
        ]
    return []


def select_gpu(device: int, gpus: tuple[Any, ...], supported: Any, backend_text: str) -> Any:
    """The GPU with index ``device``, refusing a missing or unsupported one with the reason."""
    if not isinstance(device, int) or isinstance(device, bool) or device < 0:
        raise ValueError(f"device must be a CUDA device index >= 0, got {device!r}")
    if not gpus:
        raise GPUUnavailableError("no CUDA GPU is visible on this machine")
    if device >= len(gpus):
        listing = ", ".join(f"{g.index}: {g.name}" for g in gpus)
        raise GPUUnavailableError(f"CUDA device {device} does not exist; this machine has {len(gpus)} ({listing})")
    gpu = gpus[device]
    if not supported(gpu):
        raise GPUUnavailableError(f"{backend_text} cannot run engines on device {device}, {gpu.name} ({gpu.sm})")
    return gpu


def load_engine(source: Engine | str | Path, device: int = 0) -> Engine:
    """Read (or take) an engine and verify it can run on CUDA ``device`` here; returns the :class:`Engine`.

    Raises :class:`~netdef.errors.EngineFileError` for a damaged file,
    :class:`~netdef.errors.EngineMismatchError` when another TensorRT version or GPU built it, and
    :class:`~netdef.errors.GPUUnavailableError` (with :func:`netdef.backend.capabilities`' reason)
    when this machine cannot run engines.
    """
    from netdef import backend

    if isinstance(source, Engine):
        engine, where = source, f"engine {source.metadata.get('name', '?')!r}"
    else:
        engine, where = Engine.load(source), str(source)
    problems = backend_problems(engine.metadata, backend.BACKEND, backend.VERSION)
    if problems:
        raise EngineMismatchError(f"{where}: " + "; ".join(problems) + _rebuild_hint(engine.metadata))
    caps = backend.capabilities()
    if not caps.can_run:
        raise GPUUnavailableError(f"{where}: cannot run engines on this machine: {caps.reason}")
    gpu = select_gpu(device, backend.gpus(), backend.gpu_is_supported, backend.describe())
    problems = gpu_problems(engine.metadata, gpu)
    if problems:
        raise EngineMismatchError(f"{where}: " + "; ".join(problems) + _rebuild_hint(engine.metadata))
    return engine

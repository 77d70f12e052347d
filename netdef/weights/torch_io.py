"""PyTorch ``.pth``/``.pt``/``.bin`` checkpoints, read safely and, where possible, without torch.

``torch.save`` (since 1.6) writes a zip: ``<name>/data.pkl`` (a small pickle describing the
tensors), ``<name>/data/<key>`` (the raw storages, stored uncompressed) and ``<name>/byteorder``.
netdef reads that format itself: the zip is
memory-mapped, tensors become zero-copy NumPy views of their storages, and the pickle is read by
a restricted unpickler that knows only the handful of globals a plain state_dict needs and
imports none of them. Anything else (another global, a legacy non-zip file, a big-endian file, a
damaged archive) goes to ``torch.load(weights_only=True)``, whose allow-list is a superset; so a
file whose unpickling would run arbitrary code is refused either way, never executed.

Training scripts often save ``{"state_dict": ...}`` or ``{"model": ..., "optimizer": ...}``;
the tensors are found wherever they are nested.
"""

from __future__ import annotations

import math
import mmap
import pickle
import pickletools
import re
import struct
import sys
import zipfile
from collections import Counter, OrderedDict
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from netdef import dtypes
from netdef.errors import CheckpointError
from netdef.fileio import map_read_only
from netdef.weights.formats import register_reader
from netdef.weights.ultralytics_pickle import module_record, pickled_model

_MAX_DIMS = 32
_MAX_NESTING = 8
_WRAPPER_KEYS = ("state_dict", "model_state_dict", "model", "module", "net", "weights", "params")


@register_reader(".pth", ".pt", ".bin")
def read_torch(path: Path) -> dict[str, np.ndarray]:
    try:
        obj = read_torch_zip(path)
    except _Refused as exc:
        raise CheckpointError(f"{path}: refused: {exc}") from None
    except UnsafeGlobalError as exc:
        if not _torch_available() or exc.in_pickled_module:  # torch would refuse it too: say so without it
            raise _refusal(path, str(exc)) from None
        obj = None
    except Exception:  # noqa: BLE001 - anything unusual is torch.load's to read (or to explain)
        obj = None
    if obj is None:
        return _read_with_torch(path)
    model = pickled_model(obj)  # a whole pickled nn.Module (Ultralytics' checkpoints), read as inert records
    state = model.state_dict() if model is not None else _find_state_dict(obj, lambda v: isinstance(v, np.ndarray))
    if not state:
        raise CheckpointError(f"{path}: no tensors found (top-level type {type(obj).__name__})")
    return dict(state)


# ---------------------------------------------------------------------------- torch-free zip reader


class UnsafeGlobalError(pickle.UnpicklingError):
    """The pickle names a global outside netdef's allow-list (it was not imported)."""

    in_pickled_module = False
    """Found in a pickled model (read as inert records so far), which torch.load(weights_only) refuses anyway."""


class _Fallback(Exception):
    """Valid, perhaps, but not something the torch-free reader handles: torch.load decides."""


class _Refused(Exception):
    """The file asks for memory it does not hold (or is damaged beyond doubt): refused, torch.load never sees it."""


class _StorageType:
    """Stands in for ``torch.FloatStorage`` & co. (``UntypedStorage``: bytes, typed by the tensor)."""

    def __init__(self, name: str):
        self.name = name
        typed = dtypes.from_storage(name)  # None for UntypedStorage: bytes
        self.dtype: np.dtype = np.dtype(np.uint8) if typed is None else typed


class _Dtype:
    """Stands in for a ``torch.<dtype>`` global."""

    def __init__(self, name: str):
        self.dtype = dtypes.from_torch_name(name)


def read_torch_zip(path: Path) -> Any:
    """The object ``torch.save`` wrote to ``path``, tensors as read-only NumPy arrays, without torch.

    Raises :class:`UnsafeGlobalError` for a global outside the allow-list and other exceptions
    for files this reader does not handle (legacy format, big-endian, damaged archives).
    """
    with open(path, "rb") as f:
        if f.read(4) != b"PK\x03\x04":
            raise _Fallback("not a zip archive (legacy torch.save format)")
        buffer = map_read_only(f)
    with zipfile.ZipFile(path) as archive:
        entries = {info.filename: info for info in archive.infolist()}
        _check_entry_sizes(entries.values(), len(buffer))
        pickles = [name for name in entries if name.endswith("/data.pkl") and name.count("/") == 1]
        if len(pickles) != 1:
            raise _Fallback(f"expected one <name>/data.pkl, found {pickles}")
        prefix = pickles[0][: -len("data.pkl")]
        byteorder = entries.get(prefix + "byteorder")
        if byteorder is not None and archive.read(byteorder).decode() != sys.byteorder:
            raise _Fallback("byte order differs from this machine's")
        data = archive.read(pickles[0])
        calls_bytearray = _scan_pickle(data)
        storages: dict[str, np.ndarray] = {}

        def storage_bytes(key: str, nbytes: int) -> np.ndarray:
            if key not in storages:
                info = entries.get(f"{prefix}data/{key}")
                if info is None:
                    raise _Refused(f"storage {key!r} is not in the archive")
                storages[key] = _entry_bytes(archive, buffer, info, nbytes)
            return storages[key]

        try:
            return _TensorUnpickler(data, storage_bytes, len(buffer) + (64 << 20)).load()
        except (UnsafeGlobalError, _Fallback) as exc:
            if calls_bytearray:  # torch.load's allow-list has bytearray(N) of any size: never hand it such a file
                raise _Refused(
                    f"{exc}; and the pickle calls bytearray, which only netdef's own reader bounds"
                ) from None
            raise


def _check_entry_sizes(entries: Any, file_size: int) -> None:
    """torch.save stores entries uncompressed: no entry may inflate beyond the archive itself."""
    for info in entries:
        if info.file_size > file_size:
            raise _Refused(
                f"zip entry {info.filename!r} declares {info.file_size} bytes uncompressed, more than the whole "
                f"file ({file_size} bytes); torch.save never writes such entries"
            )


def _scan_pickle(data: bytes) -> bool:
    """Walk the pickle's opcodes without running them (no allocation beyond ``data``): whether it names
    ``bytearray``. A pickle that is truncated or malformed is refused here."""
    calls_bytearray = False
    try:
        for opcode, arg, _ in pickletools.genops(data):
            if isinstance(arg, str) and "bytearray" in arg:
                calls_bytearray = True
            if opcode.name == "STOP":
                break
    except Exception as exc:  # noqa: BLE001 - pickletools raises ValueError and friends for damage
        raise _Refused(f"damaged pickle data.pkl ({type(exc).__name__}: {exc})") from None
    return calls_bytearray


def _entry_bytes(archive: zipfile.ZipFile, buffer: mmap.mmap, info: zipfile.ZipInfo, nbytes: int) -> np.ndarray:
    """A zip entry's bytes: a view of the mapped file when stored uncompressed, else the first ``nbytes``
    decompressed (never more: a small entry may inflate to gigabytes)."""
    if info.compress_type != zipfile.ZIP_STORED:
        with archive.open(info) as member:
            return np.frombuffer(member.read(min(nbytes, info.file_size)), np.uint8)
    header = buffer[info.header_offset : info.header_offset + 30]
    if len(header) != 30 or header[:4] != b"PK\x03\x04":
        raise _Fallback(f"{info.filename}: bad local header")
    name_length, extra_length = struct.unpack("<HH", header[26:30])
    start = info.header_offset + 30 + name_length + extra_length
    if start + info.file_size > len(buffer):
        raise _Fallback(f"{info.filename}: entry runs past the end of the file")
    return np.frombuffer(buffer, np.uint8, info.file_size, start)


class _TensorUnpickler(pickle.Unpickler):
    """Unpickles ``data.pkl`` with a fixed allow-list of globals, none of them imported."""

    def __init__(self, data: bytes, storage_bytes: Callable[[str, int], np.ndarray], copy_budget: int = 64 << 20):
        import io

        super().__init__(io.BytesIO(data))
        self._storage_bytes = storage_bytes
        self._copy_budget = _CopyBudget(copy_budget)

    def find_class(self, module: str, name: str) -> Any:
        module = "builtins" if module == "__builtin__" else module  # Python 2 names in protocol 2 pickles
        allowed = _ALLOWED.get(f"{module}.{name}")
        if allowed is not None:
            return allowed
        if module == "torch" and dtypes.from_storage(name) is not None:
            return _StorageType(name)
        if module == "torch.storage" and name == "UntypedStorage":
            return _StorageType(name)
        if module == "torch" and dtypes.from_torch_name(name) is not None:
            return _Dtype(name)
        record = module_record(module, name)  # ultralytics.* / torch.nn.modules.* classes: inert, never imported
        if record is not None:
            self._records_seen = True
            return record
        error = UnsafeGlobalError(f"Unsupported global: GLOBAL {module}.{name} is not a plain tensor type")
        error.in_pickled_module = getattr(self, "_records_seen", False)
        raise error

    def persistent_load(self, pid: Any) -> Any:
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
            raise _Fallback(f"unknown persistent id {pid!r}")
        _, storage_type, key, _location, numel = pid
        if not isinstance(storage_type, _StorageType):
            raise _Fallback(f"unknown storage type {storage_type!r}")
        if not isinstance(numel, int) or numel < 0:
            raise _Refused(f"storage {key!r}: element count {numel!r} is not a non-negative integer")
        nbytes = numel * storage_type.dtype.itemsize
        raw = self._storage_bytes(str(key), nbytes)
        if raw.size < nbytes:
            raise _Fallback(f"storage {key} holds {raw.size} bytes, {nbytes} expected")
        return _Storage(raw[:nbytes], storage_type.dtype, self._copy_budget)


class _CopyBudget:
    """Bytes that strided tensors may still be copied into (views of one storage cost nothing)."""

    def __init__(self, nbytes: int):
        self.left = nbytes

    def spend(self, nbytes: int, size: tuple) -> None:
        if nbytes > self.left:
            raise _Refused(
                f"copying strided tensors (size {size}) would allocate more than the file justifies "
                "(its size plus 64 MiB in all)"
            )
        self.left -= nbytes


class _Storage:
    def __init__(self, raw: np.ndarray, dtype: np.dtype, budget: _CopyBudget):
        self.raw, self.dtype, self.budget = raw, dtype, budget


def _rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks, metadata=None):
    if metadata:  # e.g. conjugate or negative bits: torch's job
        raise _Fallback("tensor metadata")
    return _as_array(storage, storage.dtype, offset, size, stride)


def _rebuild_tensor_v3(storage, offset, size, stride, requires_grad, hooks, dtype, metadata=None):
    if metadata or not isinstance(dtype, _Dtype):
        raise _Fallback("tensor metadata or unknown dtype")
    return _as_array(storage, dtype.dtype, offset, size, stride)


def _as_array(storage: _Storage, dtype: np.dtype, offset: int, size: tuple, stride: tuple) -> np.ndarray:
    """The tensor ``(offset, size, stride)`` (in elements) of ``storage``: a view if contiguous, else a copy."""
    if not isinstance(storage, _Storage):
        raise _Fallback("tensor without a storage")
    raw = storage.raw[: storage.raw.size - storage.raw.size % dtype.itemsize]
    size, stride, offset = tuple(int(s) for s in size), tuple(int(s) for s in stride), int(offset)
    if len(size) != len(stride) or min((*size, *stride, offset), default=0) < 0 or len(size) > _MAX_DIMS:
        raise _Refused(f"bad tensor size {size} / stride {stride} / offset {offset}")
    if 0 in size:
        return np.zeros(size, dtype)
    if raw.ctypes.data % dtype.alignment:  # storages of old files need not be aligned
        storage.budget.spend(raw.size, size)
        raw = raw.copy()
    count = raw.size // dtype.itemsize
    last = offset + sum((n - 1) * s for n, s in zip(size, stride, strict=True))
    if last >= count:
        raise _Refused(f"a tensor reaches element {last} of a storage of {count}")
    strides = tuple(s * dtype.itemsize for s in stride)
    # np.ndarray, not as_strided: as_strided's __array_interface__ cannot carry ml_dtypes' bfloat16/float8.
    array = np.ndarray(size, dtype, buffer=raw, offset=offset * dtype.itemsize, strides=strides)
    if not array.flags.c_contiguous:
        storage.budget.spend(math.prod(size) * dtype.itemsize, size)
        array = np.ascontiguousarray(array)
    array.flags.writeable = False
    return array


def _rebuild_parameter(data, requires_grad, hooks):
    return data


def _rebuild_parameter_with_state(data, requires_grad, hooks, state):
    return data


def _device(*args):
    return "cpu"


def _bytearray(source=b"", *args):
    """``bytearray`` of data the pickle holds; ``bytearray(N)`` (N zero bytes from nothing) is refused."""
    if not isinstance(source, (bytes, str, list, tuple)):
        raise _Refused(f"the pickle calls bytearray({str(source)[:40]}), which allocates memory the file does not hold")
    return bytearray(source, *args)


_ALLOWED: dict[str, Any] = {
    "collections.OrderedDict": OrderedDict,
    "collections.Counter": Counter,
    "builtins.set": set,
    "builtins.frozenset": frozenset,
    "builtins.bytearray": _bytearray,
    "builtins.complex": complex,
    "_codecs.encode": lambda text, encoding="latin-1": str(text).encode(encoding),  # bytes, pickle protocol 2
    "torch.Size": lambda dims=(): tuple(dims),
    "torch.device": _device,
    "torch._utils._rebuild_tensor_v2": _rebuild_tensor_v2,
    "torch._utils._rebuild_tensor_v3": _rebuild_tensor_v3,
    "torch._utils._rebuild_parameter": _rebuild_parameter,
    "torch._utils._rebuild_parameter_with_state": _rebuild_parameter_with_state,
}


# ---------------------------------------------------------------------------- torch.load (fallback)


def _torch_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("torch") is not None


def _refusal(path: Path, detail: str) -> CheckpointError:
    return CheckpointError(
        f"{path}: refused: this file needs arbitrary code to unpickle ({detail}). Re-save it as a plain "
        "state_dict (torch.save(model.state_dict(), ...)) or convert it with safetensors."
    )


def _read_with_torch(path: Path) -> dict[str, np.ndarray]:
    try:
        import torch
    except ImportError:
        raise CheckpointError(
            f"{path}: reading PyTorch checkpoints needs torch: pip install 'netdef-trt[torch]'"
        ) from None
    with open(path, "rb") as f:
        is_zip = f.read(4) == b"PK\x03\x04"  # torch's own test: the zip format of torch.save since 1.6
    try:
        # mmap needs the zip format; older (legacy) files are read into memory.
        obj = torch.load(path, map_location="cpu", weights_only=True, mmap=is_zip)
    except pickle.UnpicklingError as exc:
        detail = _weights_only_detail(exc)
        if "GLOBAL" not in detail:
            raise CheckpointError(f"{path}: not a readable PyTorch checkpoint: {detail}") from None
        raise _refusal(path, detail) from None
    except Exception as exc:  # noqa: BLE001 - torch raises many types for damaged or foreign files
        form = "zip archive" if is_zip else "no zip archive; read as a legacy torch.save file"
        first = (str(exc).splitlines() or [""])[0]
        raise CheckpointError(
            f"{path}: not a readable PyTorch checkpoint ({form}): {type(exc).__name__} {first}"
        ) from None
    state = _find_state_dict(obj, lambda v: isinstance(v, torch.Tensor))
    if state is None:
        raise CheckpointError(f"{path}: no tensors found (top-level type {type(obj).__name__})")
    arrays, problems = {}, []
    budget = _CopyBudget(path.stat().st_size + (64 << 20))
    for name, tensor in state.items():
        try:
            if not tensor.is_contiguous():
                budget.spend(tensor.numel() * tensor.element_size(), tuple(tensor.shape))
            arrays[name] = _to_numpy(tensor, torch)
        except _Refused as exc:
            problems.append(f"{name}: {exc}")
        except (TypeError, RuntimeError, NotImplementedError):
            problems.append(f"{name}: dtype {tensor.dtype} has no NumPy equivalent in netdef")
    if problems:
        raise CheckpointError(f"{path}: {len(problems)} tensor(s) cannot be read", problems)
    return arrays


def _weights_only_detail(exc: Exception) -> str:
    """The line of torch's weights_only error that says what went wrong (e.g. the class it refused)."""
    boilerplate = ("Weights only load failed", "Please file an issue", "Check the documentation", "(1)", "(2)")
    lines = [re.sub(r"\x1b\[[0-9;]*m", "", line).strip() for line in str(exc).splitlines()]
    lines = [line.removeprefix("WeightsUnpickler error: ") for line in lines if line]
    for line in lines:
        if "GLOBAL" in line:
            return line.split(". Please use", 1)[0]
    useful = [line for line in lines if not line.startswith(boilerplate)]
    return (useful or lines or [type(exc).__name__])[0]


def _find_state_dict(obj: Any, is_tensor: Callable[[Any], bool], depth: int = 0) -> Mapping[str, Any] | None:
    """The mapping of tensors in ``obj``: itself, or nested under a usual key (``state_dict``, ``model``, ...)."""
    if not isinstance(obj, Mapping) or depth > _MAX_NESTING:
        return None
    tensors = {k: v for k, v in obj.items() if is_tensor(v)}
    if tensors and len(tensors) == len(obj):
        return tensors
    for key in _WRAPPER_KEYS:  # before loose top-level tensors such as {"model": ..., "step": tensor(3)}
        if key in obj:
            found = _find_state_dict(obj[key], is_tensor, depth + 1)
            if found is not None:
                return found
    return tensors or None


def _to_numpy(tensor: Any, torch: Any) -> np.ndarray:
    return dtypes.torch_to_numpy(tensor.detach().contiguous())

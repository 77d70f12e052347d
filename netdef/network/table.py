"""The weight table of a :class:`~netdef.network.Network`: every array it hands TensorRT, and where each came from.

One entry per named TensorRT weight: its name, the array in the network's dtype (owned by the
table, so it stays alive until the network is dropped: TensorRT keeps raw pointers until the
build), the checkpoint entries it was computed from, its role and whether it is refittable.

Roles:

- ``checkpoint``: one checkpoint entry, converted to the network's dtype (``conv1.weight``);
- ``derived``: computed from several entries (BatchNorm folded into ``conv1.weight``);
- ``fixed``: part of the architecture, not of the checkpoint (gather indices, averaging matrices);
- ``scale``: an INT8 quantization scale.

Checkpoint and derived weights are refittable: re-running the definition on another checkpoint
gives their new values under the same names. The table also records every checkpoint entry the
definition read (:attr:`expected`), so unused entries and missing ones can be listed.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from netdef import dtypes
from netdef.calibration_cache import weights_fingerprint
from netdef.errors import NetworkDefinitionError
from netdef.weights import Checkpoint

Role = Literal["checkpoint", "derived", "fixed", "scale"]
ROLES: tuple[Role, ...] = ("checkpoint", "derived", "fixed", "scale")
REFITTABLE_ROLES = ("checkpoint", "derived")


@dataclass
class WeightEntry:
    """One named weight of the network."""

    name: str
    array: np.ndarray
    """C-contiguous, in the network's dtype (integer arrays keep theirs): the bytes TensorRT reads."""
    role: Role
    sources: tuple[str, ...]
    """Checkpoint entries it was computed from: ``(name,)`` for a plain weight, none for fixed ones and scales."""
    refittable: bool
    trt: Any = field(repr=False, compare=False)
    """The ``trt.Weights`` viewing :attr:`array`."""
    layer: str = ""
    """The TensorRT layer that holds these weights (a constant layer, or e.g. the convolution)."""

    @property
    def derived(self) -> bool:
        return self.role == "derived"


class WeightTable:
    """The weights of one network by name (insertion order), and the checkpoint entries it read."""

    def __init__(self, checkpoint: Checkpoint, dtype: np.dtype, problems: list[str]):
        self.checkpoint = checkpoint
        self.dtype = np.dtype(dtype)
        """The network's dtype: float arrays are converted to it once, when added."""
        self.problems = problems
        """The network's problem list (shared): missing, misshapen or non-finite weights, overflow."""
        self.expected: dict[str, tuple[int, ...]] = {}
        """Every checkpoint entry the definition asked for, with the shape it expected."""
        self._entries: dict[str, WeightEntry] = {}
        self._used_keys: set[str] = set()
        self._unnamed: list[WeightEntry] = []
        self._pending: list[Any] = []  # conversions running in the second thread (see settle)

    # ------------------------------------------------------------------ reading the checkpoint

    def read(self, key: str, shape: tuple[int, ...], *, index_buffer: bool = False) -> np.ndarray:
        """Checkpoint entry ``key`` (a full name) as float32 of ``shape``.

        Weights must be floating point; ``index_buffer`` also accepts integers (a buffer such as
        ``relative_position_index`` that the architecture only checks). A flat entry with the right
        count is reshaped (``.wts`` files carry no shapes). A missing
        or misshapen entry is recorded as a problem and replaced by zeros; NaN/Inf values are
        recorded as a problem too.
        """
        shape = tuple(int(d) for d in shape)
        self.expected[key] = shape
        if key not in self.checkpoint:
            near = self.checkpoint.closest(key)
            hint = f" (closest: {', '.join(near)})" if near else ""
            self.problems.append(f"missing weight {key!r}, expected shape {shape}{hint}")
            return np.zeros(shape, np.float32)
        self._used_keys.add(key)
        array = self.checkpoint[key]
        integer = index_buffer and np.dtype(array.dtype).kind in "iu"
        not_float = None if integer else _not_a_float_weight(key, array.dtype)
        if not_float:
            self.problems.append(not_float)
            return np.zeros(shape, np.float32)
        if array.shape != shape:
            if array.ndim == 1 and array.size == math.prod(shape) and array.size > 0:
                array = array.reshape(shape)
            else:
                self.problems.append(
                    f"weight {key!r}: expected shape {shape} ({math.prod(shape)} values), "
                    f"checkpoint has {tuple(array.shape)} ({array.size} values)"
                )
                return np.zeros(shape, np.float32)
        array = np.asarray(array, dtype=np.float32)
        # min/max: no temporary array; NaN propagates and Inf shows, so only a bad entry is looked at twice
        if array.size and not (np.isfinite(np.min(array)) and np.isfinite(np.max(array))):
            bad = int(array.size - np.count_nonzero(np.isfinite(array)))
            self.problems.append(f"weight {key!r}: {bad} of {array.size} values are NaN or Inf")
        return array

    def checkpoint_shape(self, key: str) -> tuple[int, ...] | None:
        """The shape of checkpoint entry ``key`` (a full name), None when the checkpoint lacks it."""
        return tuple(self.checkpoint[key].shape) if key in self.checkpoint else None

    def unused_keys(self) -> list[str]:
        """Checkpoint entries the definition never read (``num_batches_tracked`` excluded)."""
        return [k for k in self.checkpoint if k not in self._used_keys and not k.endswith("num_batches_tracked")]

    # ------------------------------------------------------------------ entries

    def add(
        self,
        name: str,
        array: np.ndarray | ChannelScaled,
        *,
        role: Role | None = None,
        sources: list[str] | tuple[str, ...] | None = None,
        dtype: Any = None,
        owned: bool = False,
    ) -> WeightEntry:
        """Store ``array`` as weight ``name`` and return its entry (with the ``trt.Weights`` to hand TensorRT).

        ``array`` may be a :class:`ChannelScaled` product (a kernel with BatchNorm folded in): the table
        computes it straight into the weight's dtype.

        Float arrays are converted to the network's dtype (or ``dtype``), integer arrays kept. ``role``
        defaults to ``checkpoint`` (``sources`` = ``(name,)``), or ``derived`` when other ``sources`` are given.
        The weights are named in TensorRT by :meth:`name_used` once a layer uses them. The table keeps its
        own copy of an array, unless ``owned`` says the array was made for this weight (a folded kernel) and
        nobody else holds it: then no second copy is made.
        """
        if name in self._entries:
            raise NetworkDefinitionError(f"duplicate weight name {name!r}")
        sources = (name,) if sources is None and role in (None, "checkpoint") else tuple(sources or ())
        if role is None:
            role = "checkpoint" if sources == (name,) else "derived"
        if role not in ROLES:
            raise NetworkDefinitionError(f"weight {name!r}: role {role!r} is not one of {ROLES}")
        if isinstance(array, ChannelScaled):
            converted = self._convert_scaled(name, array, dtype)
        else:
            converted = self._convert(name, array, dtype, owned)
        entry = WeightEntry(name, converted, role, sources, role in REFITTABLE_ROLES, None)
        entry.trt = _trt_weights(entry.array)
        self._entries[name] = entry
        self._unnamed.append(entry)
        return entry

    def _convert(self, name: str, array: np.ndarray, dtype: Any, owned: bool = False) -> np.ndarray:
        source = np.asarray(array)
        target = np.dtype(dtype) if dtype is not None else self.dtype if dtypes.is_float(source.dtype) else source.dtype
        narrowing = target != source.dtype and dtypes.is_float(target)
        unchanging = owned or _frozen(source)  # nobody can change it while the thread reads it
        if narrowing and unchanging and source.size >= _CAST_ALONGSIDE and dtypes.is_float(source.dtype):
            converted = np.empty(source.shape, target)  # TensorRT only keeps its address until the build
            self._pending.append(_caster().submit(_cast, name, source, converted))
            return converted
        with np.errstate(over="ignore"):  # overflow is reported as a problem below
            converted = np.asarray(source, dtype=target, order="C")  # (ascontiguousarray makes 0-d arrays 1-d)
        if converted is source and not (owned and source.flags.c_contiguous and source.flags.writeable):
            converted = converted.copy()  # never hand TensorRT a view of the caller's (read-only) memory
        if narrowing and (problem := _overflow(name, source, converted)):
            self.problems.append(problem)
        return converted

    def _convert_scaled(self, name: str, scaled: ChannelScaled, dtype: Any) -> np.ndarray:
        converted = np.empty(scaled.shape, np.dtype(dtype) if dtype is not None else self.dtype)
        if scaled.array.size >= _CAST_ALONGSIDE and _frozen(scaled.array):  # nobody can change it meanwhile
            self._pending.append(_caster().submit(_fill_scaled, name, scaled, converted))
        elif problem := _fill_scaled(name, scaled, converted):
            self.problems.append(problem)
        return converted

    def settle(self) -> None:
        """Wait for the conversions running alongside the definition; record their overflow problems.

        A large array converted to a narrower float (ResNet-50's kernels to fp16: 0.1 s of NumPy that
        releases the GIL), or a large folded kernel computed from read-only checkpoint memory, is filled
        in by worker threads while the definition goes on: TensorRT only keeps the address of the
        (still empty) array until the build. The table
        settles before anything reads its arrays, and a network before it is checked or built."""
        pending, self._pending = self._pending, []
        for conversion in pending:
            if problem := conversion.result():
                self.problems.append(problem)

    def name_used(self, trt_network: Any, layer: str) -> None:
        """Name in TensorRT the weights added since the last layer (``layer`` uses them: TensorRT names
        weights only after a layer uses them)."""
        for entry in self._unnamed:
            if not trt_network.set_weights_name(entry.trt, entry.name):
                raise NetworkDefinitionError(
                    f"weight {entry.name!r}: TensorRT refused the name (layer {layer!r} does not use it, or the "
                    "name is taken): add weights right before the layer that uses them"
                )
            entry.layer = layer
        self._unnamed.clear()

    def unnamed(self) -> list[str]:
        """Weights added that no layer used (a definition bug)."""
        return [e.name for e in self._unnamed]

    # ------------------------------------------------------------------ reading the table

    def __getitem__(self, name: str) -> WeightEntry:
        self.settle()
        return self._entries[name]

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[WeightEntry]:
        self.settle()
        return iter(self._entries.values())

    def __len__(self) -> int:
        return len(self._entries)

    def entries(self, *roles: Role) -> list[WeightEntry]:
        """The entries of the given roles (all when none is given), in definition order."""
        return [e for e in self if not roles or e.role in roles]

    def refittable(self) -> dict[str, np.ndarray]:
        """``{name: array}`` of the checkpoint and derived weights: what a refit replaces."""
        return {e.name: e.array for e in self if e.refittable}

    def derived(self) -> dict[str, list[str]]:
        """``{name: sources}`` of the derived weights."""
        return {e.name: list(e.sources) for e in self if e.role == "derived"}

    def metadata(self) -> dict[str, Any]:
        """The engine metadata's ``weights`` (refittable: name -> shape, dtype) and ``derived_weights``."""
        return {
            "weights": {
                e.name: {"shape": list(e.array.shape), "dtype": str(e.array.dtype)} for e in self if e.refittable
            },
            "derived_weights": self.derived(),
        }

    def fingerprint(self) -> str:
        """SHA-256 over the refittable weights' names, shapes and bytes (what calibration was measured with)."""
        return weights_fingerprint(self.refittable())


_CAST_ALONGSIDE = 1 << 18
"""Arrays of at least this many values are converted to a narrower float in a second thread."""


@functools.cache
def _caster() -> Any:
    """The worker threads that fill in large arrays (started when first needed): two, so that the conversions
    use a second core and a third thread's worth of slack while the definition runs on the first."""
    from concurrent.futures import ThreadPoolExecutor

    return ThreadPoolExecutor(max_workers=2, thread_name_prefix="netdef-cast")


@dataclass(frozen=True)
class ChannelScaled:
    """``array * scale``, ``scale`` (one value per channel) broadcast along axis 0: a convolution kernel with
    BatchNorm folded in, not computed yet. The table computes it straight into the weight's dtype, one pass
    with no float32 temporary, and in a worker thread when ``array`` is large and read-only."""

    array: np.ndarray
    scale: np.ndarray

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.array.shape)

    def into(self, out: np.ndarray) -> np.ndarray:
        """Compute the product into ``out`` (rounding once, from float32, to its dtype)."""
        per_channel = self.scale.reshape(-1, *([1] * (self.array.ndim - 1)))
        with np.errstate(over="ignore"):  # overflow is reported as a problem by the table
            return np.multiply(self.array, per_channel, out=out, casting="unsafe")

    def compute(self) -> np.ndarray:
        """The product as a new float32 array."""
        return self.into(np.empty(self.shape, np.float32))


def _frozen(array: np.ndarray) -> bool:
    """Whether nobody can write ``array``'s memory while a worker reads it: the array and every array it
    views are read-only, down to a read-only buffer (a file mapped read-only, ``bytes``) if any. A read-only
    view of a caller's writable array is not frozen: the caller may still change it."""
    base: object = array
    while isinstance(base, np.ndarray):
        if base.flags.writeable:
            return False
        base = base.base
    if base is None:
        return True
    try:
        return memoryview(base).readonly  # type: ignore[arg-type]
    except TypeError:
        return False


def _fill_scaled(name: str, scaled: ChannelScaled, converted: np.ndarray) -> str | None:
    """Fill ``converted`` with the product ``scaled``; the overflow problem, if any.

    Nothing can overflow when ``max|array| * max|scale|`` is within the dtype's range (two reductions, no
    temporary); only beyond it is the product computed in float32 to count the values that became Inf."""
    scaled.into(converted)
    if scaled.array.size == 0 or converted.dtype.itemsize >= np.dtype(np.float32).itemsize:
        return None
    array, scale = scaled.array, scaled.scale
    bound = max(abs(float(np.min(array))), abs(float(np.max(array)))) * float(np.max(np.abs(scale)))
    if bound <= dtypes.largest_finite(converted.dtype):  # NaN fails
        return None
    return _overflow(name, scaled.compute(), converted)


def _cast(name: str, source: np.ndarray, converted: np.ndarray) -> str | None:
    """Fill ``converted`` from ``source`` (rounding to its dtype); the overflow problem, if any."""
    with np.errstate(over="ignore"):
        np.copyto(converted, source, casting="unsafe")
    return _overflow(name, source, converted)


def _overflow(name: str, source: np.ndarray, converted: np.ndarray) -> str | None:
    """Values that became Inf in the conversion to a narrower float (fp16 tops out at 65504), as a problem.

    Cheap when nothing can overflow: the source's range is compared with the target's largest
    finite value (min/max: no temporary arrays); only a range beyond it, or NaN/Inf in the
    source, costs an element-wise look at the converted array.
    """
    if source.size == 0 or not dtypes.is_float(source.dtype):
        return None
    limit = dtypes.largest_finite(converted.dtype)
    low, high = float(np.min(source)), float(np.max(source))  # NaN propagates and fails the test below
    if -limit <= low and high <= limit:
        return None
    overflow = int(np.count_nonzero(np.isinf(converted) & np.isfinite(source)))
    if not overflow:
        return None
    largest = float(np.max(np.abs(source[np.isfinite(source)])))
    return f"weight {name!r}: {overflow} value(s) overflow {converted.dtype} (largest |value| {largest:.6g})"


def _trt_weights(array: np.ndarray) -> Any:
    from netdef.backend import trt

    return trt.Weights(dtypes.trt_dtype(array.dtype), array.ctypes.data, array.size)


_KINDS = {
    "b": "bool",
    "i": "integer",
    "u": "unsigned integer",
    "c": "complex",
    "U": "string",
    "S": "bytes",
    "O": "object",
}


def _not_a_float_weight(key: str, dtype: np.dtype) -> str | None:
    """Why checkpoint entry ``key`` of ``dtype`` cannot be a weight (None for a floating-point dtype).

    Weights are floats: an integer, bool, complex or string tensor would silently lose its meaning
    (bool becomes 0/1, complex loses its imaginary part), so it is a problem to report.
    """
    if dtypes.is_float(dtype):
        return None
    kind = _KINDS.get(np.dtype(dtype).kind, "non-numeric")
    return f"weight {key!r}: the checkpoint holds a {kind} tensor ({dtype}); weights must be floating point"

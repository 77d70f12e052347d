"""The part of :class:`~netdef.network.Network` that is not about any particular layer.

Names and scopes, weights taken from the checkpoint (checked, converted, kept alive, named),
inputs and outputs, and the list of problems found while defining the network.
"""

from __future__ import annotations

import contextlib
import functools
import math
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import ml_dtypes
import numpy as np

from netdef import backend
from netdef.backend import trt
from netdef.errors import CheckpointError, NetworkDefinitionError
from netdef.network.precision import Precision, dtype_name, trt_dtype
from netdef.network.precision import precision as resolve_precision
from netdef.weights import Checkpoint
from netdef.weights.dtypes import bfloat16, weight_dtype_problem

Tensor = Any  # trt.ITensor
Shape = Sequence[int]


class NetworkCore:
    """A TensorRT network definition with names, scopes, a precision policy and checked weights.

    ``checkpoint`` maps parameter names (PyTorch's, e.g. ``layer1.0.conv1.weight``) to arrays.
    Layers are named after their scope (``layer1.0.conv1``) and weights after their checkpoint
    key, so engines can be inspected, compared and refit by name.

    Weight problems (missing names, wrong shapes, non-finite values) do not stop the
    definition: each is recorded, a zero placeholder of the expected shape stands in, and
    :meth:`check` raises one error that lists them all.
    """

    def __init__(
        self,
        checkpoint: Mapping[str, np.ndarray] | None = None,
        *,
        precision: str | Precision = "fp32",
        io_dtype: str | Precision = "fp32",
        name: str = "network",
    ):
        self.name = name
        self.precision = resolve_precision(precision)
        self.io_precision = resolve_precision(io_dtype)
        if checkpoint is None or isinstance(checkpoint, Checkpoint):
            self.checkpoint = checkpoint if checkpoint is not None else Checkpoint({})
        else:
            self.checkpoint = Checkpoint(checkpoint)
        self.builder = backend.create_builder()
        self.trt_network = backend.create_network(self.builder)
        self.trt_network.name = name

        self.weights: dict[str, np.ndarray] = {}
        """Every named weight handed to TensorRT, in the network's dtype (name -> array)."""
        self.derived: dict[str, list[str]] = {}
        """Weights computed from several checkpoint entries (e.g. BatchNorm folded into a convolution)."""
        self.problems: list[str] = []
        self.expected: dict[str, tuple[int, ...]] = {}
        """Every checkpoint entry the definition asked for, with the shape it expected."""
        self._used_keys: set[str] = set()
        self._scopes: list[str] = []
        self._layer_names: set[str] = set()
        self._tensor_names: set[str] = set()
        self._keep_alive: list[Any] = []  # TensorRT keeps raw pointers to host weights until the build

    # ------------------------------------------------------------------ names and scopes

    @contextlib.contextmanager
    def scope(self, name: str | int) -> Iterator[None]:
        """Prefix every layer and weight name defined inside with ``name.`` (nestable)."""
        self._scopes.append(str(name))
        try:
            yield
        finally:
            self._scopes.pop()

    def qualified(self, name: str) -> str:
        """``name`` inside the current scope: ``qualified("conv1")`` in ``layer1.0`` -> ``layer1.0.conv1``."""
        return ".".join([*self._scopes, name]) if name else ".".join(self._scopes)

    def _unique_layer_name(self, kind: str, name: str | None) -> str:
        if name is not None:
            full = self.qualified(name)
            if full in self._layer_names:
                raise NetworkDefinitionError(f"duplicate layer name {full!r}: every layer needs its own name")
            return full
        base = self.qualified(kind)
        full, n = base, 1
        while full in self._layer_names:
            full, n = f"{base}_{n}", n + 1
        return full

    def _default_name(self, kind: str, name: str | None) -> str:
        """``name``, or the first of ``kind``, ``kind_1``, ... not yet a layer in the current scope (unqualified)."""
        if name is not None:
            return name
        candidate, n = kind, 1
        while self.qualified(candidate) in self._layer_names:
            candidate, n = f"{kind}_{n}", n + 1
        return candidate

    def _named(self, layer: Any, kind: str, name: str | None = None) -> Any:
        """Give ``layer`` (and its outputs) a unique name; ``kind`` is used when ``name`` is None."""
        full = self._unique_layer_name(kind, name)
        layer.name = full
        self._layer_names.add(full)
        for i in range(layer.num_outputs):
            tensor_name = full if layer.num_outputs == 1 else f"{full}:{i}"
            self._rename_tensor(layer.get_output(i), tensor_name)
        return layer

    def _rename_tensor(self, tensor: Tensor, name: str) -> None:
        if name in self._tensor_names:
            raise NetworkDefinitionError(f"duplicate tensor name {name!r}")
        self._tensor_names.discard(tensor.name)
        tensor.name = name
        self._tensor_names.add(name)

    # ------------------------------------------------------------------ weights

    def has_param(self, key: str) -> bool:
        """Whether the checkpoint has ``key`` inside the current scope."""
        return self.qualified(key) in self.checkpoint

    def param_shape(self, key: str) -> tuple[int, ...] | None:
        full = self.qualified(key)
        return tuple(self.checkpoint[full].shape) if full in self.checkpoint else None

    def param(self, key: str, shape: Shape) -> np.ndarray:
        """The checkpoint entry ``key`` (in the current scope) as float32 of ``shape``.

        A flat entry with the right count is reshaped (``.wts`` files carry no shapes). A missing
        or misshapen entry is recorded as a problem and replaced by zeros; NaN/Inf values are
        recorded as a problem too.
        """
        full = self.qualified(key)
        shape = tuple(int(d) for d in shape)
        self.expected[full] = shape
        if full not in self.checkpoint:
            near = self.checkpoint.closest(full)
            hint = f" (closest: {', '.join(near)})" if near else ""
            self.problems.append(f"missing weight {full!r}, expected shape {shape}{hint}")
            return np.zeros(shape, np.float32)
        self._used_keys.add(full)
        array = self.checkpoint[full]
        not_float = weight_dtype_problem(full, array.dtype)
        if not_float:
            self.problems.append(not_float)
            return np.zeros(shape, np.float32)
        if array.shape != shape:
            if array.ndim == 1 and array.size == math.prod(shape) and array.size > 0:
                array = array.reshape(shape)
            else:
                self.problems.append(
                    f"weight {full!r}: expected shape {shape} ({math.prod(shape)} values), "
                    f"checkpoint has {tuple(array.shape)} ({array.size} values)"
                )
                return np.zeros(shape, np.float32)
        array = np.asarray(array, dtype=np.float32)
        finite = np.isfinite(array)
        if not finite.all():
            bad = int(array.size - np.count_nonzero(finite))
            self.problems.append(f"weight {full!r}: {bad} of {array.size} values are NaN or Inf")
        return array

    def weight_array(self, name: str, array: np.ndarray, *, dtype: Any = None) -> np.ndarray:
        """Convert ``array`` to the network dtype once, keep it alive and record it as weight ``name``."""
        if name in self.weights:
            raise NetworkDefinitionError(f"duplicate weight name {name!r}")
        target = self.precision.numpy if dtype is None else np.dtype(dtype)
        with np.errstate(over="ignore"):  # overflow is reported as a problem below
            converted = np.asarray(array, dtype=target, order="C")  # (ascontiguousarray makes 0-d arrays 1-d)
        if converted is array:  # never hand TensorRT a view of the caller's (read-only) memory
            converted = converted.copy()
        if target != array.dtype and (target.kind == "f" or target == bfloat16):
            self._check_conversion(name, array, converted)
        self.weights[name] = converted
        self._keep_alive.append(converted)
        return converted

    def _check_conversion(self, name: str, source: np.ndarray, converted: np.ndarray) -> None:
        """Record values that became Inf in the conversion to a narrower float (fp16 tops out at 65504).

        Cheap when nothing can overflow: the source's range is compared with the target's largest
        finite value (min/max: no temporary arrays); only a range beyond it, or NaN/Inf in the
        source, costs an element-wise look at the converted array.
        """
        if source.size == 0:
            return
        limit = _largest_finite(converted.dtype)
        low, high = float(np.min(source)), float(np.max(source))  # NaN propagates and fails the test below
        if -limit <= low and high <= limit:
            return
        overflow = int(np.count_nonzero(np.isinf(converted) & np.isfinite(source)))
        if overflow:
            largest = float(np.max(np.abs(source[np.isfinite(source)])))
            self.problems.append(
                f"weight {name!r}: {overflow} value(s) overflow {converted.dtype} (largest |value| {largest:.6g})"
            )

    def trt_weights(self, array: np.ndarray | None) -> Any:
        """A ``trt.Weights`` viewing ``array`` (kept alive with the network); empty for None."""
        if array is None:
            return trt.Weights(self.precision.trt)
        weights = trt.Weights(trt_dtype(array.dtype), array.ctypes.data, array.size)
        self._keep_alive.append(weights)
        return weights

    def name_weights(self, weights: Any, name: str) -> None:
        """Name weights already used by a layer (TensorRT wants the name set after use)."""
        if not self.trt_network.set_weights_name(weights, name):
            raise NetworkDefinitionError(f"TensorRT refused weight name {name!r} (already used for other weights?)")

    def constant(self, name: str, array: np.ndarray, *, derived_from: list[str] | None = None) -> Tensor:
        """A constant tensor holding ``array`` (converted to the network dtype), named ``name``."""
        full = self.qualified(name)
        stored = self.weight_array(full, array)
        weights = self.trt_weights(stored)
        layer = self.trt_network.add_constant(stored.shape, weights)
        self._named(layer, name, name)
        self.name_weights(weights, full)
        if derived_from is not None:
            self.derived[full] = derived_from
        return layer.get_output(0)

    def check(self) -> None:
        """Raise one :class:`CheckpointError` listing every weight problem found so far."""
        if self.problems:
            header = f"{self.checkpoint.source}: {len(self.problems)} problem(s) defining {self.name!r}:"
            raise CheckpointError("\n".join([header, *(f"  - {p}" for p in self.problems)]))

    def unused_keys(self) -> list[str]:
        """Checkpoint entries the definition never read (``num_batches_tracked`` excluded)."""
        return [k for k in self.checkpoint if k not in self._used_keys and not k.endswith("num_batches_tracked")]

    # ------------------------------------------------------------------ inputs and outputs

    def input(self, name: str, shape: Shape, dtype: str | Any | None = None) -> Tensor:
        """Declare input ``name`` (``-1`` for a dynamic dimension) in the I/O dtype; return it cast
        to the compute dtype."""
        io_type = self.io_precision.trt if dtype is None else trt_dtype(dtype)
        if any(int(d) < -1 or int(d) == 0 for d in shape):
            raise NetworkDefinitionError(f"input {name!r}: bad shape {tuple(shape)} (dimensions are >0 or -1)")
        if name in self._tensor_names:
            raise NetworkDefinitionError(f"input {name!r}: the network already has a tensor of that name")
        tensor = self.trt_network.add_input(name, io_type, tuple(int(d) for d in shape))
        self._tensor_names.add(name)
        return self.cast(tensor, self.precision.trt, name=f"{name}.cast") if self._is_float(io_type) else tensor

    def output(self, tensor: Tensor, name: str, dtype: str | Any | None = None) -> Tensor:
        """Mark ``tensor`` as output ``name``, cast to the I/O dtype (fp32 unless asked otherwise)."""
        io_type = self.io_precision.trt if dtype is None else trt_dtype(dtype)
        if tensor.dtype != io_type and self._is_float(tensor.dtype):
            tensor = self.cast(tensor, io_type, name=f"{name}.cast")
        if tensor.is_network_output:
            raise NetworkDefinitionError(f"output {name!r}: tensor {tensor.name!r} is already an output of the network")
        self._rename_tensor(tensor, name)
        self.trt_network.mark_output(tensor)
        return tensor

    def cast(self, tensor: Tensor, to: Any, name: str | None = None) -> Tensor:
        """Cast to dtype ``to``; a no-op when the tensor already has it."""
        to = trt_dtype(to) if not isinstance(to, type(trt.float32)) else to
        if tensor.dtype == to:
            return tensor
        layer = self.trt_network.add_cast(tensor, to)
        return self._named(layer, "cast", name).get_output(0)

    @staticmethod
    def _is_float(dtype: Any) -> bool:
        return dtype in (trt.float32, trt.float16, trt.bfloat16)

    # ------------------------------------------------------------------ read-back

    @property
    def num_layers(self) -> int:
        return self.trt_network.num_layers

    def io_tensors(self) -> list[dict[str, Any]]:
        """Inputs then outputs: name, shape (with -1 for dynamic) and dtype name."""
        net = self.trt_network
        tensors = [("input", net.get_input(i)) for i in range(net.num_inputs)]
        tensors += [("output", net.get_output(i)) for i in range(net.num_outputs)]
        return [
            {"name": t.name, "mode": mode, "shape": list(t.shape), "dtype": dtype_name(t.dtype)} for mode, t in tensors
        ]

    def shape_of(self, tensor: Tensor) -> tuple[int, ...]:
        """TensorRT's inferred shape of ``tensor`` (``-1`` where dynamic)."""
        try:
            return tuple(tensor.shape)
        except RuntimeError:
            raise NetworkDefinitionError(f"TensorRT cannot infer the shape of tensor {tensor.name!r}") from None


@functools.cache
def _largest_finite(dtype: np.dtype) -> float:
    """The largest finite value of float ``dtype`` (ml_dtypes' finfo knows bfloat16 too)."""
    return float(ml_dtypes.finfo(dtype).max)

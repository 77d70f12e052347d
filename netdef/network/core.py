"""What every :class:`~netdef.network.Network` has, whatever its layers: its parts and the plumbing layer methods use.

A network is composed of parts, each with one job:

- :class:`~netdef.network.names.Names` (``net.names``): scopes and unique layer and tensor names;
- :class:`~netdef.network.table.WeightTable` (``net.weight_table``): every weight handed to TensorRT,
  in the network's dtype, with its checkpoint sources, role and refittability, and the checkpoint
  entries read;
- :class:`~netdef.network.quantization.Quantization` (``net.quantization``): calibrated INT8 scales and
  the activations that feed weighted layers;
- the problem list (``net.problems``) that :meth:`NetworkCore.check` raises together.

Layer methods (the op vocabulary, in mixins under ``netdef/network/``) use four private helpers:
:meth:`~NetworkCore._param` reads a checkpoint entry, :meth:`~NetworkCore._weights` stores weights a
layer takes directly, :meth:`~NetworkCore._constant` adds a named constant tensor, and
:meth:`~NetworkCore._named` names a layer (and the weights it uses). See "Writing a layer method" in
``docs/design.md``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any

import numpy as np

from netdef import backend, dtypes
from netdef.backend import trt
from netdef.errors import CheckpointError, NetworkDefinitionError
from netdef.network.names import Names
from netdef.network.precision import Precision
from netdef.network.precision import precision as resolve_precision
from netdef.network.quantization import Quantization
from netdef.network.table import ChannelScaled, Role, WeightTable
from netdef.weights import Checkpoint

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

    ``calibration``: activation scales for ``precision="int8"`` (a :class:`netdef.calibration.Calibration`,
    a calibration cache file, or a mapping tensor name -> scale).
    """

    def __init__(
        self,
        checkpoint: Mapping[str, np.ndarray] | None = None,
        *,
        precision: str | Precision = "fp32",
        io_dtype: str | Precision = "fp32",
        name: str = "network",
        calibration: Any = None,
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
        self.problems: list[str] = []
        """Weight problems found so far (raised together by :meth:`check`)."""
        self.names = Names()
        self.weight_table = WeightTable(self.checkpoint, self.precision.numpy, self.problems)
        self.quantization = Quantization(self.precision, calibration)

    # ------------------------------------------------------------------ the table, read as dicts

    @property
    def weights(self) -> dict[str, np.ndarray]:
        """Every refittable weight handed to TensorRT, in the network's dtype (name -> array)."""
        return self.weight_table.refittable()

    @property
    def derived(self) -> dict[str, list[str]]:
        """Weights computed from several checkpoint entries (e.g. BatchNorm folded into a convolution) -> sources."""
        return self.weight_table.derived()

    @property
    def expected(self) -> dict[str, tuple[int, ...]]:
        """Every checkpoint entry the definition asked for, with the shape it expected."""
        return dict(self.weight_table.expected)

    @property
    def quantization_scales(self) -> dict[str, np.ndarray]:
        """Every INT8 scale constant (``conv1.input.scale`` -> array); empty unless int8. Not refittable."""
        return {e.name: e.array for e in self.weight_table.entries("scale")}

    @property
    def quantized(self) -> bool:
        """Whether this network puts Q/DQ around convolutions and matrix multiplies."""
        return bool(self.precision.quantized)

    @property
    def calibration(self) -> Any:
        return self.quantization.calibration

    @property
    def activation_scales(self) -> dict[str, float] | None:
        """Calibrated activation scales by tensor name (int8 only)."""
        return self.quantization.activation_scales

    @property
    def quantization_points(self) -> dict[str, list[str]]:
        """Activation tensors feeding convolutions and linear layers -> the layers they feed."""
        return self.quantization.points

    def quantization_tensors(self) -> dict[str, Tensor]:
        """Activation name (as when the layer was defined) -> the ITensor, for calibration."""
        return dict(self.quantization.tensors)

    # ------------------------------------------------------------------ definitions

    def scope(self, name: str | int) -> AbstractContextManager[None]:
        """Prefix every layer and weight name defined inside with ``name.`` (nestable)."""
        return self.names.scope(name)

    def checkpoint_shape(self, key: str) -> tuple[int, ...] | None:
        """The shape of checkpoint entry ``key`` in the current scope, None when the checkpoint lacks it."""
        return self.weight_table.checkpoint_shape(self.names.qualified(key))

    def parameter(self, name: str, shape: Shape) -> Tensor:
        """Checkpoint entry ``name`` of ``shape`` as a constant tensor named ``name`` (``nn.Parameter``)."""
        return self._constant(name, self._param(name, shape))

    def constant(self, name: str, array: np.ndarray) -> Tensor:
        """A constant tensor holding ``array`` (in the network's dtype), named ``name``, listed as a weight."""
        return self._constant(name, array)

    def check(self) -> None:
        """Raise one :class:`CheckpointError` listing every weight problem found so far, then one
        :class:`~netdef.errors.CalibrationError` listing every missing or bad INT8 scale."""
        self.weight_table.settle()  # conversions still running report their overflow problems
        unnamed = self.weight_table.unnamed()
        if unnamed:
            raise NetworkDefinitionError(f"weights {unnamed} were added but no layer uses them")
        if self.problems:
            header = f"{self.checkpoint.source}: {len(self.problems)} problem(s) defining {self.name!r}"
            raise CheckpointError(header, self.problems)
        self.quantization.check(self.name, self.weight_table)

    def unused_keys(self) -> list[str]:
        """Checkpoint entries the definition never read (``num_batches_tracked`` excluded)."""
        return self.weight_table.unused_keys()

    # ------------------------------------------------------------------ plumbing for layer methods

    def _param(self, key: str, shape: Shape) -> np.ndarray:
        """Checkpoint entry ``key`` (in the current scope) as float32 of ``shape``; a missing, misshapen
        or non-finite entry is recorded as a problem (zeros stand in)."""
        return self.weight_table.read(self.names.qualified(key), tuple(shape))

    def _weights(
        self,
        name: str,
        array: np.ndarray | ChannelScaled | None,
        *,
        sources: list[str] | None = None,
        role: Role | None = None,
        owned: bool = False,
    ) -> Any:
        """``trt.Weights`` for the next layer, holding ``array`` as weight ``name`` (scoped) of the table;
        empty weights for None. Named in TensorRT by :meth:`_named` on that layer. ``owned``: see
        :meth:`WeightTable.add`."""
        if array is None:
            return trt.Weights(self.precision.trt)
        full = self.names.qualified(name)
        return self.weight_table.add(full, array, role=role, sources=sources, owned=owned).trt

    def _constant(
        self,
        name: str | None,
        array: np.ndarray,
        *,
        sources: list[str] | None = None,
        role: Role | None = None,
        kind: str = "constant",
    ) -> Tensor:
        """A constant tensor holding ``array``, its layer and weights named ``name`` (scoped; ``kind``, made
        unique, when None). Float arrays are stored in the network's dtype. ``role`` as in the weight table:
        ``checkpoint`` by default, ``derived`` when ``sources`` are given, ``fixed`` or ``scale`` when told."""
        full = self.names.qualified(self.names.local(kind, name))
        entry = self.weight_table.add(full, array, role=role, sources=sources)
        layer = self.trt_network.add_constant(entry.array.shape, entry.trt)
        return self._named(layer, kind, name).get_output(0)

    def _named(self, layer: Any, kind: str, name: str | None = None) -> Any:
        """Name ``layer`` (``name`` in the current scope, or ``kind`` made unique), its outputs, and the
        weights added for it since the previous layer; returns the layer."""
        full = self.names.name_layer(layer, kind, name)
        self.weight_table.name_used(self.trt_network, full)
        return layer

    # ------------------------------------------------------------------ inputs and outputs

    def input(self, name: str, shape: Shape, dtype: str | Any | None = None) -> Tensor:
        """Declare input ``name`` (``-1`` for a dynamic dimension) in the I/O dtype; return it cast
        to the compute dtype."""
        io_type = self.io_precision.trt if dtype is None else dtypes.trt_dtype(dtype)
        if any(int(d) < -1 or int(d) == 0 for d in shape):
            raise NetworkDefinitionError(f"input {name!r}: bad shape {tuple(shape)} (dimensions are >0 or -1)")
        if name in self.names.tensors:
            raise NetworkDefinitionError(f"input {name!r}: the network already has a tensor of that name")
        tensor = self.trt_network.add_input(name, io_type, tuple(int(d) for d in shape))
        self.names.tensors.add(name)
        return self.cast(tensor, self.precision.trt, name=f"{name}.cast") if dtypes.is_float(io_type) else tensor

    def output(self, tensor: Tensor, name: str, dtype: str | Any | None = None) -> Tensor:
        """Mark ``tensor`` as output ``name``, cast to the I/O dtype (fp32 unless asked otherwise)."""
        io_type = self.io_precision.trt if dtype is None else dtypes.trt_dtype(dtype)
        if tensor.dtype != io_type and dtypes.is_float(tensor.dtype):
            tensor = self.cast(tensor, io_type, name=f"{name}.cast")
        if tensor.is_network_output:
            raise NetworkDefinitionError(f"output {name!r}: tensor {tensor.name!r} is already an output of the network")
        self.names.name_tensor(tensor, name)
        self.trt_network.mark_output(tensor)
        return tensor

    def cast(self, tensor: Tensor, to: Any, *, name: str | None = None) -> Tensor:
        """Cast to dtype ``to`` (a ``trt.DataType``, NumPy dtype or name); a no-op when the tensor already has it."""
        to = dtypes.trt_dtype(to)
        if tensor.dtype == to:
            return tensor
        layer = self.trt_network.add_cast(tensor, to)
        return self._named(layer, "cast", name).get_output(0)

    # ------------------------------------------------------------------ read-back

    @property
    def num_layers(self) -> int:
        return self.trt_network.num_layers

    def io_tensors(self) -> list[dict[str, Any]]:
        """Inputs then outputs: name, mode, shape (with -1 for dynamic) and dtype name."""
        net = self.trt_network
        tensors = [("input", net.get_input(i)) for i in range(net.num_inputs)]
        tensors += [("output", net.get_output(i)) for i in range(net.num_outputs)]
        return [
            {"name": t.name, "mode": mode, "shape": list(t.shape), "dtype": dtypes.dtype_name(t.dtype)}
            for mode, t in tensors
        ]

    def shape_of(self, tensor: Tensor) -> tuple[int, ...]:
        """TensorRT's inferred shape of ``tensor`` (``-1`` where dynamic)."""
        try:
            return tuple(tensor.shape)
        except RuntimeError:
            raise NetworkDefinitionError(f"TensorRT cannot infer the shape of tensor {tensor.name!r}") from None

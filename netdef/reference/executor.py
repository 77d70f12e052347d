"""Running a TensorRT network definition layer by layer in NumPy."""

from __future__ import annotations

import heapq
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from netdef.errors import LayerExecutionError, UnsupportedLayerError
from netdef.reference.dtypes import is_float, numpy_dtype, round_to
from netdef.reference.node import Node, Unsupported
from netdef.reference.readback import layer_type, tensor_shape
from netdef.reference.registry import lookup
from netdef.tensorspec import TensorSpec, match_inputs, shape_text


@dataclass
class Result:
    """What a run produced.

    ``outputs`` maps each network output name to its array. With ``capture=True``, ``tensors``
    maps every tensor name (network inputs included) to its array and ``layers`` maps each layer
    name to the list of its output arrays; without capture both are empty.
    """

    outputs: dict[str, np.ndarray]
    tensors: dict[str, np.ndarray] = field(default_factory=dict)
    layers: dict[str, list[np.ndarray]] = field(default_factory=dict)


class ReferenceExecutor:
    """Reads a network's layers back once and computes its tensors in NumPy on every :meth:`run`.

    The network is read only through the TensorRT API. Layer settings and weights are cached at
    first use, so changing the network after the first run is not seen.

    Raises :class:`UnsupportedLayerError` naming every layer whose type has no reference semantics.
    """

    def __init__(self, network):
        self.network = network
        self.inputs = [self._input_spec(network.get_input(i)) for i in range(network.num_inputs)]
        self.output_names = [network.get_output(i).name for i in range(network.num_outputs)]
        layers = [network.get_layer(i) for i in range(network.num_layers)]
        unsupported = []
        nodes = []
        for index, layer in enumerate(layers):
            op = lookup(layer_type(layer))
            if op is None:
                unsupported.append(f"layer {index} '{layer.name}' of type {layer_type(layer).name}")
                continue
            nodes.append(Node(layer, op, index))
        if unsupported:
            raise UnsupportedLayerError("the reference executor does not support: " + "; ".join(unsupported))
        self.nodes = _topological(nodes, {spec.name for spec in self.inputs})
        self._needed = _needed_for(self.nodes, self.output_names)
        self._last_use = _last_uses(self.nodes, self.output_names)

    @staticmethod
    def _input_spec(tensor) -> TensorSpec:
        return TensorSpec(tensor.name, "input", tensor_shape(tensor) or (), numpy_dtype(tensor.dtype))

    def check_inputs(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The given arrays as NumPy arrays of exactly the declared dtypes and shapes, or one
        :class:`NetworkInputError` listing every problem."""
        return match_inputs(self.inputs, inputs, casting="no")

    def run(self, inputs: Mapping[str, np.ndarray], *, capture: bool = False) -> Result:
        """Compute the network's outputs (and, with ``capture``, every tensor) from ``inputs``."""
        tensors: dict[str, np.ndarray] = dict(self.check_inputs(inputs))
        layers: dict[str, list[np.ndarray]] = {}
        for node in self.nodes:
            if not capture and node.index not in self._needed:
                continue
            outputs = self._execute(node, [tensors[name] if name else None for name in node.inputs])
            tensors.update(zip(node.outputs, outputs, strict=True))
            if capture:
                layers[node.name] = outputs
            else:
                for name in self._last_use.get(node.index, ()):
                    tensors.pop(name, None)
        result = Result({name: tensors[name] for name in self.output_names})
        if capture:
            result.tensors = tensors
            result.layers = layers
        return result

    def _execute(self, node: Node, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
        try:
            produced = node.op.fn(node, inputs)
        except Unsupported as exc:
            raise UnsupportedLayerError(f"{_where(node)}: {exc}") from exc
        except Exception as exc:
            shapes = ", ".join("None" if a is None else f"{a.dtype}{list(a.shape)}" for a in inputs)
            raise LayerExecutionError(f"{_where(node)} failed on inputs [{shapes}]: {exc}") from exc
        produced = [produced] if isinstance(produced, np.ndarray) else list(produced)
        return [self._finish(node, i, array) for i, array in enumerate(produced)]

    @staticmethod
    def _finish(node: Node, index: int, array: np.ndarray) -> np.ndarray:
        """Round an output to its declared type and check its shape against TensorRT's inference."""
        array = np.asarray(array)
        dtype = node.output_dtypes[index]
        if array.dtype != dtype:
            if not (is_float(array.dtype) and is_float(dtype)):
                raise LayerExecutionError(
                    f"{_where(node)} output {index} '{node.outputs[index]}': computed {array.dtype}, "
                    f"TensorRT declares {dtype}"
                )
            array = round_to(array, dtype)
        expected = node.output_shapes[index]
        if expected is not None and (
            len(expected) != array.ndim or any(e != -1 and e != a for e, a in zip(expected, array.shape, strict=True))
        ):
            raise LayerExecutionError(
                f"{_where(node)} output {index} '{node.outputs[index]}': computed shape {array.shape}, "
                f"TensorRT infers {shape_text(expected)}"
            )
        return array


def _where(node: Node) -> str:
    return f"layer {node.index} '{node.name}' ({node.type_name})"


def _topological(nodes: list[Node], available: set[str]) -> list[Node]:
    """Layers in an order where each runs after the producers of its inputs (insertion order when valid)."""
    produced_by = {name: node for node in nodes for name in node.outputs}
    by_index = {node.index: node for node in nodes}
    waiting_on: dict[int, set[int]] = {}
    consumers: dict[int, set[int]] = {}
    for node in nodes:
        producers = set()
        for name in node.inputs:
            if name is None or name in available:
                continue
            if name not in produced_by:
                raise LayerExecutionError(f"{_where(node)} reads tensor '{name}', which nothing produces")
            producers.add(produced_by[name].index)
            consumers.setdefault(produced_by[name].index, set()).add(node.index)
        waiting_on[node.index] = producers
    ready = [index for index, producers in waiting_on.items() if not producers]
    heapq.heapify(ready)
    ordered: list[Node] = []
    while ready:
        index = heapq.heappop(ready)
        ordered.append(by_index[index])
        for consumer in consumers.get(index, ()):
            waiting_on[consumer].discard(index)
            if not waiting_on[consumer]:
                heapq.heappush(ready, consumer)
    if len(ordered) != len(nodes):
        stuck = [by_index[i] for i, producers in waiting_on.items() if producers]
        raise LayerExecutionError("layers form a cycle: " + ", ".join(_where(node) for node in stuck[:5]))
    return ordered


def _needed_for(nodes: list[Node], outputs: list[str]) -> set[int]:
    """Indices of the layers the network outputs depend on."""
    produced_by = {name: node for node in nodes for name in node.outputs}
    needed: set[int] = set()
    stack = [produced_by[name] for name in outputs if name in produced_by]
    while stack:
        node = stack.pop()
        if node.index in needed:
            continue
        needed.add(node.index)
        stack.extend(produced_by[name] for name in node.inputs if name in produced_by)
    return needed


def _last_uses(nodes: list[Node], outputs: list[str]) -> dict[int, list[str]]:
    """For each layer index, the tensors no later layer reads (freed after it runs, outputs kept)."""
    last: dict[str, int] = {}
    for node in nodes:
        for name in node.inputs:
            if name is not None:
                last[name] = node.index
    keep = set(outputs)
    freed: dict[int, list[str]] = {}
    for name, index in last.items():
        if name not in keep:
            freed.setdefault(index, []).append(name)
    return freed

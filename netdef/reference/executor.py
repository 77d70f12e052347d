"""Running a TensorRT network definition layer by layer in NumPy."""

from __future__ import annotations

import heapq
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from netdef.errors import LayerExecutionError, NetworkInputError, UnsupportedLayerError
from netdef.reference.control import ConditionalRegion, LoopRegion, Region, Step, group_regions
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
        # A netdef Network is kept alive with its definition: TensorRT's INetworkDefinition only points at
        # the weights the Network owns, and cannot hold a Python reference to them itself.
        self.owner = network if hasattr(network, "trt_network") else None
        network = network.trt_network if self.owner is not None else network
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
            node = Node(layer, op, index)
            refused = op.refusal(node.layer) if op.refusal else None
            if refused:
                unsupported.append(f"layer {index} '{layer.name}' of type {node.type_name}: {refused}")
                continue
            nodes.append(node)
        if unsupported:
            raise UnsupportedLayerError("the reference executor does not support: " + "; ".join(unsupported))
        self.nodes = _topological(group_regions(nodes), {spec.name for spec in self.inputs}, strict=True)
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
        for step in self.nodes:
            if not capture and step.index not in self._needed:
                continue
            tensors.update(self._step(step, tensors, layers if capture else None))
            if not capture:
                for name in self._last_use.get(step.index, ()):
                    tensors.pop(name, None)
        result = Result({name: tensors[name] for name in self.output_names})
        if capture:
            result.tensors = tensors
            result.layers = layers
        return result

    def _step(self, step: Step, tensors: dict[str, np.ndarray], layers: dict | None) -> dict[str, np.ndarray]:
        """Run one layer or region on ``tensors``; return what it produced by tensor name."""
        if isinstance(step, Node):
            outputs = self._execute(step, [tensors[name] if name else None for name in step.inputs])
            if layers is not None:
                layers[step.name] = outputs
            return dict(zip(step.outputs, outputs, strict=True))

        def run_body(body: list[Step], inner: dict[str, np.ndarray]) -> None:
            for part in body:
                inner.update(self._step(part, inner, layers))
            if layers is not None:  # the region's inner tensors (of its last iteration) are captured too
                tensors.update({name: value for name, value in inner.items() if name not in outer})

        outer = {name: tensors[name] for name in step.inputs}
        try:
            if isinstance(step, LoopRegion):
                produced = step.run(outer, run_body, self._finish)
            elif isinstance(step, ConditionalRegion):
                produced = step.run(outer, run_body, self._finish, _needed_steps)
            else:
                raise TypeError(f"unknown schedule step {step!r}")
        except Unsupported as exc:
            raise UnsupportedLayerError(f"{_where(step)}: {exc}") from exc
        except (UnsupportedLayerError, LayerExecutionError, NetworkInputError):
            raise
        except Exception as exc:
            raise LayerExecutionError(f"{_where(step)} failed: {type(exc).__name__}: {exc}") from exc
        if layers is not None:
            known = {**tensors, **produced}
            for node in step.boundary:
                if node.outputs and all(name in known for name in node.outputs):
                    layers[node.name] = [known[name] for name in node.outputs]
        return produced

    def _execute(self, node: Node, inputs: list[np.ndarray | None]) -> list[np.ndarray]:
        try:
            produced = node.op.fn(node, inputs)
            produced = (
                [np.asarray(a) for a in produced] if isinstance(produced, (list, tuple)) else [np.asarray(produced)]
            )
        except Unsupported as exc:
            raise UnsupportedLayerError(f"{_where(node)}: {exc}") from exc
        except (LayerExecutionError, UnsupportedLayerError, NetworkInputError):
            raise
        except Exception as exc:
            shapes = ", ".join("None" if a is None else f"{a.dtype}{list(np.shape(a))}" for a in inputs)
            raise LayerExecutionError(
                f"{_where(node)} failed on inputs [{shapes}]: {type(exc).__name__}: {exc}"
            ) from exc
        if len(produced) != len(node.outputs):
            raise LayerExecutionError(
                f"{_where(node)} computed {len(produced)} outputs, TensorRT declares {len(node.outputs)}"
            )
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


def _where(node: Step) -> str:
    if isinstance(node, Region):
        return f"{node.type_name.lower()} '{node.name}'"
    return f"layer {node.index} '{node.name}' ({node.type_name})"


def _topological(nodes: list[Step], available: set[str], *, strict: bool = False) -> list[Step]:
    """Steps in an order where each runs after the producers of its inputs (insertion order when valid).

    With ``strict``, a tensor that neither ``available`` nor a step provides is an error; otherwise it is
    taken to come from outside (a region's body reads its surroundings).
    """
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
                if strict:
                    raise LayerExecutionError(f"{_where(node)} reads tensor '{name}', which nothing produces")
                continue
            producers.add(produced_by[name].index)
            consumers.setdefault(produced_by[name].index, set()).add(node.index)
        waiting_on[node.index] = producers
    ready = [index for index, producers in waiting_on.items() if not producers]
    heapq.heapify(ready)
    ordered: list[Step] = []
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
    for step in ordered:
        if isinstance(step, Region):
            step.body = _topological(step.body, set(), strict=False)
    return ordered


def _needed_steps(steps: list[Step], wanted: list[str]) -> list[Step]:
    """The steps (in their order) that the tensors ``wanted`` depend on."""
    needed = _needed_for(steps, wanted, sinks=False)
    return [step for step in steps if step.index in needed]


def _needed_for(nodes: list[Step], outputs: list[str], *, sinks: bool = True) -> set[int]:
    """Indices of the layers the network outputs (and, with ``sinks``, its assertions) depend on."""
    produced_by = {name: node for node in nodes for name in node.outputs}
    needed: set[int] = set()
    stack = [produced_by[name] for name in outputs if name in produced_by]
    if sinks:
        stack += [node for node in nodes if not node.outputs]  # assertions always run
    while stack:
        node = stack.pop()
        if node.index in needed:
            continue
        needed.add(node.index)
        stack.extend(produced_by[name] for name in node.inputs if name in produced_by)
    return needed


def _last_uses(nodes: list[Step], outputs: list[str]) -> dict[int, list[str]]:
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

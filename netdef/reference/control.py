"""Loops (``ILoop``) and if/else conditionals (``IIfConditional``): their boundary layers and bodies.

A loop or a conditional is read back as one :class:`Region`: its boundary layers plus the layers inside
it, which are the layers that depend (transitively) on a tensor that only exists inside it: the outputs
of its recurrence and iterator layers, or of its conditional-input layers. Layers that read only
tensors defined outside are loop-invariant and run once, before the region, as TensorRT's guide allows
("loop-invariant tensors can be used directly inside the loop"). The executor runs a region as one step
of its schedule; regions nest.

The functions registered here carry each boundary layer's semantics; :class:`LoopRegion` and
:class:`ConditionalRegion` apply them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from netdef.backend import trt
from netdef.reference import costs
from netdef.reference.node import Node, Unsupported
from netdef.reference.registry import register

_LOOP_BOUNDARY = ("TRIP_LIMIT", "RECURRENCE", "ITERATOR", "LOOP_OUTPUT")
_CONDITIONAL_BOUNDARY = ("CONDITION", "CONDITIONAL_INPUT", "CONDITIONAL_OUTPUT")


# --------------------------------------------------------------------------- the boundary layers' semantics


def _inside_only(node, inputs):
    raise Unsupported(f"{node.type_name} runs only as part of its loop or conditional")


@register("TRIP_LIMIT", "ITripLimitLayer", ("kind",), family="control", flops=costs.free)
def trip_limit(node, inputs):
    """How often the loop runs: COUNT takes a 0-d int32/int64 count; WHILE runs while its 0-d bool input is true.

    A loop may have one limit of each kind; it stops at whichever ends it first. The WHILE condition is
    computed in each iteration from that iteration's recurrence values, before the iteration's outputs
    count: ``while i < count and cond(state): outputs(state); state = next(state)``.
    """
    return _inside_only(node, inputs)


@register("RECURRENCE", "IRecurrenceLayer", family="control", flops=costs.free)
def recurrence(node, inputs):
    """A loop-carried value: input 0 in the first iteration, then input 1 of the previous iteration.

    Its output has the shape of input 0, and input 1 must keep that shape.
    """
    return _inside_only(node, inputs)


@register("ITERATOR", "IIteratorLayer", ("axis", "reverse"), family="control", flops=costs.free)
def iterator(node, inputs):
    """Slice i of the input along ``axis`` in iteration i (with ``reverse``, slice M - 1 - i, M the trip count).

    The output drops ``axis``: it is ``take(x, i, axis)``.
    """
    return _inside_only(node, inputs)


@register("LOOP_OUTPUT", "ILoopOutputLayer", ("kind", "axis"), family="control", flops=costs.free)
def loop_output(node, inputs):
    """A loop's result: LAST_VALUE of a recurrence, or every iteration's value stacked (CONCATENATE, REVERSE).

    LAST_VALUE reads a recurrence output and gives its final value, i.e. input 1 of the recurrence after
    the last iteration (its initial value when the loop runs zero times); of any other body tensor (which
    TensorRT's builder refuses) it gives that tensor's value in the last iteration. CONCATENATE stacks the input
    of every iteration along a new axis ``axis`` whose length is the 0-d input 1; REVERSE stacks them
    last iteration first. Rows past the last iteration are zero.
    """
    return _inside_only(node, inputs)


@register("CONDITION", "IConditionLayer", family="control", flops=costs.free)
def condition(node, inputs):
    """The 0-d bool that picks the branch of an if/else conditional."""
    return _inside_only(node, inputs)


@register("CONDITIONAL_INPUT", "IIfConditionalInputLayer", family="control", flops=costs.free)
def conditional_input(node, inputs):
    """An outside tensor brought into a conditional's branches, unchanged: y = x."""
    return _inside_only(node, inputs)


@register("CONDITIONAL_OUTPUT", "IIfConditionalOutputLayer", family="control", flops=costs.free)
def conditional_output(node, inputs):
    """A conditional's result: input 0 (the true branch's tensor) when the condition holds, else input 1.

    Only the layers of the chosen branch run, so the branches may differ in shape.
    """
    return _inside_only(node, inputs)


# --------------------------------------------------------------------------- regions

Step = Any
"""A schedule step: a :class:`Node` or a :class:`Region`."""


class Region:
    """Boundary layers plus body, run as one step: reads ``inputs`` (outside tensors), produces ``outputs``."""

    kind = "REGION"

    def __init__(self, name: str, boundary: list[Node], body: list[Step]):
        self.name = name
        self.boundary = boundary
        self.body = body
        members = boundary + body
        self.index = min(m.index for m in members)
        produced = {name for m in members for name in m.outputs}
        read = [name for m in members for name in m.inputs if name is not None]
        self.inputs: tuple[str, ...] = tuple(dict.fromkeys(n for n in read if n not in produced))
        self.outputs: tuple[str, ...] = ()
        self.type_name = self.kind

    def layer_indices(self) -> set[int]:
        indices = {node.index for node in self.boundary}
        for step in self.body:
            indices |= step.layer_indices() if isinstance(step, Region) else {step.index}
        return indices

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r}: {len(self.boundary)} boundary layers, {len(self.body)} steps>"


Runner = Callable[[list[Step], dict[str, np.ndarray]], None]
"""Runs body steps in order, reading and adding tensors in the dict (the executor's ``_run_steps``)."""


class LoopRegion(Region):
    """An ``ILoop``: trip limits, iterators, recurrences, loop outputs, and the body between them."""

    kind = "LOOP"

    def __init__(self, name: str, boundary: list[Node], body: list[Step]):
        super().__init__(name, boundary, body)
        by_type: dict[str, list[Node]] = {t: [] for t in _LOOP_BOUNDARY}
        for node in boundary:
            by_type[node.type_name].append(node)
        self.limits = by_type["TRIP_LIMIT"]
        self.recurrences = by_type["RECURRENCE"]
        self.iterators = by_type["ITERATOR"]
        self.loop_outputs = by_type["LOOP_OUTPUT"]
        self.outputs = tuple(node.outputs[0] for node in self.loop_outputs)

    def run(self, outer: Mapping[str, np.ndarray], run_body: Runner, finish) -> dict[str, np.ndarray]:
        """Iterate; return the loop outputs by tensor name (each checked by ``finish(node, 0, array)``)."""
        count = self._count(outer)
        whiles = [n for n in self.limits if n.attr("kind") == trt.TripLimit.WHILE]
        if count is None and not whiles:
            if not self.iterators:
                raise Unsupported("loop has no COUNT or WHILE trip limit and no iterator to bound it")
            count = min(outer[n.input_name(0)].shape[int(n.attr("axis"))] for n in self.iterators)
        state = {rec.outputs[0]: outer[rec.input_name(0)] for rec in self.recurrences}
        stacked: dict[str, list[np.ndarray]] = {n.outputs[0]: [] for n in self._scans()}
        last_seen: dict[str, np.ndarray] = {}  # LAST_VALUE of a body tensor: its value in the last iteration
        watched = [n.input_name(0) for n in self.loop_outputs if n.input_name(0) not in state]
        iteration = 0
        while count is None or iteration < count:
            tensors = dict(outer)
            tensors.update(state)
            for node in self.iterators:
                tensors[node.outputs[0]] = self._slice(node, outer, iteration, count)
            run_body(self.body, tensors)
            if any(not bool(np.asarray(tensors[n.input_name(0)])) for n in whiles):
                break
            for node in self._scans():
                stacked[node.outputs[0]].append(tensors[node.input_name(0)])
            last_seen.update((name, tensors[name]) for name in watched)
            state = {rec.outputs[0]: tensors[rec.input_name(1)] for rec in self.recurrences}
            iteration += 1
        results = {}
        for node in self.loop_outputs:
            if node.attr("kind") == trt.LoopOutput.LAST_VALUE:
                if node.input_name(0) in state:
                    value = state[node.input_name(0)]
                elif node.input_name(0) in last_seen:
                    value = last_seen[node.input_name(0)]
                else:
                    raise Unsupported(f"LAST_VALUE output '{node.name}' of a body tensor, but the loop ran 0 times")
            else:
                value = self._stack(node, outer, stacked[node.outputs[0]])
            results[node.outputs[0]] = finish(node, 0, value)
        return results

    def _scans(self) -> list[Node]:
        return [n for n in self.loop_outputs if n.attr("kind") != trt.LoopOutput.LAST_VALUE]

    def _count(self, outer) -> int | None:
        counts = [int(np.asarray(outer[n.input_name(0)])) for n in self.limits if n.attr("kind") == trt.TripLimit.COUNT]
        return min(counts) if counts else None

    @staticmethod
    def _slice(node: Node, outer, iteration: int, count: int | None) -> np.ndarray:
        x = outer[node.input_name(0)]
        axis = int(node.attr("axis"))
        index = iteration
        if node.attr("reverse"):
            if count is None:
                raise Unsupported(f"reverse iterator '{node.name}' needs a COUNT trip limit")
            index = count - 1 - iteration
        if not 0 <= index < x.shape[axis]:
            raise Unsupported(f"iterator '{node.name}' reads slice {index} of an axis of length {x.shape[axis]}")
        return np.take(x, index, axis=axis)

    @staticmethod
    def _stack(node: Node, outer, values: list[np.ndarray]) -> np.ndarray:
        length = int(np.asarray(outer[node.input_name(1)]))
        axis = int(node.attr("axis"))
        if len(values) > length:
            raise Unsupported(f"loop ran {len(values)} iterations but output '{node.name}' has length {length}")
        if node.attr("kind") == trt.LoopOutput.REVERSE:
            values = values[::-1]
        shape = np.shape(values[0]) if values else _declared_element_shape(node)
        dtype = values[0].dtype if values else node.output_dtypes[0]
        rows = list(values) + [np.zeros(shape, dtype)] * (length - len(values))
        return np.stack(rows, axis=axis) if rows else np.zeros(shape[:axis] + (0,) + shape[axis:], dtype)


def _declared_element_shape(node: Node) -> tuple[int, ...]:
    out = node.output_shapes[0]
    if out is None or -1 in out:
        raise Unsupported(f"loop output '{node.name}' ran zero iterations and its element shape is not static")
    axis = int(node.attr("axis"))
    return tuple(out[:axis]) + tuple(out[axis + 1 :])


class ConditionalRegion(Region):
    """An ``IIfConditional``: the condition, inputs, outputs, and the layers of both branches."""

    kind = "CONDITIONAL"

    def __init__(self, name: str, boundary: list[Node], body: list[Step]):
        super().__init__(name, boundary, body)
        self.conditions = [n for n in boundary if n.type_name == "CONDITION"]
        self.cond_inputs = [n for n in boundary if n.type_name == "CONDITIONAL_INPUT"]
        self.cond_outputs = [n for n in boundary if n.type_name == "CONDITIONAL_OUTPUT"]
        self.outputs = tuple(node.outputs[0] for node in self.cond_outputs)
        if len(self.conditions) != 1:
            raise Unsupported(f"conditional '{name}' has {len(self.conditions)} condition layers, expected 1")

    def run(self, outer: Mapping[str, np.ndarray], run_body: Runner, finish, needed_for) -> dict[str, np.ndarray]:
        """Run only the layers the chosen branch's outputs need; return the outputs by tensor name."""
        chosen = bool(np.asarray(outer[self.conditions[0].input_name(0)]))
        tensors = dict(outer)
        for node in self.cond_inputs:
            tensors[node.outputs[0]] = outer[node.input_name(0)]
        wanted = [node.input_name(0 if chosen else 1) for node in self.cond_outputs]
        run_body(needed_for(self.body, wanted), tensors)
        return {
            node.outputs[0]: finish(node, 0, tensors[want])
            for node, want in zip(self.cond_outputs, wanted, strict=True)
        }


# --------------------------------------------------------------------------- finding regions


def _owner(node: Node) -> Any:
    """The ILoop or IIfConditional a boundary node belongs to (None for other layers)."""
    if node.type_name in _LOOP_BOUNDARY:
        return node.attr("loop")
    if node.type_name in _CONDITIONAL_BOUNDARY:
        return node.attr("conditional")
    return None


def _seeds(node: Node) -> tuple[str, ...]:
    """Tensors that exist only inside the node's region (recurrence/iterator/conditional-input outputs)."""
    return node.outputs if node.type_name in ("RECURRENCE", "ITERATOR", "CONDITIONAL_INPUT") else ()


def _exits(node: Node) -> bool:
    return node.type_name in ("LOOP_OUTPUT", "CONDITIONAL_OUTPUT")


def group_regions(nodes: list[Node]) -> list[Step]:
    """``nodes`` with every outermost loop and conditional replaced by one :class:`Region` step.

    Regions' bodies are grouped the same way, so regions nest.
    """
    owners: dict[int, tuple[Any, list[Node]]] = {}
    for node in nodes:
        owner = _owner(node)
        if owner is not None:
            owners.setdefault(id(owner), (owner, []))[1].append(node)
    if not owners:
        return list(nodes)
    consumers: dict[str, list[Node]] = {}
    for node in nodes:
        for name in node.inputs:
            if name is not None:
                consumers.setdefault(name, []).append(node)
    members: dict[int, set[int]] = {}
    for key, (_, boundary) in owners.items():
        inside: set[int] = {n.index for n in boundary}
        frontier = [name for n in boundary for name in _seeds(n)]
        while frontier:
            for reader in consumers.get(frontier.pop(), ()):
                if reader.index in inside:
                    continue
                inside.add(reader.index)
                if not (_exits(reader) and id(_owner(reader)) == key):
                    frontier.extend(reader.outputs)
        members[key] = inside
    # a region that holds a boundary layer of another region holds all of it
    changed = True
    while changed:
        changed = False
        for key, inside in members.items():
            for other, other_inside in members.items():
                if other != key and any(n.index in inside for n in owners[other][1]) and not other_inside <= inside:
                    inside |= other_inside
                    changed = True
    outermost = [
        key
        for key in members
        if not any(other != key and members[key] < members[other] for other in members)
        and not any(other != key and members[key] == members[other] and other < key for other in members)
    ]
    by_index = {node.index: node for node in nodes}
    steps: list[Step] = []
    taken: set[int] = set()
    for key in outermost:
        owner, boundary = owners[key]
        own = {n.index for n in boundary}
        body_nodes = [by_index[i] for i in sorted(members[key] - own) if i in by_index]
        cls = LoopRegion if boundary[0].type_name in _LOOP_BOUNDARY else ConditionalRegion
        steps.append(cls(str(owner.name), sorted(boundary, key=lambda n: n.index), group_regions(body_nodes)))
        taken |= members[key]
    steps.extend(node for node in nodes if node.index not in taken)
    return steps


class AssertionFailed(Exception):
    """An assertion layer saw a false element; the executor reports the layer and its message."""


@register("ASSERTION", "IAssertionLayer", ("message",), family="control", flops=costs.free)
def assertion(node, inputs):
    """Fail the run with the layer's ``message`` when any element of the bool input is false; no output.

    Assertion layers always run, as in TensorRT, even though no output depends on them.
    """
    condition = np.asarray(inputs[0])
    if not condition.all():
        failed = np.argwhere(~condition.astype(bool))
        where = f" (false at {[tuple(int(i) for i in f) for f in failed[:5]]})" if condition.ndim else ""
        raise AssertionFailed(f"assertion failed: {node.attr('message')}{where}")
    return []

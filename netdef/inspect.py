"""What a network definition contains, read back through the TensorRT API: layers, shapes, weights, FLOPs.

:func:`inspect_network` reads every layer of an ``INetworkDefinition`` (or a netdef ``Network``):
name, type, settings, output shapes and dtypes, weight count and FLOPs. :func:`to_dot` draws the
network as a Graphviz graph (layers are nodes, tensors are edges labelled with their shapes) and
:func:`write_graph` renders it to SVG/PNG with Graphviz's ``dot`` where it is installed.

Each layer type's settings text, weight count, FLOPs formula and graph colour come from its entry in
the layer-type registry (:mod:`netdef.reference.registry`), next to its reference semantics. FLOPs count
a multiply-add as 2 and are for the network's batch (a dynamic ``-1`` dimension counts as 1, so a
dynamic-batch network is measured per sample); ``None`` (shown as ``?``, left out of the total) means
the data decides it, e.g. for NMS or plugins.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from netdef import tensorspec
from netdef.dtypes import DTypeError, dtype_name
from netdef.errors import NetdefError
from netdef.reference.readback import layer_type
from netdef.reference.registry import lookup, registered_layer_types

Shape = tuple[int, ...]


@dataclass(frozen=True)
class TensorInfo:
    name: str
    shape: Shape | None
    """TensorRT's inferred shape, ``-1`` where dynamic; None when TensorRT cannot infer it."""
    dtype: str


@dataclass(frozen=True)
class LayerInfo:
    index: int
    name: str
    type: str
    """The ``trt.LayerType`` name, e.g. ``CONVOLUTION``."""
    detail: str
    """The layer's main settings in a few words, e.g. ``5x5 /1 pad 0, 20 maps``."""
    inputs: tuple[str, ...]
    outputs: tuple[TensorInfo, ...]
    params: int
    """Weights held by the layer itself (kernels, biases, scales, constants)."""
    flops: int | None


@dataclass
class NetworkSummary:
    name: str
    inputs: list[TensorInfo]
    outputs: list[TensorInfo]
    layers: list[LayerInfo] = field(default_factory=list)

    @property
    def total_params(self) -> int:
        return sum(layer.params for layer in self.layers)

    @property
    def total_flops(self) -> int:
        return sum(layer.flops or 0 for layer in self.layers)

    @property
    def unknown_flops(self) -> list[str]:
        """Layers whose FLOPs are not counted (type without a formula, or shapes TensorRT cannot infer)."""
        return [layer.name for layer in self.layers if layer.flops is None]

    def by_type(self) -> dict[str, tuple[int, int, int]]:
        """Layer type -> (count, params, FLOPs), most FLOPs first."""
        totals: dict[str, list[int]] = {}
        for layer in self.layers:
            entry = totals.setdefault(layer.type, [0, 0, 0])
            entry[0] += 1
            entry[1] += layer.params
            entry[2] += layer.flops or 0
        return {k: tuple(v) for k, v in sorted(totals.items(), key=lambda kv: -kv[1][2])}  # type: ignore[misc]


# --------------------------------------------------------------------------- reading layers back


def _shape(tensor: Any) -> Shape | None:
    try:
        return tuple(int(d) for d in tensor.shape)
    except RuntimeError:
        return None


def _dtype(tensor: Any) -> str:
    try:
        return dtype_name(tensor.dtype)
    except DTypeError:  # a dtype netdef has no row for
        return str(tensor.dtype).split(".")[-1].lower()


def _tensor_info(tensor: Any) -> TensorInfo:
    return TensorInfo(tensor.name, _shape(tensor), _dtype(tensor))


def _read_layer(index: int, layer: Any) -> LayerInfo:
    """One layer's facts from its layer-type registry entry (settings, weights, FLOPs)."""
    kind = layer_type(layer)
    entry = lookup(kind)
    detail, params, flops = "", 0, None  # a type the registry does not know: no settings, weights, FLOPs
    if entry is not None:
        layer.__class__ = entry.layer_class
        detail, flops = entry.detail(layer), entry.flops(layer)
        params = entry.weights(layer) or 0
    inputs = tuple(t.name for t in (layer.get_input(i) for i in range(layer.num_inputs)) if t is not None)
    outputs = tuple(_tensor_info(layer.get_output(i)) for i in range(layer.num_outputs))
    return LayerInfo(index, layer.name, kind.name, detail, inputs, outputs, params, flops)


def inspect_network(network: Any) -> NetworkSummary:
    """Read every layer of ``network`` (a netdef ``Network`` or a TensorRT ``INetworkDefinition``)."""
    net = getattr(network, "trt_network", network)
    summary = NetworkSummary(
        name=net.name,
        inputs=[_tensor_info(net.get_input(i)) for i in range(net.num_inputs)],
        outputs=[_tensor_info(net.get_output(i)) for i in range(net.num_outputs)],
    )
    summary.layers = [_read_layer(index, net.get_layer(index)) for index in range(net.num_layers)]
    return summary


# --------------------------------------------------------------------------- text helpers


def shape_text(shape: Shape | None) -> str:
    """``(-1, 20, 24, 24)`` -> ``?x20x24x24``; None -> ``unknown``."""
    return tensorspec.shape_text(shape, compact=True)


def count_text(n: float) -> str:
    """``4_580_000`` -> ``4.58 M``; small numbers as they are."""
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n:.0f}"


def flops_text(n: float) -> str:
    """``4_580_000`` -> ``4.58 MFLOPs``; ``500`` -> ``500 FLOPs``."""
    text = count_text(n)
    return text + ("FLOPs" if text[-1].isalpha() else " FLOPs")


def type_text(kind: str) -> str:
    """``MATRIX_MULTIPLY`` -> ``MatrixMultiply``."""
    return "".join(part.capitalize() for part in kind.split("_"))


# --------------------------------------------------------------------------- graph pictures


class _TypeColours(Mapping[str, str]):
    """Layer type name -> fill colour in graph pictures: its family's colour in the layer-type registry."""

    def _table(self) -> dict[str, str]:
        return {kind.name: entry.colour for kind in registered_layer_types() if (entry := lookup(kind))}

    def __getitem__(self, kind: str) -> str:
        return self._table()[kind]

    def __iter__(self) -> Iterator[str]:
        return iter(self._table())

    def __len__(self) -> int:
        return len(self._table())


TYPE_COLOURS: Mapping[str, str] = _TypeColours()
"""Fill colour of each layer type in graph pictures (types the registry does not know are white)."""


def type_colour(kind: str) -> str:
    """Fill colour of a layer type in graph pictures: its family's colour in the layer-type registry."""
    return TYPE_COLOURS.get(kind, "white")


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _label(lines: Sequence[str]) -> str:
    return _quote("\n".join(line for line in lines if line))


def to_dot(summary: NetworkSummary, *, clusters: bool = True) -> str:
    """Graphviz DOT text: one node per layer (coloured by type, with its weights and FLOPs), inputs and
    outputs as ovals, one edge per tensor use labelled with the tensor's shape.

    With ``clusters``, layers are boxed by name scope (``layer1`` > ``layer1.0`` > ``layer1.0.conv1``).
    """
    lines = [
        f"digraph {_quote(summary.name or 'network')} {{",
        "  rankdir=TB;",
        '  graph [fontname="Helvetica", nodesep=0.3, ranksep=0.35, labelloc=t, fontsize=16,',
        f"         label={_quote(_title(summary))}];",
        '  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=11, fillcolor=white];',
        '  edge [fontname="Helvetica", fontsize=9, color="#555555", fontcolor="#333333"];',
    ]
    producer: dict[str, tuple[str, TensorInfo]] = {}
    for i, tensor in enumerate(summary.inputs):
        label = _label(["input: " + tensor.name, shape_text(tensor.shape) + " " + tensor.dtype])
        lines.append(f'  in{i} [shape=oval, fillcolor="#d9f0d3", label={label}];')
        producer[tensor.name] = (f"in{i}", tensor)
    nodes = {layer.index: _layer_node(layer) for layer in summary.layers}
    if clusters:
        lines += _clustered(summary.layers, nodes)
    else:
        lines += [f"  {nodes[layer.index]}" for layer in summary.layers]
    for layer in summary.layers:
        for name in layer.inputs:
            if name in producer:
                source, tensor = producer[name]
                lines.append(f"  {source} -> L{layer.index} [label={_quote(' ' + shape_text(tensor.shape))}];")
        for tensor in layer.outputs:
            producer[tensor.name] = (f"L{layer.index}", tensor)
    for i, tensor in enumerate(summary.outputs):
        label = _label(["output: " + tensor.name, shape_text(tensor.shape) + " " + tensor.dtype])
        lines.append(f'  out{i} [shape=oval, fillcolor="#fdd0a2", label={label}];')
        if tensor.name in producer:
            source, _ = producer[tensor.name]
            lines.append(f"  {source} -> out{i} [label={_quote(' ' + shape_text(tensor.shape))}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _layer_node(layer: LayerInfo) -> str:
    text = [layer.name, f"{type_text(layer.type)}  {layer.detail}".strip()]
    costs = [f"{layer.params:,} weights" if layer.params else ""]
    if layer.flops and layer.type != "CONSTANT":
        costs.append(flops_text(layer.flops))
    text.append(" · ".join(c for c in costs if c))
    colour = type_colour(layer.type)
    extra = ", fontsize=9" if layer.type == "CONSTANT" else ""
    return f'L{layer.index} [fillcolor="{colour}"{extra}, label={_label(text)}];'


def _clustered(layers: list[LayerInfo], nodes: dict[int, str]) -> list[str]:
    """Node lines nested in ``subgraph cluster_*`` boxes by name scope; scopes holding one layer are not boxed."""
    parents = {layer.name.rsplit(".", 1)[0] for layer in layers if "." in layer.name}
    tree: dict = {"layers": [], "children": {}}
    for layer in layers:
        scope = layer.name if layer.name in parents else layer.name.rpartition(".")[0]
        branch = tree
        for part in scope.split(".") if scope else []:
            branch = branch["children"].setdefault(part, {"layers": [], "children": {}})
        branch["layers"].append(layer.index)
    lines: list[str] = []
    counter = [0]

    def size(branch: dict) -> int:
        return len(branch["layers"]) + sum(size(child) for child in branch["children"].values())

    def emit(branch: dict, path: str, indent: str) -> None:
        lines.extend(f"{indent}{nodes[i]}" for i in branch["layers"])
        for part, child in branch["children"].items():
            full = f"{path}.{part}" if path else part
            if size(child) < 2:
                emit(child, full, indent)
                continue
            counter[0] += 1
            lines.append(f"{indent}subgraph cluster_{counter[0]} {{")
            lines.append(f'{indent}  label={_quote(full)}; style="rounded,dashed"; color="#999999"; fontsize=11;')
            emit(child, full, indent + "  ")
            lines.append(f"{indent}}}")

    emit(tree, "", "  ")
    return lines


def _title(summary: NetworkSummary) -> str:
    flops = flops_text(summary.total_flops)
    return f"{summary.name}: {len(summary.layers)} layers, {summary.total_params:,} weights, {flops}"


GRAPH_FORMATS = ("svg", "png", "pdf", "dot", "gv")


@dataclass(frozen=True)
class GraphResult:
    path: Path
    """The file written: the picture, or the DOT text when it could not be rendered."""
    rendered: bool
    message: str


def render_dot(dot_text: str, fmt: str, *, dot: str | None = None, timeout: float = 120) -> bytes:
    """Render DOT text with Graphviz (``dot -T<fmt>``); raise :class:`NetdefError` with dot's message."""
    exe = dot or shutil.which("dot")
    if exe is None:
        raise NetdefError("Graphviz's `dot` is not installed (e.g. `apt-get install graphviz`)")
    proc = subprocess.run([exe, f"-T{fmt}"], input=dot_text.encode(), capture_output=True, timeout=timeout)
    if proc.returncode != 0:
        raise NetdefError(f"`dot -T{fmt}` failed ({proc.returncode}): {proc.stderr.decode(errors='replace').strip()}")
    return proc.stdout


def write_graph(summary: NetworkSummary, path: Path | str) -> GraphResult:
    """Draw ``summary`` into ``path``; the suffix picks the format (.svg, .png, .pdf, or .dot for text).

    Without Graphviz, DOT text is written next to the requested file (``.dot``) and the message says
    how to render it.
    """
    path = Path(path)
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in GRAPH_FORMATS:
        raise NetdefError(f"{path}: unknown graph format {path.suffix!r}; use one of .svg, .png, .pdf, .dot")
    text = to_dot(summary)
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt in ("dot", "gv"):
        path.write_text(text)
        return GraphResult(path, False, f"wrote DOT text to {path}; render it with `dot -Tsvg {path} -o graph.svg`")
    if shutil.which("dot") is None:
        dot_path = path.with_suffix(".dot")
        dot_path.write_text(text)
        return GraphResult(
            dot_path,
            False,
            f"Graphviz's `dot` is not installed, so {path} was not drawn: wrote DOT text to {dot_path}. "
            f"Install Graphviz (e.g. `apt-get install graphviz`) and run `dot -T{fmt} {dot_path} -o {path}`",
        )
    path.write_bytes(render_dot(text, fmt))
    return GraphResult(path, True, f"drew {len(summary.layers)} layers into {path}")

"""What a network definition contains, read back through the TensorRT API: layers, shapes, weights, FLOPs.

:func:`inspect_network` reads every layer of an ``INetworkDefinition`` (or a netdef ``Network``):
name, type, settings, output shapes and dtypes, weight count and FLOPs. :func:`to_dot` draws the
network as a Graphviz graph (layers are nodes, tensors are edges labelled with their shapes) and
:func:`write_graph` renders it to SVG/PNG with Graphviz's ``dot`` where it is installed.

FLOPs count a multiply-add as 2 and are for the network's batch (a dynamic ``-1`` dimension counts
as 1, so a dynamic-batch network is measured per sample):

- convolution: ``2 * Cout * Cin/groups * kh * kw * Hout * Wout`` per sample (deconvolution: with
  the input's spatial size); the bias add is not counted;
- matrix multiply: ``2 * M * N * K`` per matrix product, times the broadcast batch;
- element-wise, activation, unary, quantize/dequantize: one per output element; scale: one per
  element for each of scale, shift, power that is present;
- pooling: kernel area per output element; reduce: one per input element;
- softmax: 3 per element (exp, sum, divide); normalization: 5 per element;
- constants, shuffles, concatenation, slices, casts and other data movement: 0;
- any other layer type: unknown (``None``, shown as ``?``), and left out of the total.
"""

from __future__ import annotations

import functools
import math
import shutil
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from netdef import tensorspec
from netdef.backend import trt
from netdef.dtypes import DTypeError, dtype_name
from netdef.errors import NetdefError

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

_DATA_MOVEMENT = {
    "CONSTANT", "SHUFFLE", "CONCATENATION", "SLICE", "GATHER", "IDENTITY", "CAST", "SHAPE",
    "PADDING", "SQUEEZE", "UNSQUEEZE", "FILL", "ASSERTION",
}  # fmt: skip
_PER_ELEMENT = {"ELEMENTWISE", "ACTIVATION", "UNARY", "PARAMETRIC_RELU", "SELECT", "QUANTIZE", "DEQUANTIZE"}


def layer_type(layer: Any) -> Any:
    """A layer's ``trt.LayerType`` (pooling and activation layers shadow ``.type``)."""
    return trt.ILayer.type.fget(layer)


@functools.cache
def _layer_classes() -> dict[str, Any]:
    """``"convolution"`` -> ``trt.IConvolutionLayer``, for every layer class of the backend."""
    return {
        attr[1:-5].lower(): getattr(trt, attr) for attr in dir(trt) if attr.startswith("I") and attr.endswith("Layer")
    }


def _concrete(layer: Any) -> Any:
    """Give a plain ``ILayer`` from ``get_layer`` its concrete class, so its settings can be read."""
    cls = _layer_classes().get(layer_type(layer).name.replace("_", "").lower())
    if cls is not None:
        layer.__class__ = cls
    return layer


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


def _size(weights: Any) -> int:
    return 0 if weights is None else int(weights.size)


def _numel(shape: Shape | None) -> int | None:
    return None if shape is None else math.prod(max(d, 1) for d in shape)


def _hw(dims: Any) -> str:
    return "x".join(str(int(d)) for d in dims)


def _same(dims: Any) -> str:
    """``(2, 2)`` -> ``2``; ``(1, 2)`` -> ``1x2``."""
    values = [int(d) for d in dims]
    return str(values[0]) if len(set(values)) == 1 else "x".join(map(str, values))


def _window(layer: Any, window: Any) -> str:
    """Kernel, stride and (non-zero) padding: ``3x3 /2 pad 1``."""
    text = f"{_hw(window)} /{_same(layer.stride_nd)}"
    if any(int(d) for d in layer.padding_nd):
        text += f" pad {_same(layer.padding_nd)}"
    return text


def _enum(value: Any) -> str:
    return getattr(value, "name", str(value)).lower()


def _describe(layer: Any, kind: str) -> str:
    """The settings that matter for ``kind``, in a few words."""
    if kind in ("CONVOLUTION", "DECONVOLUTION"):
        text = _window(layer, layer.kernel_size_nd)
        if any(int(d) != 1 for d in layer.dilation_nd):
            text += f" dil {_same(layer.dilation_nd)}"
        if layer.num_groups != 1:
            text += f" groups {layer.num_groups}"
        return text + f", {layer.num_output_maps} maps"
    if kind == "POOLING":
        return f"{_enum(layer.type)} {_window(layer, layer.window_size_nd)}"
    if kind == "ACTIVATION":
        return _enum(layer.type)
    if kind == "ELEMENTWISE":
        return _enum(layer.op)
    if kind == "UNARY":
        return _enum(layer.op)
    if kind == "MATRIX_MULTIPLY":
        marks = {"none": "", "transpose": "ᵀ", "vector": " (vector)"}
        return f"A{marks.get(_enum(layer.op0), '')} · B{marks.get(_enum(layer.op1), '')}"
    if kind in ("SOFTMAX", "REDUCE"):
        axes = [i for i in range(32) if layer.axes >> i & 1]
        prefix = f"{_enum(layer.op)} " if kind == "REDUCE" else ""
        return f"{prefix}axes {axes}" + (" keepdim" if kind == "REDUCE" and layer.keep_dims else "")
    if kind == "SHUFFLE":
        return _describe_shuffle(layer)
    if kind == "CONCATENATION":
        return f"axis {layer.axis}"
    if kind == "CAST":
        return f"to {_enum(layer.to_type)}"
    if kind == "CONSTANT":
        return _hw(layer.shape)
    if kind == "SCALE":
        return f"{_enum(layer.mode)} scale, axis {layer.channel_axis}"
    return ""


def _describe_shuffle(layer: Any) -> str:
    parts = []
    output_rank = len(_shape(layer.get_output(0)) or ())
    input_shape = _shape(layer.get_input(0)) or ()
    first = tuple(layer.first_transpose)[: len(input_shape)]
    if first != tuple(range(len(first))):
        parts.append(f"permute {list(first)}")
    try:
        dims = tuple(int(d) for d in layer.reshape_dims)
    except (RuntimeError, ValueError, TypeError):
        dims = None
    if dims is not None and len(dims) > 0:
        parts.append(f"reshape {list(dims)}")
    second = tuple(layer.second_transpose)[:output_rank]
    if second != tuple(range(len(second))):
        parts.append(f"then permute {list(second)}")
    return ", ".join(parts) or "identity"


def _params(layer: Any, kind: str) -> int:
    if kind in ("CONVOLUTION", "DECONVOLUTION"):
        return _size(layer.kernel) + _size(layer.bias)
    if kind == "SCALE":
        return _size(layer.scale) + _size(layer.shift) + _size(layer.power)
    if kind == "CONSTANT":
        return _size(layer.weights)
    return 0


def _flops(layer: Any, kind: str) -> int | None:
    out = _shape(layer.get_output(0))
    first_input = layer.get_input(0) if layer.num_inputs else None
    inp = _shape(first_input) if first_input is not None else None
    if kind in _DATA_MOVEMENT:
        return 0
    if out is None:
        return None
    numel = _numel(out)
    assert numel is not None
    if kind == "CONVOLUTION" and inp is not None:
        kernel_area = math.prod(int(d) for d in layer.kernel_size_nd)
        return 2 * numel * (max(inp[1], 1) // layer.num_groups) * kernel_area
    if kind == "DECONVOLUTION" and inp is not None:
        kernel_area = math.prod(int(d) for d in layer.kernel_size_nd)
        return 2 * (_numel(inp) or 0) * (layer.num_output_maps // layer.num_groups) * kernel_area
    if kind == "MATRIX_MULTIPLY" and inp is not None:
        return 2 * numel * _inner_dim(inp, layer.op0)
    if kind in _PER_ELEMENT:
        return numel
    if kind == "SCALE":
        return numel * sum(1 for w in (layer.scale, layer.shift, layer.power) if _size(w) > 0)
    if kind == "POOLING":
        return numel * math.prod(int(d) for d in layer.window_size_nd)
    if kind == "REDUCE" and inp is not None:
        return _numel(inp)
    if kind == "SOFTMAX":
        return 3 * numel
    if kind == "NORMALIZATION":
        return 5 * numel
    return None


def _inner_dim(shape: Shape, op: Any) -> int:
    """K of a matrix product: the last axis of A, or the second last when A is transposed."""
    if _enum(op) == "vector" or len(shape) == 1:
        return max(shape[-1], 1)
    return max(shape[-2] if _enum(op) == "transpose" else shape[-1], 1)


def inspect_network(network: Any) -> NetworkSummary:
    """Read every layer of ``network`` (a netdef ``Network`` or a TensorRT ``INetworkDefinition``)."""
    net = getattr(network, "trt_network", network)
    summary = NetworkSummary(
        name=net.name,
        inputs=[_tensor_info(net.get_input(i)) for i in range(net.num_inputs)],
        outputs=[_tensor_info(net.get_output(i)) for i in range(net.num_outputs)],
    )
    for index in range(net.num_layers):
        layer = _concrete(net.get_layer(index))
        kind = layer_type(layer).name
        inputs = tuple(t.name for t in (layer.get_input(i) for i in range(layer.num_inputs)) if t is not None)
        outputs = tuple(_tensor_info(layer.get_output(i)) for i in range(layer.num_outputs))
        summary.layers.append(
            LayerInfo(
                index=index,
                name=layer.name,
                type=kind,
                detail=_describe(layer, kind),
                inputs=inputs,
                outputs=outputs,
                params=_params(layer, kind),
                flops=_flops(layer, kind),
            )
        )
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

TYPE_COLOURS = {
    "CONVOLUTION": "#9ecae1",
    "DECONVOLUTION": "#9ecae1",
    "POOLING": "#a1d99b",
    "REDUCE": "#a1d99b",
    "MATRIX_MULTIPLY": "#fdae6b",
    "ACTIVATION": "#fff2a8",
    "UNARY": "#fff2a8",
    "ELEMENTWISE": "#fcbba1",
    "SCALE": "#c6dbef",
    "NORMALIZATION": "#c6dbef",
    "SOFTMAX": "#dadaeb",
    "CONSTANT": "#f0f0f0",
    "SHUFFLE": "#e0e0e0",
    "CONCATENATION": "#e0e0e0",
    "CAST": "#e0e0e0",
}
"""Fill colour of each layer type in graph pictures (others are white)."""


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
    colour = TYPE_COLOURS.get(layer.type, "white")
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

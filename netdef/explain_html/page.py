"""One self-contained HTML page explaining a network: graph, layer panel, weights, activations, errors.

The page data is plain JSON built here from what TensorRT reports (``describe_layer``,
``inspect_network``), the network's weight records and, optionally, a reference run and a
layer-wise comparison. Styles, script, data and the Graphviz SVG are inlined into
``assets/page.html``; the page fetches nothing.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from netdef.errors import NetdefError
from netdef.explain_html.graph import graph_svg, placeholder_svg
from netdef.explain_html.model import (
    constant_inputs,
    folded_into,
    network_weights,
    own_weights,
    setting_text,
    short_dtype,
)
from netdef.explain_html.stats import heatmap, summary
from netdef.inspect import TYPE_COLOURS, NetworkSummary, inspect_network


@dataclass(frozen=True)
class PageResult:
    path: Path
    size: int
    """Bytes written."""
    layers: int
    note: str | None = None
    """Why the page has no graph (Graphviz missing or failing), or None."""


def write_page(
    network: Any,
    path: Path | str,
    *,
    inputs: dict[str, np.ndarray] | None = None,
    input_label: str = "the input",
    comparison: Any = None,
    comparing: tuple[str, str] = ("tested", "reference"),
    select: str | None = None,
    checkpoint: str | None = None,
) -> PageResult:
    """Write the page explaining ``network`` (a netdef ``Network``) to ``path``.

    ``inputs``: run the reference executor on them and show each layer's output statistics.
    ``comparison``: a :class:`~netdef.reference.compare.ComparisonReport` of another precision
    against ``network``, drawn as a per-layer error plot; ``comparing`` names its two sides
    (``("fp16", "fp32")``). ``select``: the name of the layer shown when the page opens.
    ``checkpoint`` is shown in the header.
    """
    html, note = _render(
        network,
        inputs=inputs,
        input_label=input_label,
        comparison=comparison,
        comparing=comparing,
        select=select,
        checkpoint=checkpoint,
    )
    path = Path(path)
    encoded = html.encode("utf-8")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(encoded)
    except OSError as exc:
        raise NetdefError(f"{path}: cannot write the page: {exc.strerror or exc}") from None
    return PageResult(path, len(encoded), network.trt_network.num_layers, note)


def render_page(network: Any, **options: Any) -> str:
    """The page's HTML text (``options`` as for :func:`write_page`)."""
    return _render(network, **options)[0]


def _render(
    network: Any,
    *,
    inputs: dict[str, np.ndarray] | None = None,
    input_label: str = "the input",
    comparison: Any = None,
    comparing: tuple[str, str] = ("tested", "reference"),
    select: str | None = None,
    checkpoint: str | None = None,
) -> tuple[str, str | None]:
    """The page's HTML text, and why it has no graph (None when it has one)."""
    summary_ = inspect_network(network)
    data = page_data(
        network, summary_, inputs=inputs, input_label=input_label, comparison=comparison, comparing=comparing
    )
    data["checkpoint"] = checkpoint
    data["select"] = select
    try:
        graph, note = graph_svg(summary_), None
    except NetdefError as exc:
        note = f"{exc}; the layer list and the panel work without it"
        graph = placeholder_svg(note)
    html = _fill(
        _asset("page.html"),
        {
            "TITLE": _escape_html(f"{data['name']} ({data['precision']}): netdef explain"),
            "STYLE": _asset("page.css"),
            "SCRIPT": _asset("page.js"),
            "GRAPH": graph,
            "DATA": json.dumps(data, separators=(",", ":"), allow_nan=False).replace("</", "<\\/"),
        },
    )
    return html, note


def page_data(
    network: Any,
    summary_: NetworkSummary,
    *,
    inputs: dict[str, np.ndarray] | None = None,
    input_label: str = "the input",
    comparison: Any = None,
    comparing: tuple[str, str] = ("tested", "reference"),
) -> dict:
    """Everything the page's script shows, as JSON-ready data (summaries only, never raw weights)."""
    from netdef.reference import describe_layer, documentation, semantics

    trt_network = network.trt_network
    described = [describe_layer(trt_network.get_layer(i)) for i in range(trt_network.num_layers)]
    names = [d["name"] for d in described]
    index_of = {name: i for i, name in enumerate(names)}
    producer = {t["name"]: i for i, d in enumerate(described) for t in d["outputs"] if t is not None}
    consumers: dict[str, list[int]] = {}
    for i, d in enumerate(described):
        for t in d["inputs"]:
            if t is not None:
                consumers.setdefault(t["name"], []).append(i)
    outputs = {trt_network.get_output(i).name for i in range(trt_network.num_outputs)}
    weights = network_weights(network)
    constants = {d["name"] for d in described if d["type"] == "CONSTANT"}
    folded = folded_into(network)
    activations = _activations(network, inputs, skip=constants) if inputs is not None else {}
    parents = {name.rsplit(".", 1)[0] for name in names if "." in name}  # scopes as netdef.inspect boxes them

    layers = []
    shown_weights: dict[str, dict] = {}
    for d, info in zip(described, summary_.layers, strict=True):
        own = [w.name for w in own_weights(weights, d["name"])]
        via = [(name, index_of[name]) for name in constant_inputs(d, constants) if name in weights]
        for name in own + [name for name, _ in via]:
            if name not in shown_weights:
                shown_weights[name] = _weight_data(weights[name])
        layer = {
            "name": d["name"],
            "type": d["type"],
            "detail": info.detail,
            "scope": d["name"] if d["name"] in parents else d["name"].rpartition(".")[0],
            "inputs": [_tensor(t, producer=producer.get(t["name"], -1)) if t else None for t in d["inputs"]],
            "outputs": [
                _tensor(t, to=consumers.get(t["name"], []), output=t["name"] in outputs) for t in d["outputs"] if t
            ],
            "settings": [[key, setting_text(key, value)] for key, value in d["params"].items()],
            "params": info.params,
            "flops": info.flops,
            "weights": own,
            "via": via,
            "folded": folded.get(d["name"]),
        }
        if d["name"] in activations:
            layer["act"] = activations[d["name"]]
        layers.append(layer)

    kinds = sorted({d["type"] for d in described})
    batch = [t["shape"][0] for t in network.io_tensors() if t["mode"] == "input" and t["shape"]]
    return {
        "name": network.name,
        "precision": str(network.precision),
        "batch": batch[0] if batch and batch[0] != -1 else "1 (dynamic: per sample)",
        "io": [
            {"name": t["name"], "mode": t["mode"], "shape": t["shape"], "dtype": short_dtype(t["dtype"])}
            for t in network.io_tensors()
        ],
        "totals": {
            "layers": len(layers),
            "params": summary_.total_params,
            "flops": summary_.total_flops,
            "unknown_flops": len(summary_.unknown_flops),
        },
        "colours": {kind: TYPE_COLOURS[kind] for kind in kinds if kind in TYPE_COLOURS},
        "semantics": {kind: semantics(kind) for kind in kinds},
        "docs": {kind: _formula(documentation(kind), semantics(kind)) for kind in kinds},
        "layers": layers,
        "weights": shown_weights,
        "input": input_label if inputs is not None else None,
        "compare": _comparison_data(comparison, *comparing) if comparison is not None else None,
    }


def _formula(doc: str, line: str) -> str:
    """The documentation after its first paragraph when that paragraph is the one-line semantics
    (the page shows that line already; empty when the documentation is that line alone)."""
    first, _, rest = doc.strip().partition("\n\n")
    return rest.strip() if " ".join(first.split()) == " ".join(line.split()) else doc


def _tensor(t: dict, *, producer: int | None = None, to: list[int] | None = None, output: bool = False) -> dict:
    entry: dict[str, Any] = {"name": t["name"], "shape": t["shape"], "dtype": short_dtype(t["dtype"])}
    if producer is not None:
        entry["from"] = producer
    if to is not None:
        entry["to"] = to
    if output:
        entry["output"] = True
    return entry


def _weight_data(weight) -> dict:
    return {
        "shape": list(weight.array.shape),
        "dtype": weight.dtype,
        "role": weight.role,
        "sources": list(weight.sources),
        "stats": summary(weight.array),
    }


def _activations(network: Any, inputs: dict[str, np.ndarray], skip: set[str]) -> dict[str, dict]:
    """Each layer's first output on ``inputs`` (reference executor): statistics and a heat map.

    Layers in ``skip`` (constants: their output is their weight, shown already) are left out.
    """
    from netdef.reference import ReferenceExecutor

    result = ReferenceExecutor(network.trt_network).run(inputs, capture=True)
    found = {}
    for name, arrays in result.layers.items():
        if not arrays or name in skip:
            continue
        array = arrays[0]
        found[name] = {
            "shape": list(array.shape),
            "dtype": short_dtype(array.dtype.name),
            "stats": summary(array),
            "heat": heatmap(array),
        }
    return found


def _comparison_data(report: Any, tested: str, against: str) -> dict:
    """Per compared layer ``[name, max_abs, max_rel, ok]`` (None for an infinite error) and the first failure."""
    first = report.first_failure
    return {
        "title": report.title,
        "tested": tested,
        "against": against,
        "rtol": report.rtol,
        "atol": report.atol,
        "rows": [[row.layer, _finite(row.max_abs), _finite(row.max_rel), bool(row.ok)] for row in report.rows],
        "first": first.layer if first is not None else None,
        "summary": report.summary(),
    }


def _finite(value: float) -> float | None:
    return float(f"{value:.4g}") if np.isfinite(value) else None


def _asset(name: str) -> str:
    return resources.files("netdef.explain_html").joinpath("assets").joinpath(name).read_text(encoding="utf-8")


def _fill(template: str, values: dict[str, str]) -> str:
    """Replace each ``{{KEY}}`` once, in one pass (a value containing ``{{...}}`` is left alone)."""
    return re.sub(r"\{\{([A-Z]+)\}\}", lambda match: values[match.group(1)], template)


def _escape_html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")

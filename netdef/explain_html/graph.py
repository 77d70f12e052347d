"""The network graph of the page: ``netdef inspect``'s Graphviz drawing, as inline SVG.

Nodes keep Graphviz's ``<title>`` (``L12`` for layer 12, ``in0``/``out0`` for the network's inputs
and outputs) and clusters their scope label (``layer1.0``); the page's script finds them by these.
Where Graphviz cannot lay the graph out, :func:`placeholder_svg` says why in its place.
"""

from __future__ import annotations

import re
import textwrap
from dataclasses import replace

from netdef.errors import NetdefError
from netdef.explain_html.model import short_dtype
from netdef.inspect import NetworkSummary, TensorInfo, render_dot, to_dot

_PROLOG = re.compile(r"^.*?(?=<svg\b)", re.DOTALL)
_SIZE = re.compile(r'<svg width="[^"]*" height="[^"]*"')
_COMMENT = re.compile(r"<!--.*?-->\n?", re.DOTALL)


def graph_svg(summary: NetworkSummary) -> str:
    """The layer graph laid out by Graphviz's ``dot`` (scopes as clusters, edges with shape and dtype).

    Raises :class:`NetdefError` saying how to install Graphviz when ``dot`` is missing.
    """
    dot = _anchor_constants(to_dot(_short_dtypes(summary), clusters=True, dtypes=True), summary)
    try:
        svg = render_dot(dot, "svg").decode("utf-8")
    except NetdefError as exc:
        raise NetdefError(f"the page's graph is laid out by Graphviz: {exc}") from None
    svg = _PROLOG.sub("", svg, count=1)
    svg = _COMMENT.sub("", svg)
    return _SIZE.sub('<svg id="graph-svg"', svg, count=1)


def _anchor_constants(dot: str, summary: NetworkSummary) -> str:
    """Keep each constant (a weight) next to its consumer: an invisible edge from the producer of the
    consumer's data input ranks the constant below that producer.

    Without it Graphviz may rank a block's weights level with the end of the previous block, so every
    scope box overlaps the one before and the graph runs diagonally (ViT-B/16: 28,000 units wide).
    """
    producer = {tensor.name: f"in{i}" for i, tensor in enumerate(summary.inputs)}
    constants = {}
    for layer in summary.layers:
        for tensor in layer.outputs:
            producer[tensor.name] = f"L{layer.index}"
            if layer.type == "CONSTANT":
                constants[tensor.name] = f"L{layer.index}"
    anchors = []
    for layer in summary.layers:
        data = [producer[name] for name in layer.inputs if name not in constants and name in producer]
        if data:
            anchors += [
                f"  {data[0]} -> {constants[name]} [style=invis];" for name in layer.inputs if name in constants
            ]
    return dot.rstrip().removesuffix("}") + "".join(line + "\n" for line in anchors) + "}\n"


def placeholder_svg(message: str) -> str:
    """An SVG in the graph's place that shows ``message`` (the list and the panel work without a graph)."""
    lines = textwrap.wrap(message, 90, break_on_hyphens=False)
    texts = "".join(
        f'<text x="10" y="{24 + 18 * n}" font-family="sans-serif" font-size="13">{_escape(line)}</text>'
        for n, line in enumerate(lines)
    )
    height = 40 + 18 * len(lines)
    svg = f'<svg id="graph-svg" viewBox="0 0 700 {height}" xmlns="http://www.w3.org/2000/svg">'
    return svg + f'<g class="graph">{texts}</g></svg>'


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _short_dtypes(summary: NetworkSummary) -> NetworkSummary:
    """The summary with ``fp32``/``fp16`` for ``float32``/``float16``, as the rest of the page writes them."""

    def short(tensor: TensorInfo) -> TensorInfo:
        return replace(tensor, dtype=short_dtype(tensor.dtype))

    return replace(
        summary,
        inputs=[short(t) for t in summary.inputs],
        outputs=[short(t) for t in summary.outputs],
        layers=[replace(layer, outputs=tuple(short(t) for t in layer.outputs)) for layer in summary.layers],
    )

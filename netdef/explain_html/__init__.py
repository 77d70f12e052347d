"""``netdef explain --html``: one self-contained, offline HTML page per network.

The page shows the network graph (laid out by Graphviz, inline SVG, pan and zoom, scopes that
fold), and for each layer what TensorRT computes, its settings, tensors, weights (with their
checkpoint sources and value histograms) and FLOPs; optionally each layer's output on an input
and a per-layer error plot against another precision.

>>> write_page(net, "lenet.html")                                   # doctest: +SKIP
>>> write_page(net, "lenet.html", inputs={"input": x}, comparison=report, comparing=("fp16", "fp32"))  # doctest: +SKIP
"""

from netdef.explain_html.page import PageResult, page_data, render_page, write_page

__all__ = ["PageResult", "page_data", "render_page", "write_page"]

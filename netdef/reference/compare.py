"""Layer-by-layer comparison: the reference executor against a PyTorch module, or two netdef networks.

Both sides run on the same input and every layer output that has a counterpart is compared. The
report lists, per layer, the largest absolute error and the error relative to the layer's scale
(``max |a - b| / max |b|``, with ``b`` the reference side), and points at the FIRST layer, in
execution order, that leaves the tolerance: errors propagate downstream, so that is where to look.

>>> report = compare_with_torch(net, model, x)          # doctest: +SKIP
>>> report.first_failure, report.print()                 # doctest: +SKIP
>>> compare_networks(net_fp16, net_fp32, x).print()      # doctest: +SKIP

PyTorch modules are matched to layers by name: netdef names layers after the module scopes of
the checkpoint (``layer1.0.conv1``), so a module's output is the output of the last layer defined
in its scope (:func:`torch_module_names`). A BatchNorm folded into the convolution before it
(recorded in the network's weight table) maps to that convolution: ``layer1.0.bn1`` -> ``layer1.0.conv1``.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from netdef.errors import ComparisonError, NetworkInputError
from netdef.reference.dtypes import is_float
from netdef.reference.executor import ReferenceExecutor, Result
from netdef.tensorspec import bind_inputs, match_inputs

if TYPE_CHECKING:
    from rich.console import JustifyMethod

__all__ = [
    "ComparisonReport",
    "LayerComparison",
    "compare_networks",
    "compare_with_torch",
    "folded_batch_norms",
    "random_inputs",
    "torch_module_names",
]


@dataclass(frozen=True)
class LayerComparison:
    """One layer output compared with its counterpart.

    ``max_rel`` is ``max_abs / scale`` where ``scale = max |reference|`` (elementwise ratios blow up
    at zeros, so the error is taken relative to the layer's magnitude). ``ok``: ``max_abs <= atol +
    rtol * scale``. Non-finite values count as equal only where both sides hold the same one.
    """

    index: int
    """Position of the layer in the executor's (topological) order."""
    layer: str
    counterpart: str
    """The PyTorch module path, or the layer name in the other network."""
    type: str
    shape: tuple[int, ...]
    max_abs: float
    max_rel: float
    scale: float
    ok: bool
    note: str = ""


@dataclass
class ComparisonReport:
    """Per-layer errors of one comparison, in execution order; ``print()`` or ``str()`` shows a table."""

    title: str
    rows: list[LayerComparison]
    rtol: float
    atol: float
    unmatched: list[str] = field(default_factory=list)
    """Layers or modules with no counterpart (informational: not compared)."""
    outputs: list[LayerComparison] = field(default_factory=list)
    """The network outputs compared by name (netdef against netdef)."""

    @property
    def failures(self) -> list[LayerComparison]:
        return [row for row in self.rows + self.outputs if not row.ok]

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def first_failure(self) -> LayerComparison | None:
        """The earliest layer (in execution order) outside the tolerance, or None."""
        failing = [row for row in self.rows if not row.ok]
        return failing[0] if failing else (self.failures[0] if self.failures else None)

    @property
    def worst(self) -> LayerComparison | None:
        """The row with the largest relative error."""
        rows = self.rows + self.outputs
        return max(rows, key=lambda row: row.max_rel) if rows else None

    def __getitem__(self, name: str) -> LayerComparison:
        """The row of a layer (by netdef layer name or counterpart name)."""
        for row in self.rows + self.outputs:
            if name == row.layer or name in row.counterpart.split(" = "):
                return row
        raise KeyError(f"{name!r} was not compared (compared: {', '.join(r.layer for r in self.rows)})")

    def summary(self) -> str:
        """One line: how many layers were compared, how many failed, which first."""
        line = f"{len(self.rows)} layers compared (rtol {self.rtol:g}, atol {self.atol:g})"
        worst = self.worst
        if worst is not None:
            line += f"; largest relative error {worst.max_rel:.3g} at {worst.layer}"
        first = self.first_failure
        if first is None:
            return line + "; all within tolerance"
        return line + (
            f"; {len(self.failures)} outside the tolerance, the first is {first.layer}"
            + (f" ({first.counterpart})" if first.counterpart != first.layer else "")
            + f": max abs error {first.max_abs:.3g}, relative {first.max_rel:.3g}"
        )

    def table(self, failures_only: bool = False):
        """The report as a ``rich.table.Table`` (only the rows out of tolerance with ``failures_only``)."""
        from rich.table import Table

        table = Table(title=self.title, box=None, pad_edge=False, title_justify="left")
        columns: list[tuple[str, JustifyMethod]] = [
            ("#", "right"), ("layer", "left"), ("vs", "left"), ("type", "left"), ("shape", "left"),
            ("max |ref|", "right"), ("max abs err", "right"), ("rel err", "right"), ("", "left"),
        ]  # fmt: skip
        for header, justify in columns:
            table.add_column(header, justify=justify)
        first = self.first_failure
        for row in self.rows:
            if row.ok and failures_only:
                continue
            self._add_row(table, row, row is first)
        outputs = [row for row in self.outputs if not (row.ok and failures_only)]
        if outputs:
            table.add_section()
            for row in outputs:
                self._add_row(table, row, False, label=f"output {row.layer}")
        return table

    @staticmethod
    def _add_row(table, row: LayerComparison, first: bool, label: str | None = None) -> None:
        status = "ok" if row.ok else ("[bold red]FAIL <- first[/]" if first else "[red]FAIL[/]")
        if row.note:
            status += f" ({row.note})"
        table.add_row(
            str(row.index) if label is None else "",
            label or row.layer,
            "" if row.counterpart == row.layer else row.counterpart,
            row.type,
            "x".join(map(str, row.shape)),
            f"{row.scale:.4g}",
            f"{row.max_abs:.3g}",
            f"{row.max_rel:.3g}",
            status,
        )

    def print(self, console=None, *, failures_only: bool = False) -> None:
        """Print the table, the unmatched names and the summary (to ``console``, default stdout)."""
        from rich.console import Console

        console = console or Console(highlight=False)
        console.print(self.table(failures_only))
        if self.unmatched:
            console.print(f"not compared ({len(self.unmatched)}): " + ", ".join(self.unmatched), markup=False)
        console.print(self.summary(), markup=False)

    def __str__(self) -> str:
        from rich.console import Console

        buffer = io.StringIO()
        self.print(Console(file=buffer, width=200, no_color=True, highlight=False, emoji=False))
        return buffer.getvalue()

    def as_dict(self) -> dict[str, Any]:
        """Plain data (for JSON): title, tolerances, rows, outputs, unmatched, first failure."""
        first = self.first_failure
        return {
            "title": self.title,
            "rtol": self.rtol,
            "atol": self.atol,
            "rows": [asdict(row) for row in self.rows],
            "outputs": [asdict(row) for row in self.outputs],
            "unmatched": list(self.unmatched),
            "first_failure": first.layer if first else None,
        }


# ---------------------------------------------------------------------------------------------- errors


def layer_error(actual: np.ndarray, expected: np.ndarray) -> tuple[float, float, str]:
    """``(max |actual - expected|, max |expected|, note)``, computed in float64.

    Arrays of the same size but another shape are compared after reshaping (noted); arrays of
    different sizes give an infinite error. NaN/Inf count as equal where both hold the same value.
    """
    a = np.asarray(actual).astype(np.float64)
    b = np.asarray(expected).astype(np.float64)
    note = ""
    if a.shape != b.shape:
        if a.size != b.size:
            return math.inf, _scale(b), f"shape {a.shape} vs {b.shape}"
        note = f"reshaped {a.shape} to {b.shape}"
        a = a.reshape(b.shape)
    if a.size == 0:
        return 0.0, 0.0, note
    same = (a == b) | (np.isnan(a) & np.isnan(b))
    with np.errstate(invalid="ignore"):
        diff = np.where(same, 0.0, np.abs(a - b))
    diff[np.isnan(diff)] = math.inf
    return float(diff.max()), _scale(b), note


def _scale(b: np.ndarray) -> float:
    finite = np.abs(b[np.isfinite(b)])
    return float(finite.max()) if finite.size else 0.0


def _row(index, layer, counterpart, kind, actual, expected, rtol, atol) -> LayerComparison:
    max_abs, scale, note = layer_error(actual, expected)
    max_rel = max_abs / scale if scale > 0 else (0.0 if max_abs == 0 else math.inf)
    ok = max_abs <= atol + rtol * scale
    return LayerComparison(index, layer, counterpart, kind, tuple(np.shape(actual)), max_abs, max_rel, scale, ok, note)


# ---------------------------------------------------------------------------------------------- inputs


def _trt_network(network):
    return getattr(network, "trt_network", network)


def _label(network) -> str:
    name = getattr(network, "name", None) or getattr(_trt_network(network), "name", "") or "network"
    precision = getattr(network, "precision", None)
    return f"{name} {precision}" if precision is not None else name


def _inputs_for(executor: ReferenceExecutor, inputs) -> dict[str, np.ndarray]:
    """``inputs`` (one array, or name -> array) checked, float arrays cast to each input's declared type."""
    try:
        bound = bind_inputs(executor.inputs, inputs)
    except NetworkInputError as exc:
        raise ComparisonError(str(exc)) from None
    return match_inputs(executor.inputs, bound, casting="float")


def random_inputs(network, batch: int = 1, seed: int = 0) -> dict[str, np.ndarray]:
    """Seeded standard-normal inputs for every network input; ``-1`` dimensions become ``batch``."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for spec in ReferenceExecutor(_trt_network(network)).inputs:
        shape = tuple(batch if d == -1 else d for d in spec.shape)
        if is_float(spec.dtype):
            arrays[spec.name] = rng.standard_normal(shape).astype(spec.dtype)
        else:
            arrays[spec.name] = rng.integers(0, 2, shape).astype(spec.dtype)
    return arrays


def _layer_types(executor: ReferenceExecutor) -> dict[str, tuple[int, str]]:
    """Layer name -> (position in execution order, type name)."""
    return {node.name: (position, node.type_name) for position, node in enumerate(executor.nodes)}


# ---------------------------------------------------------------------------------------------- netdef vs netdef


def compare_networks(
    network,
    reference,
    inputs,
    *,
    rtol: float = 1e-2,
    atol: float = 0.0,
    title: str | None = None,
) -> ComparisonReport:
    """Run ``network`` and ``reference`` (netdef ``Network``s or TensorRT network definitions) on the
    same ``inputs`` with the reference executor and compare every layer they both have, by name.

    Typical use: the fp16 network against the fp32 one of the same architecture. Errors are relative
    to ``reference``. ``inputs``: one array (single-input networks) or name -> array; float arrays
    are cast to each network's declared input type. Network outputs are compared by name too.
    """
    ours = ReferenceExecutor(_trt_network(network))
    theirs = ReferenceExecutor(_trt_network(reference))
    a = ours.run(_inputs_for(ours, inputs), capture=True)
    b = theirs.run(_inputs_for(theirs, inputs), capture=True)
    types = _layer_types(ours)
    rows = [
        _row(types[name][0], name, name, types[name][1], _first(outputs), _first(b.layers[name]), rtol, atol)
        for name, outputs in _in_order(a, types)
        if name in b.layers and outputs and b.layers[name]
    ]
    label_a, label_b = _label(network), _label(reference)
    if not rows:
        raise ComparisonError(f"{label_a} and {label_b} have no layer name in common")
    unmatched = [f"{name} (only in {label_a})" for name in a.layers if name not in b.layers]
    unmatched += [f"{name} (only in {label_b})" for name in b.layers if name not in a.layers]
    outputs = [
        _row(-1, name, name, "output", a.outputs[name], b.outputs[name], rtol, atol)
        for name in a.outputs
        if name in b.outputs
    ]
    return ComparisonReport(title or f"{label_a} vs {label_b}", rows, rtol, atol, unmatched, outputs)


def _first(outputs: list[np.ndarray]) -> np.ndarray:
    return outputs[0]


def _in_order(result: Result, types: Mapping[str, tuple[int, str]]):
    return sorted(result.layers.items(), key=lambda item: types[item[0]][0])


# ---------------------------------------------------------------------------------------------- netdef vs PyTorch


def _merge_same_layer(rows: list[LayerComparison]) -> list[LayerComparison]:
    """One row per layer: modules with the same output (``layer1.1`` and ``layer1``) share it."""
    merged: list[LayerComparison] = []
    for row in rows:
        last = merged[-1] if merged else None
        if last is not None and last.layer == row.layer and (last.max_abs, last.scale) == (row.max_abs, row.scale):
            merged[-1] = replace(last, counterpart=f"{last.counterpart} = {row.counterpart}")
        else:
            merged.append(row)
    return merged


def folded_batch_norms(network) -> dict[str, str]:
    """BatchNorm module path -> the convolution layer it was folded into (from the network's weight table:
    a derived weight held by that layer, computed from the BatchNorm's ``running_mean``)."""
    folded = {}
    table = getattr(network, "weight_table", None)
    for entry in table.entries("derived") if table is not None else []:
        for key in entry.sources:
            batch_norm = key.removesuffix(".running_mean")
            if key != batch_norm and entry.layer not in ("", batch_norm):  # not a BatchNorm layer of its own
                folded[batch_norm] = entry.layer
    return folded


def torch_module_names(network) -> dict[str, str]:
    """PyTorch module path -> the netdef layer whose output equals that module's output.

    A module's output is the output of the last layer defined in its scope (``fc`` ->
    ``fc.bias_add``, ``layer1.0`` -> ``layer1.0.relu_1``). A folded BatchNorm maps to its
    convolution (``layer1.0.bn1`` -> ``layer1.0.conv1``), and that convolution's own module is
    left out: its pre-BatchNorm output does not exist in the network. A module called several
    times maps to its first call (later calls are the layers ``relu_1``, ``relu_2``...).
    """
    trt_network = _trt_network(network)
    mapping: dict[str, str] = {}
    for i in range(trt_network.num_layers):
        name = trt_network.get_layer(i).name
        parts = name.split(".")
        for end in range(1, len(parts) + 1):
            mapping[".".join(parts[:end])] = name
    folded = folded_batch_norms(network)
    for conv in folded.values():
        mapping.pop(conv, None)
    mapping.update(folded)
    return mapping


def compare_with_torch(
    network,
    module,
    inputs,
    *,
    rtol: float = 1e-4,
    atol: float = 0.0,
    mapping: Mapping[str, str | None] | None = None,
    title: str | None = None,
) -> ComparisonReport:
    """Run ``network`` (a netdef ``Network``) in the reference executor and ``module`` (a PyTorch
    ``nn.Module`` in eval mode) on the same ``inputs`` and compare each module output with its layer.

    Modules are matched by :func:`torch_module_names`; ``mapping`` adds or overrides entries
    (module path -> layer name, or None to skip a module), e.g. for an activation that netdef names
    outside the module's scope. Each module's first call is recorded (a clone: in-place activations
    would change it later); of a tuple output, the first element. Errors are relative to PyTorch;
    its outputs are taken in float32.
    """
    import torch

    executor = ReferenceExecutor(_trt_network(network))
    arrays = _inputs_for(executor, inputs)  # netdef's errors before PyTorch's
    names = dict(torch_module_names(network))
    for path, layer in (mapping or {}).items():
        if layer is None:
            names.pop(path, None)
        else:
            names[path] = layer
    types = _layer_types(executor)
    unknown = sorted({layer for layer in names.values() if layer not in types})
    if unknown:
        raise ComparisonError(f"mapping names layers the network lacks: {unknown}")
    modules = dict(module.named_modules())
    compared = {path: layer for path, layer in names.items() if path in modules and path}
    if not compared:
        raise ComparisonError(
            f"no module of {type(module).__name__} matches a layer of {_label(network)} "
            f"(modules: {', '.join(list(modules)[1:6])}...; layers: {', '.join(list(types)[:5])}...)"
        )

    seen: dict[str, np.ndarray] = {}
    skipped: list[str] = []

    def recorder(path: str):
        def hook(_module, _inputs, output):
            if path in seen or path in skipped:
                return
            if isinstance(output, (tuple, list)) and output and isinstance(output[0], torch.Tensor):
                output = output[0]  # e.g. MultiheadAttention's (attn_output, attn_weights)
            if isinstance(output, torch.Tensor):
                seen[path] = output.detach().float().cpu().numpy().copy()
            else:
                skipped.append(path)

        return hook

    handles = [modules[path].register_forward_hook(recorder(path)) for path in compared]
    try:
        with torch.no_grad():
            module(*(torch.from_numpy(np.asarray(arrays[spec.name], np.float32)) for spec in executor.inputs))
    finally:
        for handle in handles:
            handle.remove()
    result = executor.run(arrays, capture=True)

    rows = [
        _row(types[layer][0], layer, path, types[layer][1], result.layers[layer][0], seen[path], rtol, atol)
        for path, layer in compared.items()
        if path in seen
    ]
    rows = _merge_same_layer(sorted(rows, key=lambda row: (row.index, -row.counterpart.count("."), row.counterpart)))
    folded_convs = set(folded_batch_norms(network).values())
    unmatched = [f"{path} (not called)" for path in compared if path not in seen and path not in skipped]
    unmatched += [f"{path} (output is not a tensor)" for path in skipped]
    unmatched += [
        f"{path} (no layer)"
        for path, child in modules.items()
        if path and path not in compared and path not in folded_convs and not list(child.children())
    ]
    if not rows:
        raise ComparisonError(f"none of the {len(compared)} matched modules of {type(module).__name__} was called")
    title = title or f"{_label(network)} vs PyTorch {type(module).__name__}"
    return ComparisonReport(title, rows, rtol, atol, unmatched)

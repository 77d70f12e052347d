"""``netdef inspect`` (layer table, graph picture) and ``netdef export-polygraphy``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from netdef.cli.app import app, console, err_console
from netdef.cli.build_cmds import Precision

OptionalWeights = Annotated[
    Path | None,
    typer.Option("--weights", "-w", help="Checkpoint (.safetensors, .pth/.pt, .npz, .wts); zeros when omitted."),
]
Batch = Annotated[str | None, typer.Option(help="N for a static batch (default 1), MIN:OPT:MAX for a dynamic one.")]


def _define(arch: str, weights: Path | None, precision: str, batch: str | None):
    """The network of ``arch`` on ``weights`` (or on zeros of the expected shapes), and the batch range."""
    from netdef.cli.build_cmds import define_network

    if weights is not None:
        network, batch_range, _ = define_network(arch, weights, precision, batch)
        return network, batch_range
    import numpy as np

    from architectures import get
    from netdef.build import parse_batch

    architecture = get(arch)
    batch_range = parse_batch(batch) if batch else (1, 1, 1)
    dynamic = batch_range[0] != batch_range[2]
    zeros = {name: np.zeros(shape, np.float32) for name, shape in architecture.expected_weights().items()}
    network = architecture.build_network(zeros, precision=precision, batch=-1 if dynamic else batch_range[0])
    return network, (batch_range if dynamic else None)


@app.command()
def inspect(
    arch: Annotated[str, typer.Argument(help="Architecture name (see `netdef list`).")],
    weights: OptionalWeights = None,
    precision: Precision = "fp32",
    batch: Batch = None,
    graph: Annotated[
        Path | None, typer.Option("--graph", "-g", help="Draw the network: out.svg, out.png, out.pdf or out.dot.")
    ] = None,
    by_type: Annotated[bool, typer.Option("--by-type", help="Also total the layers by type.")] = False,
) -> None:
    """Table of the network's layers read back from TensorRT: type, settings, output shape, weights, FLOPs."""
    from netdef.inspect import count_text, flops_text, inspect_network, shape_text, type_text, write_graph

    if graph is not None:
        from netdef.fileio import check_output

        check_output(graph, [weights])  # before any work: never over an input, never a FIFO or device
    network, batch_range = _define(arch, weights, precision, batch)
    summary = inspect_network(network)
    table = Table("#", "layer", "type", "settings", "output", "dtype", "weights", "FLOPs", box=None, pad_edge=False)
    for column in (table.columns[0], table.columns[6], table.columns[7]):
        column.justify = "right"
    for layer in summary.layers:
        out = layer.outputs[0] if layer.outputs else None
        table.add_row(
            str(layer.index),
            layer.name,
            type_text(layer.type),
            layer.detail,
            shape_text(out.shape) if out else "",
            out.dtype if out else "",
            f"{layer.params:,}" if layer.params else "",
            "?" if layer.flops is None else (count_text(layer.flops) if layer.flops else ""),
        )
    table.add_section()
    total_flops = count_text(summary.total_flops) + ("+?" if summary.unknown_flops else "")
    table.add_row("", "total", "", "", "", "", f"{summary.total_params:,}", total_flops)
    _print_wide(table)
    per = "per sample (dynamic batch)" if batch_range else f"for batch {_static_batch(summary)}"
    console.print(
        f"[bold]{arch}[/] {network.precision}: {len(summary.layers)} layers, {summary.total_params:,} weights "
        f"({_weight_bytes(network)}), {flops_text(summary.total_flops)} {per}"
    )
    if summary.unknown_flops:
        console.print(f"  FLOPs not counted for: {', '.join(summary.unknown_flops)}")
    if by_type:
        types = Table("type", "layers", "weights", "FLOPs", "share", box=None, pad_edge=False)
        total = summary.total_flops or 1
        for kind, (count, params, flops) in summary.by_type().items():
            types.add_row(type_text(kind), str(count), f"{params:,}", count_text(flops), f"{100 * flops / total:.1f}%")
        _print_wide(types)
    if graph is not None:
        result = write_graph(summary, graph, inputs=[weights])
        (console if result.rendered or graph.suffix in (".dot", ".gv") else err_console).print(result.message)


def _print_wide(table: Table) -> None:
    """In a terminal, fit the terminal; in a pipe or file, never wrap cells."""
    if console.is_terminal:
        console.print(table)
        return
    from rich.console import Console
    from rich.measure import Measurement

    needed = Measurement.get(console, console.options.update_width(1000), table).maximum
    Console(file=console.file, width=max(console.width, needed), highlight=False).print(table)


def _static_batch(summary) -> str:
    shape = summary.inputs[0].shape if summary.inputs else None
    return str(shape[0]) if shape else "?"


def _weight_bytes(network) -> str:
    from netdef.cli.build_cmds import human_bytes

    return human_bytes(sum(a.nbytes for a in network.weights.values())) + f" as {network.precision}"


@app.command("export-polygraphy")
def export_polygraphy_cmd(
    arch: Annotated[str, typer.Argument(help="Architecture name (see `netdef list`).")],
    weights: Annotated[Path, typer.Option("--weights", "-w", help="Checkpoint the script will load.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Network script to write (.py).")],
    precision: Precision = "fp32",
    batch: Batch = None,
) -> None:
    """Write a Polygraphy network script (``load_network()``) that rebuilds this network with netdef."""
    from netdef.build import parse_batch
    from netdef.fileio import check_output
    from netdef.polygraphy_export import export_polygraphy, polygraphy_commands

    check_output(output, [weights])  # before any work: never over an input, never a FIFO or device
    batch_range = parse_batch(batch) if batch else None
    path = export_polygraphy(arch, weights, output, precision=precision, batch=batch_range)
    console.print(f"[bold green]wrote[/] {path}: load_network() for Polygraphy's --model-type=trt-network-script")
    for command in polygraphy_commands(arch, str(path), batch_range):
        console.print(f"  {command}", markup=False)

"""``netdef inspect`` (layer table, graph picture) and ``netdef export-polygraphy``."""

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from netdef.cli.app import app, console, err_console, new_table
from netdef.cli.build_cmds import Precision
from netdef.cli.targets import TARGET_HELP, Options, Strict

if TYPE_CHECKING:
    from rich.table import Table

OptionalWeights = Annotated[
    Path | None,
    typer.Option("--weights", "-w", help="Checkpoint (.safetensors, .pth/.pt, .npz, .wts); zeros when omitted."),
]
Batch = Annotated[str | None, typer.Option(help="N for a static batch (default 1), MIN:OPT:MAX for a dynamic one.")]


def _define(target: str, weights: Path | None, precision: str, batch: str | None, options, strict: bool):
    """The network of ``target`` (a definition on ``weights`` or zeros, or an engine file) and its batch range."""
    from netdef.cli.targets import batch_range, define, is_engine

    definition_batch, dynamic = batch_range(batch)
    defined = define(
        target, weights, precision=precision, batch=definition_batch, options=options, strict=strict, zeros=True
    )
    if is_engine(target):
        profile = (defined.engine.metadata.get("profile") or {}).get("batch")
        dynamic = tuple(profile) if profile else None
    return defined.network, dynamic


@app.command()
def inspect(
    arch: Annotated[str, typer.Argument(help=TARGET_HELP + ", or an engine file.")],
    weights: OptionalWeights = None,
    precision: Precision = "fp32",
    batch: Batch = None,
    graph: Annotated[
        Path | None, typer.Option("--graph", "-g", help="Draw the network: out.svg, out.png, out.pdf or out.dot.")
    ] = None,
    by_type: Annotated[bool, typer.Option("--by-type", help="Also total the layers by type.")] = False,
    option: Options = None,
    strict: Strict = False,
) -> None:
    """Table of the network's layers read back from TensorRT: type, settings, output shape, weights, FLOPs.

    An engine file is defined again from its record (its checkpoint unless --weights; precision and
    batch as built).
    """
    from netdef.inspect import count_text, flops_text, inspect_network, shape_text, type_text, write_graph

    if graph is not None:
        from netdef.fileio import check_output

        check_output(graph, [weights, arch if Path(arch).exists() else None])  # before any work
    network, batch_range = _define(arch, weights, precision, batch, option, strict)
    summary = inspect_network(network)
    table = new_table("#", "layer", "type", "settings", "output", "dtype", "weights", "FLOPs", box=None, pad_edge=False)
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
        types = new_table("type", "layers", "weights", "FLOPs", "share", box=None, pad_edge=False)
        total = summary.total_flops or 1
        for kind, (count, params, flops) in summary.by_type().items():
            types.add_row(type_text(kind), str(count), f"{params:,}", count_text(flops), f"{100 * flops / total:.1f}%")
        _print_wide(types)
    if graph is not None:
        result = write_graph(summary, graph, inputs=[weights])
        (console if result.rendered or graph.suffix in (".dot", ".gv") else err_console).print(result.message)


def _print_wide(table: "Table") -> None:
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
    arch: Annotated[str, typer.Argument(help=TARGET_HELP + ".")],
    weights: Annotated[Path, typer.Option("--weights", "-w", help="Checkpoint the script will load.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Network script to write (.py).")],
    precision: Precision = "fp32",
    batch: Batch = None,
    option: Options = None,
    strict: Strict = False,
) -> None:
    """Write a Polygraphy network script (``load_network()``) that rebuilds this network with netdef."""
    from netdef.build import parse_batch
    from netdef.cli.targets import batch_range as parse_batch_range
    from netdef.cli.targets import define
    from netdef.fileio import check_output
    from netdef.polygraphy_export import export_polygraphy, polygraphy_commands

    check_output(output, [weights, arch if Path(arch).exists() else None])  # before any work
    definition_batch, _ = parse_batch_range(batch)
    network = define(
        arch, weights, precision=precision, batch=definition_batch, options=option, strict=strict
    ).network  # problems show now, not inside Polygraphy
    batch_range = parse_batch(batch) if batch else None
    path = export_polygraphy(network, None, output, batch=batch_range)
    console.print(f"[bold green]wrote[/] {path}: load_network() for Polygraphy's --model-type=trt-network-script")
    for command in polygraphy_commands(network, str(path), batch_range):
        console.print(f"  {command}", markup=False)

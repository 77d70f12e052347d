"""``netdef convert`` and ``netdef weights``: checkpoint conversion and listing."""

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from netdef.cli.app import app, console, new_table
from netdef.cli.build_cmds import human_bytes


@app.command()
def convert(
    source: Annotated[Path, typer.Argument(help="Checkpoint: .safetensors, .pth/.pt, .npz or .wts.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="File to write: .safetensors, .npz or .wts.")],
    dtype: Annotated[
        str | None, typer.Option("--dtype", help="Cast floating tensors: fp32, fp16 or bf16 (default: keep).")
    ] = None,
    rename: Annotated[
        list[str] | None,
        typer.Option("--rename", help="OLD=NEW (literal) or s/PATTERN/REPL/ (regex); repeatable, applied in order."),
    ] = None,
    strip_prefix: Annotated[
        list[str] | None, typer.Option("--strip-prefix", help="Drop this prefix from names (before --rename).")
    ] = None,
    shapes_from: Annotated[
        str | None,
        typer.Option("--shapes-from", help="Architecture whose weight shapes to restore (.wts tensors are flat)."),
    ] = None,
) -> None:
    """Convert a checkpoint to .safetensors (or .npz/.wts), optionally renaming, reshaping and casting."""
    from netdef.weights.convert import convert as convert_checkpoint

    shapes = None
    if shapes_from is not None:
        from netdef.cli.targets import architecture

        shapes = architecture(shapes_from).expected_weights()
    summary = convert_checkpoint(
        source, output, dtype=dtype, rules=rename or (), strip_prefixes=strip_prefix or (), shapes=shapes
    )
    details = []
    if summary.renamed:
        details.append(f"{summary.renamed} renamed")
    if summary.reshaped:
        details.append(f"{summary.reshaped} reshaped like {shapes_from}")
    if summary.cast:
        details.append(f"{summary.cast} cast to {dtype}")
    console.print(
        f"[bold green]converted[/] {source} ({human_bytes(summary.bytes_in)}) -> {output} "
        f"({human_bytes(summary.bytes_out)}): {summary.tensors} tensors, {summary.parameters:,} parameters"
        + (f", {', '.join(details)}" if details else "")
    )


@app.command()
def weights(
    checkpoint: Annotated[Path, typer.Argument(help="Checkpoint: .safetensors, .pth/.pt, .npz or .wts.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """List a checkpoint's tensors (name, shape, dtype, parameters, bytes) and the totals."""
    from netdef.weights import Checkpoint

    ckpt = Checkpoint.load(checkpoint)
    rows: list[dict[str, Any]] = [
        {"name": name, "shape": list(a.shape), "dtype": a.dtype.name, "parameters": int(a.size), "bytes": int(a.nbytes)}
        for name, a in ckpt.items()
    ]
    dtypes: dict[str, int] = {}
    for row in rows:
        dtypes[row["dtype"]] = dtypes.get(row["dtype"], 0) + row["parameters"]
    total = {"tensors": len(rows), "parameters": ckpt.num_parameters, "bytes": ckpt.nbytes, "dtypes": dtypes}
    if as_json:
        typer.echo(json.dumps({"file": str(checkpoint), "tensors": rows, "total": total}, indent=1))
        return
    table = new_table("name", "shape", "dtype", "parameters", "size", title=str(checkpoint), title_justify="left")
    for column in ("parameters", "size"):
        table.columns[[c.header for c in table.columns].index(column)].justify = "right"
    for row in rows:
        shape = "x".join(map(str, row["shape"])) or "scalar"
        table.add_row(row["name"], shape, row["dtype"], f"{row['parameters']:,}", human_bytes(row["bytes"]))
    table.add_section()
    mix = ", ".join(f"{d} {n:,}" for d, n in dtypes.items())
    table.add_row(f"total: {len(rows)} tensors", "", mix, f"{ckpt.num_parameters:,}", human_bytes(ckpt.nbytes))
    console.print(table)

"""``netdef refit``: update an engine's weights from a new checkpoint, or (``--check``) only validate."""

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from netdef.cli.app import app, console, err_console
from netdef.cli.build_cmds import human_bytes


@app.command()
def refit(
    engine_file: Annotated[Path, typer.Argument(help="A refittable netdef engine (built with --refit).")],
    checkpoint: Annotated[Path, typer.Argument(help="The new checkpoint (same architecture and names).")],
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Refitted engine file to write.")] = None,
    check: Annotated[
        bool, typer.Option("--check", help="Validate only, on the CPU: print the plan, write nothing.")
    ] = False,
    strict: Annotated[bool, typer.Option("--strict", help="Checkpoint entries no weight uses are errors.")] = False,
    old: Annotated[
        Path | None,
        typer.Option(help="With --check: the checkpoint to diff against (default: the one the engine was built from)."),
    ] = None,
    device_weights: Annotated[
        bool, typer.Option("--device-weights", help="Upload the new weights to the GPU (torch) before refitting.")
    ] = False,
) -> None:
    """Refit ENGINE_FILE with CHECKPOINT's weights without rebuilding; the input file is never modified."""
    if check:
        _check(engine_file, checkpoint, strict, old)
        return
    if output is None:
        raise typer.BadParameter("give --output/-o for the refitted engine (or --check to validate only)")
    from netdef.cli.targets import load_zoo
    from netdef.refit import refit_engine_file

    load_zoo()
    report = refit_engine_file(
        engine_file, checkpoint, output, strict=strict, location="device" if device_weights else "host"
    )
    console.print(
        f"[bold green]refit[/] {escape(str(output))}  from {escape(str(checkpoint))}: "
        f"{report.weights} weights ({human_bytes(report.nbytes)}, {report.location})\n"
        f"  plan {report.plan_seconds:.2f} s, deserialize {report.deserialize_seconds:.2f} s, "
        f"refit {report.refit_seconds:.3f} s, serialize {report.serialize_seconds:.2f} s "
        f"(total {report.total_seconds:.2f} s)"
    )


def _check(engine_file: Path, checkpoint: Path, strict: bool, old: Path | None) -> None:
    """Print the plan for ``checkpoint``: every weight, what it is computed from and how far it moved.

    Reads the engine's metadata only (its definition record and weight table): the plan bytes are
    verified where they are used, by ``netdef refit`` and ``netdef info``."""
    from netdef.cli.targets import load_zoo
    from netdef.engine import Engine
    from netdef.errors import NetdefError
    from netdef.refit.plan import refit_plan
    from netdef.weights.fingerprint import changed_since

    load_zoo()
    metadata = Engine.read_metadata(engine_file)
    plan = refit_plan(metadata, checkpoint, strict=strict, engine_source=str(engine_file))
    definition = metadata.get("definition") or {}
    recorded = definition.get("checkpoint")
    if old is None and recorded and Path(recorded).is_file():
        old_source: Path | None = Path(recorded)  # refused by refit_plan when it changed since the build
    else:
        old_source = old
    diffs: dict[str, float | None] = {}
    unchanged = old_source is not None and (
        old is not None or changed_since(old_source, definition.get("checkpoint_fingerprint")) is None
    )
    if old_source is not None and unchanged and _same_contents(old_source, checkpoint):
        diffs = {w.name: 0.0 for w in plan}  # the same bytes define the same weights: no second definition
    elif old_source is not None:
        try:
            diffs = plan.max_abs_diff(refit_plan(metadata, old, engine_source=str(engine_file)))
        except NetdefError as exc:
            err_console.print(f"[yellow]warning:[/] no diff against {escape(str(old_source))}: {escape(str(exc))}")
            old_source = None
    old = old_source
    rows = [("weight", "shape", "dtype", *(["max |new - old|"] if old else []), "from")]
    for w in plan:
        diff = diffs.get(w.name)
        shown = ["" if diff is None else f"{diff:.3g}"] if old else []
        sources = "checkpoint" if not w.derived else "derived: " + compact_names(w.sources)
        rows.append((w.name, "x".join(map(str, w.shape)), w.dtype, *shown, sources))
    header, *lines = aligned_columns(rows)
    console.print(header, style="bold", markup=False)
    console.print("\n".join(lines), markup=False)
    for key in plan.unused_keys:
        err_console.print(f"[yellow]warning:[/] {escape(str(checkpoint))}: entry {escape(repr(key))} is not used")
    derived = sum(w.derived for w in plan)
    console.print(
        f"[bold green]plan OK[/]  {escape(str(engine_file))} ({plan.engine_name}, {plan.precision}) "
        f"from {escape(str(checkpoint))}: "
        f"{len(plan)} weights ({derived} derived), {human_bytes(plan.nbytes)}, computed in {plan.seconds:.2f} s"
        + (f"; diffed against {escape(str(old))}" if old else "")
    )
    if not metadata.get("refit"):
        console.print(
            "[yellow]note:[/] this engine is not refittable: `netdef refit` without --check will refuse it "
            "(rebuild with `netdef build --refit`)"
        )


def aligned_columns(rows: list[tuple[str, ...]]) -> list[str]:
    """``rows`` as lines of text with every column padded to its widest cell, nothing cut or wrapped.

    (A plan lists a hundred weights or more: plain lines print at once, keep long names whole and
    grep well; the last column is the only one of unbounded width.)"""
    widths = [max(map(len, column)) for column in zip(*rows, strict=True)]
    return ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows]


def _same_contents(a: Path, b: Path) -> bool:
    """Whether files ``a`` and ``b`` hold the same bytes (fingerprints, memoised per process)."""
    from netdef.weights.fingerprint import fingerprint

    try:
        return a.samefile(b) or fingerprint(a) == fingerprint(b)
    except OSError:
        return False


def compact_names(names) -> str:
    """``a.weight, bn.weight, bn.bias`` -> ``a.weight, bn.{weight,bias}`` (order kept)."""
    groups: dict[str, list[str]] = {}
    for name in names:
        prefix, _, leaf = name.rpartition(".")
        groups.setdefault(prefix, []).append(leaf)
    parts = []
    for prefix, leaves in groups.items():
        head = f"{prefix}." if prefix else ""
        parts.append(f"{head}{leaves[0]}" if len(leaves) == 1 else f"{head}{{{','.join(leaves)}}}")
    return ", ".join(parts)

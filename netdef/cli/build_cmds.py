"""``netdef build``, ``netdef info`` and ``netdef list``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from netdef.cli.app import app, console
from netdef.cli.targets import TARGET_HELP, Options, Strict

Precision = Annotated[str, typer.Option("--precision", "-p", help="fp32, fp16, bf16 or int8 (dtypes/Q/DQ, no flags).")]
Weights = Annotated[Path, typer.Option("--weights", "-w", help="Checkpoint: .safetensors, .pth/.pt, .npz or .wts.")]


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


@app.command()
def build(
    arch: Annotated[str, typer.Argument(help=TARGET_HELP + ".")],
    weights: Weights,
    output: Annotated[Path, typer.Option("--output", "-o", help="Engine file to write.")],
    precision: Precision = "fp32",
    batch: Annotated[str | None, typer.Option(help="N for a static batch, MIN:OPT:MAX for a dynamic one.")] = None,
    workspace: Annotated[str | None, typer.Option(help="Workspace memory-pool limit, e.g. 512M or 2G.")] = None,
    refit: Annotated[bool, typer.Option("--refit", help="Make every checkpoint weight refittable.")] = False,
    strip_weights: Annotated[
        bool, typer.Option("--strip-weights", help="Weight-stripped plan, refit at load.")
    ] = False,
    timing_cache: Annotated[Path | None, typer.Option(help="Timing cache file to read and update.")] = None,
    calibration: Annotated[Path | None, typer.Option(help="INT8 calibration cache (`netdef calibrate`).")] = None,
    quiet: Annotated[
        bool, typer.Option("--quiet", "-q", help="No progress bars (off anyway when not a terminal).")
    ] = False,
    option: Options = None,
    strict: Strict = False,
) -> None:
    """Build an engine from a checkpoint and print a short summary. Writes nothing on failure.

    The engine records how to define its network again (definition, options, inputs, precision,
    calibration, the checkpoint's path and fingerprint), so `netdef run`, `inspect`, `explain` and
    `refit --check` work on it from any directory.
    """
    import time

    from netdef.build import BuildConfig, parse_size
    from netdef.cli.targets import batch_range as parse_batch_range
    from netdef.cli.targets import define
    from netdef.network import num_parameters

    started = time.perf_counter()
    definition_batch, batch_range = parse_batch_range(batch)
    network = define(
        arch, weights, precision=precision, batch=definition_batch, calibration=calibration, options=option,
        strict=strict,
    ).network  # fmt: skip
    config = BuildConfig(
        batch=batch_range,
        workspace=parse_size(workspace) if workspace else None,
        refit=refit,
        strip_weights=strip_weights,
        timing_cache=timing_cache,
    )
    from netdef.progress import interactive_build

    engine = interactive_build(network, config, console=None if quiet else console)
    engine.save(output)
    total = time.perf_counter() - started
    shape = (
        "dynamic " + ":".join(map(str, batch_range)) if batch_range else f"static {network.io_tensors()[0]['shape'][0]}"
    )
    console.print(
        f"[bold green]built[/] {output}  {arch} {network.precision} batch {shape}\n"
        f"  layers {network.num_layers}, weights {len(network.weights)} "
        f"({num_parameters(network):,} parameters), engine {human_bytes(len(engine.plan))}\n"
        f"  build {engine.metadata['build_seconds']:.2f} s (total {total:.2f} s) with {engine.backend[0]} "
        f"{engine.backend[1]}" + (", refittable" if engine.refittable else "")
    )


@app.command()
def info(engine_file: Annotated[Path, typer.Argument(help="A netdef engine file.")]) -> None:
    """Print an engine file's metadata: backend, precision, inputs and outputs, profile, weights."""
    from netdef.engine import Engine

    engine = Engine.load(engine_file)
    meta = engine.metadata
    console.print(f"[bold]{engine_file}[/]  ({human_bytes(len(engine.plan))} plan, sha256 {meta['plan_sha256'][:16]}…)")
    console.print(
        f"  network {meta.get('name')}  precision {engine.precision}  backend {engine.backend[0]} {engine.backend[1]}"
        f"  netdef {meta.get('netdef_version')}  built {meta.get('created')} in {meta.get('build_seconds')} s"
    )
    if meta.get("profile"):
        console.print(f"  profile {meta['profile']}")
    table = Table("mode", "name", "shape", "dtype", box=None, pad_edge=False)
    for t in meta.get("io", []):
        table.add_row(t["mode"], t["name"], "x".join(str(d) for d in t["shape"]), t["dtype"])
    console.print(table)
    definition = meta.get("definition") or {}
    if definition:
        options = " ".join(f"{k}={v!r}" for k, v in sorted((definition.get("options") or {}).items()))
        where = definition.get("file") or definition.get("module") or "?"
        console.print(
            f"  defined by {definition.get('architecture')} ({where}:{definition.get('function')})"
            + (f" with {options}" if options else "")
            + f", checkpoint {definition.get('checkpoint')}",
            markup=False,
        )
    else:
        console.print("  defined ad hoc: no definition function recorded (refit with refit_plan_from_network)")
    weights = meta.get("weights", {})
    derived = meta.get("derived_weights", {})
    console.print(
        f"  {meta.get('num_layers')} layers, {len(weights)} named weights ({len(derived)} derived), "
        f"refittable: {'yes' if engine.refittable else 'no'}, weight-stripped: {'yes' if engine.stripped else 'no'}"
    )


@app.command("list")
def list_architectures() -> None:
    """List the architectures by family, with their options, parameter counts and input shapes."""
    from netdef.cli.targets import load_zoo
    from netdef.definition import registered

    load_zoo()
    table = Table("name", "input", "output", "parameters", "options", "description", box=None, pad_edge=False)
    family = None
    for arch in registered():
        if arch.family != family:
            family = arch.family
            table.add_row(f"[bold]{family}:[/]")
        options = " ".join(f"{k}={v!r}" for k, v in sorted(arch.options.items()))
        table.add_row(
            arch.name,
            "x".join(map(str, arch.input_shape)),
            ",".join(arch.outputs),
            f"{arch.num_parameters():,}",
            options,
            arch.description,
        )
    console.print(table)

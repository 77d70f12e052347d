"""``netdef build``, ``netdef info`` and ``netdef list``."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from netdef.cli.app import app, console, err_console
from netdef.cli.stages import mark

Precision = Annotated[str, typer.Option("--precision", "-p", help="fp32, fp16, bf16 or int8 (dtypes/Q/DQ, no flags).")]
Weights = Annotated[Path, typer.Option("--weights", "-w", help="Checkpoint: .safetensors, .pth/.pt, .npz or .wts.")]


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


def define_network(arch: str, weights: Path, precision: str, batch: str | None, calibration: Path | None = None):
    """Load ``weights`` and define architecture ``arch``: (network, batch range or None, architecture)."""
    from architectures import get
    from netdef.build import parse_batch
    from netdef.weights import Checkpoint

    architecture = get(arch)
    batch_range = parse_batch(batch) if batch else (1, 1, 1)
    dynamic = batch_range[0] != batch_range[2]
    checkpoint = Checkpoint.load(weights)
    mark("read")
    network = architecture.build_network(
        checkpoint, precision=precision, batch=-1 if dynamic else batch_range[0], calibration=calibration
    )
    mark("define")
    return network, (batch_range if dynamic else None), architecture


@app.command()
def build(
    arch: Annotated[str, typer.Argument(help="Architecture name (see `netdef list`).")],
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
    cache: Annotated[
        Path | None,
        typer.Option(
            "--cache",
            help="Engine cache directory (or NETDEF_CACHE=DIR): reuse the engine built from the same definition, "
            "weights and settings instead of building again.",
        ),
    ] = None,
) -> None:
    """Build an engine from a checkpoint and print a short summary. Writes nothing on failure."""
    import time

    from netdef.build import BuildConfig, parse_size
    from netdef.cache import cache_dir

    mark("start")
    started = time.perf_counter()
    batch_range = _batch_range(batch)
    config = BuildConfig(
        batch=batch_range,
        workspace=parse_size(workspace) if workspace else None,
        refit=refit,
        strip_weights=strip_weights,
        timing_cache=timing_cache,
    )
    definition = {"architecture": arch, "options": {}, "checkpoint": str(weights.resolve())}
    if calibration is not None:
        definition["calibration"] = str(calibration)

    def define_and_build():
        from netdef.progress import interactive_build

        network, _, architecture = define_network(arch, weights, precision, batch, calibration)
        for key in network.unused_keys():
            err_console.print(f"[yellow]warning:[/] {weights}: entry {key!r} is not used by {arch}")
        definition["architecture"] = architecture.name
        engine = interactive_build(network, config, console=None if quiet else console, definition=definition)
        mark("build")
        return engine

    root = cache_dir(cache)
    if root is None:
        engine, source = define_and_build(), "build"
    else:
        record = {"architecture": arch, "options": {}, "precision": precision, "batch": batch}
        engine, source = _build_cached(root, record, weights, calibration, config, define_and_build)
    engine.save(output)
    mark("write")
    _print_summary(output, engine, source, time.perf_counter() - started)


def _batch_range(batch: str | None):
    """The dynamic batch range of ``--batch``, or None for a static batch."""
    from netdef.build import parse_batch

    batch_range = parse_batch(batch) if batch else (1, 1, 1)
    return batch_range if batch_range[0] != batch_range[2] else None


def _build_cached(root, record, weights, calibration, config, define_and_build):
    """``define_and_build()`` through the engine cache at ``root``: (engine, "cache" | "refit" | "build")."""
    from netdef.cache import EngineCache, build_key_parts, build_through_cache, file_digest

    cache = EngineCache(root)
    digest = cache.fingerprint(weights) + (f"+{file_digest(calibration)}" if calibration is not None else "")
    parts = build_key_parts(record, digest, config)
    result = build_through_cache(cache, parts, define_and_build, checkpoint=weights)
    return result.engine, result.source


def _print_summary(output: Path, engine, source: str, total: float) -> None:
    meta = engine.metadata
    profile_batch = (meta.get("profile") or {}).get("batch")
    inputs = [t for t in meta.get("io", []) if t["mode"] == "input"]
    shape = "dynamic " + ":".join(map(str, profile_batch)) if profile_batch else f"static {inputs[0]['shape'][0]}"
    label = (meta.get("definition") or {}).get("architecture") or meta.get("name")
    weights = meta.get("weights", {})
    parameters = sum(math.prod(w["shape"]) for w in weights.values())
    how = {
        "cache": "from cache",
        "refit": "refit from a cached engine",
        "build": f"build {meta['build_seconds']:.2f} s",
    }[source]
    console.print(
        f"[bold green]built[/] {output}  {label} {engine.precision} batch {shape}\n"
        f"  layers {meta.get('num_layers')}, weights {len(weights)} ({parameters:,} parameters), "
        f"engine {human_bytes(len(engine.plan))}\n"
        f"  {how} (total {total:.2f} s) with {engine.backend[0]} {engine.backend[1]}"
        + (", refittable" if engine.refittable else "")
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
    weights = meta.get("weights", {})
    derived = meta.get("derived_weights", {})
    console.print(
        f"  {meta.get('num_layers')} layers, {len(weights)} named weights ({len(derived)} derived), "
        f"refittable: {'yes' if engine.refittable else 'no'}, weight-stripped: {'yes' if engine.stripped else 'no'}"
    )


@app.command("list")
def list_architectures() -> None:
    """List the architectures with their parameter counts and input shapes."""
    from architectures import get, names

    table = Table("name", "input", "output", "parameters", "description", box=None, pad_edge=False)
    for name in names():
        arch = get(name)
        table.add_row(
            name, "x".join(map(str, arch.input_shape)), arch.output, f"{arch.num_parameters():,}", arch.description
        )
    console.print(table)

"""``netdef build``, ``netdef info`` and ``netdef list``."""

import math
from pathlib import Path
from typing import Annotated

import typer

from netdef.cli.app import app, console, new_table
from netdef.cli.stages import mark
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
    cache: Annotated[
        Path | None,
        typer.Option(
            "--cache",
            help="Engine cache directory (or NETDEF_CACHE=DIR): reuse the engine built from the same definition, "
            "weights and settings instead of building again.",
        ),
    ] = None,
) -> None:
    """Build an engine from a checkpoint and print a short summary. Writes nothing on failure.

    The engine records how to define its network again (definition, options, inputs, precision,
    calibration, the checkpoint's path and fingerprint), so `netdef run`, `inspect`, `explain` and
    `refit --check` work on it from any directory.
    """
    import time

    from netdef.build import BuildConfig, parse_size
    from netdef.cache import cache_dir
    from netdef.cli.targets import batch_range as parse_batch_range
    from netdef.fileio import check_output

    mark("start")
    inputs = [weights, calibration, timing_cache, arch if Path(arch).exists() else None]
    check_output(output, inputs)  # before any work: never over an input, never a FIFO or device
    started = time.perf_counter()
    definition_batch, batch_range = parse_batch_range(batch)
    config = BuildConfig(
        batch=batch_range,
        workspace=parse_size(workspace) if workspace else None,
        refit=refit,
        strip_weights=strip_weights,
        timing_cache=timing_cache,
    )

    def define_and_build():
        from netdef.cli.targets import define
        from netdef.progress import interactive_build

        network = define(
            arch, weights, precision=precision, batch=definition_batch, calibration=calibration, options=option,
            strict=strict,
        ).network  # fmt: skip
        mark("define")
        engine = interactive_build(network, config, console=None if quiet else console)
        mark("build")
        return engine

    root = cache_dir(cache)
    if root is None:
        engine = define_and_build()
        engine.save(output, inputs)
        metadata, source = {**engine.metadata, "plan_bytes": len(engine.plan)}, "build"
    else:
        from netdef.cache import EngineCache, build_through_cache, definition_key_parts
        from netdef.cli.targets import architecture

        store, definition = EngineCache(root), architecture(arch)
        parts = definition_key_parts(
            store, definition, definition.parse_options(option or []), weights, precision=precision, batch=batch,
            calibration=calibration, config=config,
        )  # fmt: skip
        result = build_through_cache(store, parts, define_and_build, checkpoint=weights)
        result.save(output, inputs)  # a hit copies the cache entry: its plan never passes through Python
        metadata, source = result.metadata, result.source
    mark("write")
    _print_summary(output, arch, metadata, source, time.perf_counter() - started)


def _print_summary(output: Path, arch: str, meta: dict, source: str, total: float) -> None:
    from netdef.engine import Engine

    engine = Engine(b"", meta)  # for the metadata's views (precision, backend, refit) only
    profile_batch = (meta.get("profile") or {}).get("batch")
    inputs = [t for t in meta.get("io", []) if t["mode"] == "input"]
    shape = "dynamic " + ":".join(map(str, profile_batch)) if profile_batch else f"static {inputs[0]['shape'][0]}"
    weights = meta.get("weights", {})
    parameters = sum(math.prod(w["shape"]) for w in weights.values())
    how = {
        "cache": "from cache",
        "refit": "refit from a cached engine",
        "build": f"build {meta['build_seconds']:.2f} s",
    }[source]
    console.print(
        f"[bold green]built[/] {output}  {arch} {engine.precision} batch {shape}\n"
        f"  layers {meta.get('num_layers')}, weights {len(weights)} ({parameters:,} parameters), "
        f"engine {human_bytes(meta['plan_bytes'])}\n"
        f"  {how} (total {total:.2f} s) with {engine.backend[0]} {engine.backend[1]}"
        + (", refittable" if engine.refittable else "")
    )


@app.command()
def info(engine_file: Annotated[Path, typer.Argument(help="A netdef engine file.")]) -> None:
    """Print an engine file's metadata: backend, precision, inputs and outputs, profile, weights."""
    from netdef.engine import Engine

    meta = Engine.read_metadata(engine_file, verify_plan=True)  # the plan is hashed as it streams from disk
    engine = Engine(b"", meta)  # for the metadata's views (precision, backend, refit) only
    plan_size = human_bytes(meta["plan_bytes"])
    console.print(f"[bold]{engine_file}[/]  ({plan_size} plan, sha256 {meta['plan_sha256'][:16]}…)")
    console.print(
        f"  network {meta.get('name')}  precision {engine.precision}  backend {engine.backend[0]} {engine.backend[1]}"
        f"  netdef {meta.get('netdef_version')}  built {meta.get('created')} in {meta.get('build_seconds')} s"
    )
    if meta.get("profile"):
        console.print(f"  profile {meta['profile']}")
    table = new_table("mode", "name", "shape", "dtype", box=None, pad_edge=False)
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
    table = new_table("name", "input", "output", "parameters", "options", "description", box=None, pad_edge=False)
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

"""``netdef explain``, ``netdef run`` and ``netdef compare``: the NumPy reference executor from the command line."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from netdef.cli.app import app, console
from netdef.cli.arrays import load_arrays
from netdef.cli.targets import TARGET_HELP, Options, Strict
from netdef.errors import NetworkInputError

Arch = Annotated[str, typer.Argument(help=TARGET_HELP + ".")]
OptionalWeights = Annotated[
    Path | None, typer.Option("--weights", "-w", help="Checkpoint: .safetensors, .pth/.pt, .npz or .wts.")
]
Calibration = Annotated[Path | None, typer.Option(help="INT8 calibration cache (`netdef calibrate`), for int8.")]

_DEFAULT_RTOL = {"fp32": 1e-5, "fp16": 1e-2, "bf16": 5e-2, "int8": 1e-1}
"""``netdef compare``'s tolerance by the less precise of the two precisions (max |a - b| / max |b| per layer)."""


def _paragraphs(fn):
    """Join the docstring's wrapped lines into paragraphs (the help formatter keeps single newlines)."""
    import inspect
    import re

    fn.__doc__ = re.sub(r"(?<!\n)\n(?!\n)", " ", inspect.cleandoc(fn.__doc__ or ""))
    return fn


# ---------------------------------------------------------------------------------------------- explain


def _dtype(name: str) -> str:
    from netdef.dtypes import DTypeError, lookup

    try:
        row = lookup(name)
    except DTypeError:
        return name.lower()
    return row.short or row.name


def _tensor_text(tensor: dict | None) -> str:
    if tensor is None:
        return "(none)"
    from netdef.tensorspec import shape_text

    dims = tensor["shape"]
    shape = "?" if dims is None else shape_text(dims, compact=True)
    return f"{tensor['name']} [{shape} {_dtype(tensor['dtype'])}]"


def _param_text(key: str, value: Any) -> str:
    if isinstance(value, dict) and "count" in value:
        return f"{value['count']:,} {value['dtype']} values"
    spatial = key.endswith("_nd") or key.endswith("padding") or key == "shape"
    if spatial and isinstance(value, tuple) and value and all(isinstance(v, int) for v in value):
        return "x".join(map(str, value))
    if isinstance(value, float):
        return f"{value:.7g}"
    return str(value)


def _layer_weights(network, layer_name: str, layer_names: set[str]) -> list[str]:
    """The named weights a layer holds itself (``conv1.weight`` in layer ``conv1``); constant layers are
    layers of their own, so the weights of a matrix multiply or a bias add show as their constant inputs."""
    from netdef.reference.compare import folded_batch_norms
    from netdef.tensorspec import shape_text

    folded = {conv: bn for bn, conv in folded_batch_norms(network).items()}
    found = []
    for entry in network.weight_table:
        if entry.layer != layer_name or entry.name in layer_names or not entry.refittable:
            continue
        found.append(f"{entry.name} {shape_text(entry.array.shape, compact=True)} {_dtype(entry.array.dtype.name)}")
    if found and layer_name in folded:
        found[-1] += f" (BatchNorm {folded[layer_name]} folded in)"
    return found


def _print_layer(index: int, layer: dict, network, layer_names: set[str], full_doc: str | None = None) -> None:
    console.print(f"[bold]{index:>3} {escape(layer['name'])}[/]  [cyan]{layer['type']}[/]")
    ins = ", ".join(_tensor_text(t) for t in layer["inputs"]) or "(no inputs)"
    outs = ", ".join(_tensor_text(t) for t in layer["outputs"])
    console.print(f"      {escape(ins)} -> {escape(outs)}")
    weights = _layer_weights(network, layer["name"], layer_names)
    if weights:
        console.print("      weights: " + escape("; ".join(weights)))
    if layer["params"]:
        console.print("      " + escape("  ".join(f"{k}={_param_text(k, v)}" for k, v in layer["params"].items())))
    if full_doc is None:
        console.print(f"      [dim]{escape(layer['semantics'])}[/]")
    else:
        console.print()
        for line in full_doc.splitlines():
            console.print(f"      {escape(line)}")


@app.command()
@_paragraphs
def explain(
    arch: Annotated[str, typer.Argument(help=TARGET_HELP + ", or an engine file.")],
    weights: OptionalWeights = None,
    precision: Annotated[str, typer.Option("--precision", "-p", help="fp32, fp16, bf16 or int8.")] = "fp32",
    batch: Annotated[int, typer.Option(help="Batch size the shapes are shown for (-1: dynamic).")] = 1,
    layer: Annotated[
        str | None, typer.Option("--layer", "-l", help="Explain only this layer, with its full semantics.")
    ] = None,
    calibration: Calibration = None,
    option: Options = None,
    strict: Strict = False,
) -> None:
    """What each layer computes: name, type, input -> output shapes, parameters and TensorRT's semantics.

    The network is read back from TensorRT as built (BatchNorm already folded, fp16 casts inserted).
    Without --weights, zeros of the expected shapes stand in (shapes and settings are the same). An
    engine file is defined again from its record (its checkpoint unless --weights).
    """
    from collections import Counter

    from netdef.cli.targets import define
    from netdef.reference import describe_layer, documentation

    network = define(
        arch, weights, precision=precision, batch=batch, calibration=calibration, options=option, strict=strict,
        zeros=True,
    ).network  # fmt: skip
    trt_network = network.trt_network
    described = [describe_layer(trt_network.get_layer(i)) for i in range(trt_network.num_layers)]
    if layer is not None:
        by_name = {d["name"]: (i, d) for i, d in enumerate(described)}
        if layer not in by_name:
            import difflib

            near = difflib.get_close_matches(layer, list(by_name), n=5, cutoff=0.5)
            hint = f"; did you mean {', '.join(near)}?" if near else f" (layers: {', '.join(list(by_name)[:8])}...)"
            raise ValueError(f"{arch} ({network.precision}) has no layer named {layer!r}{hint}")
        index, info = by_name[layer]
        _print_layer(index, info, network, set(by_name), full_doc=documentation(info["type"]))
        return
    inputs = ", ".join(f"{t['name']} [{'x'.join(map(str, t['shape']))} {t['dtype']}]" for t in network.io_tensors())
    console.print(f"[bold]{arch}[/] {network.precision}: {len(described)} layers; {escape(inputs)}\n")
    layer_names = {d["name"] for d in described}
    for index, info in enumerate(described):
        _print_layer(index, info, network, layer_names)
    counts = Counter(d["type"] for d in described)
    console.print(
        "\n"
        + ", ".join(f"{kind} x{n}" for kind, n in counts.most_common())
        + f"\nFull semantics of one layer: netdef explain {arch} --layer NAME"
    )


# ---------------------------------------------------------------------------------------------- inputs


def _reference_inputs(executor, arrays, source: str) -> dict:
    """The arrays named after the network's inputs, float arrays cast to the declared float type, checked."""
    from netdef.tensorspec import match_inputs

    return match_inputs(executor.inputs, arrays, source=source, casting="float")


def _engine_inputs(engine, target: str, arrays, source: str) -> dict:
    """Inputs checked against the engine's own I/O and profile (no checkpoint needed)."""
    from netdef.runtime.iospec import EngineIO
    from netdef.tensorspec import match_inputs

    io = EngineIO.from_metadata(engine.metadata, source=target)
    return match_inputs(io.inputs, arrays, source=source, casting="float", owner="engine")


# ---------------------------------------------------------------------------------------------- run


def _check_profile(engine, inputs: dict, source: str) -> None:
    """Refuse a batch outside the engine's optimization profile, as TensorRT would."""
    from netdef.errors import NetworkInputError

    batch_range = (engine.metadata.get("profile") or {}).get("batch")
    if not batch_range:
        return
    low, high = batch_range[0], batch_range[-1]
    bad = [f"{name!r} has batch {a.shape[0]}" for name, a in inputs.items() if a.ndim and not low <= a.shape[0] <= high]
    if bad:
        raise NetworkInputError(f"{source}: " + ", ".join(bad) + f"; the engine's profile allows batch {low}..{high}")


def _write_outputs(outputs: dict, path: Path) -> None:
    import numpy as np

    if path.suffix == ".npy":
        if len(outputs) != 1:
            raise ValueError(f"{path}: the network has {len(outputs)} outputs {list(outputs)}; write an .npz instead")
        np.save(path, next(iter(outputs.values())))
    elif path.suffix == ".npz":
        np.savez(path, **outputs)
    else:
        raise ValueError(f"{path}: outputs are written as .npy (one output) or .npz (several)")


def _print_outputs(outputs: dict) -> None:
    import numpy as np

    for name, array in outputs.items():
        shape = "x".join(map(str, array.shape))
        floats = np.asarray(array, np.float64)
        span = f"  min {floats.min():.4g}  max {floats.max():.4g}" if floats.size else ""
        console.print(f"  {escape(name)}  {shape} {array.dtype}{span}")
        if array.ndim == 2 and array.shape[0] > 0:
            top = floats.argmax(axis=1)
            shown = " ".join(map(str, top[:20])) + (f" ... ({len(top)} rows)" if len(top) > 20 else "")
            console.print(f"    argmax per row: {shown}")


@app.command("run")
@_paragraphs
def run_cmd(
    target: Annotated[str, typer.Argument(help="An architecture name (give --weights) or a netdef engine file.")],
    input_path: Annotated[Path, typer.Option("--input", "-i", help=".npy (one input) or .npz (name -> array).")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the outputs: .npy (one output) or .npz.")
    ] = None,
    weights: Annotated[
        Path | None,
        typer.Option("--weights", "-w", help="Checkpoint (an architecture needs one; overrides an engine's)."),
    ] = None,
    precision: Annotated[
        str | None, typer.Option("--precision", "-p", help="fp32 (default), fp16, bf16 or int8; architectures only.")
    ] = None,
    executor: Annotated[
        str, typer.Option(help="auto, reference or tensorrt (auto: TensorRT for an engine on a supported GPU).")
    ] = "auto",
    calibration: Calibration = None,
    option: Options = None,
    strict: Strict = False,
) -> None:
    """Run a network on an input file and print its outputs (shapes; argmax per row for 2-D outputs).

    The reference executor computes the network in NumPy with TensorRT's layer semantics, on any
    machine. For an engine file it defines the network again from the engine's definition record
    (function, options, precision and the checkpoint recorded at build time, refused if that file
    has changed since; --weights gives another checkpoint), so the engine itself is not executed.
    --executor tensorrt runs the engine with TensorRT, which needs a GPU the backend supports.
    """
    from netdef import backend
    from netdef.cli.targets import define, is_engine, load_zoo
    from netdef.definition import is_definition_spec, names
    from netdef.errors import GPUUnavailableError

    if executor not in ("auto", "reference", "tensorrt"):
        raise ValueError(f"--executor must be auto, reference or tensorrt, got {executor!r}")
    arrays = load_arrays(input_path, NetworkInputError, "input")
    load_zoo()
    is_arch = not is_engine(target)
    if is_arch and not is_definition_spec(target):
        raise ValueError(f"{target}: neither an engine file nor an architecture (known: {', '.join(names())})")
    if is_arch and weights is None:
        raise ValueError(f"{target} is an architecture: give its checkpoint with --weights")
    if not is_arch and precision is not None:
        raise ValueError(f"{target}: --precision is for architectures; an engine runs in the precision it was built in")
    caps = backend.capabilities()
    use_trt = executor == "tensorrt" or (executor == "auto" and not is_arch and caps.can_run)
    if use_trt and is_arch and not caps.can_run:
        raise GPUUnavailableError(f"--executor tensorrt needs a GPU that {backend.describe()} runs: {caps.reason}")

    from netdef.reference import ReferenceExecutor

    started = time.perf_counter()
    engine = None
    if not is_arch and use_trt:  # the engine alone: its checkpoint is not needed
        from netdef.engine import Engine

        engine = Engine.load(target)
        inputs = _engine_inputs(engine, target, arrays, str(input_path))
        network, label = None, f"{target} ({engine.precision})"
    else:
        defined = define(
            target, weights, precision=precision or "fp32", batch=-1, calibration=calibration, options=option,
            strict=strict,
        )  # fmt: skip
        network, engine = defined.network, defined.engine
        if is_arch:
            label = f"{target} ({network.precision}, {weights})"
        else:
            label = f"{target} ({engine.precision}, network defined again from {defined.checkpoint})"
        reference = ReferenceExecutor(network.trt_network)
        inputs = _reference_inputs(reference, arrays, str(input_path))
        if engine is not None:
            _check_profile(engine, inputs, str(input_path))
    prepared = time.perf_counter()
    if use_trt:
        outputs = _run_tensorrt(target, engine, network, inputs)
        how = f"TensorRT ({backend.describe()})"
    else:
        outputs = reference.run(inputs).outputs
        how = "the NumPy reference executor (TensorRT layer semantics)"
    finished = time.perf_counter()
    console.print(f"[bold]{escape(label)}[/]")
    console.print(f"  ran on {how} in {finished - prepared:.3f} s (defining and preparing {prepared - started:.3f} s)")
    _print_outputs(outputs)
    if output is not None:
        _write_outputs(outputs, output)
        console.print(f"  wrote {output}")


def _run_tensorrt(target: str, engine, network, inputs: dict) -> dict:
    """Run with TensorRT: the engine file, or an engine built here for the inputs' batch."""
    from netdef.runtime import run_engine_file

    if engine is not None:
        return run_engine_file(Path(target), inputs)
    from netdef.build import BuildConfig, build

    batch = next(iter(inputs.values())).shape[0]
    return run_engine_file(build(network, BuildConfig(batch=(batch, batch, batch))), inputs)


# ---------------------------------------------------------------------------------------------- compare


@app.command()
@_paragraphs
def compare(
    arch: Arch,
    weights: Annotated[Path, typer.Option("--weights", "-w", help="Checkpoint: .safetensors, .pth/.pt, .npz or .wts.")],
    precision: Annotated[str, typer.Option("--precision", "-p", help="The precision under test.")] = "fp16",
    against: Annotated[str, typer.Option(help="The reference precision.")] = "fp32",
    input_path: Annotated[Path | None, typer.Option("--input", "-i", help=".npy or .npz input.")] = None,
    random: Annotated[
        int | None, typer.Option("--random", help="Use N seeded standard-normal samples (default 1).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of --random.")] = 0,
    rtol: Annotated[
        float | None,
        typer.Option(help="Tolerance on max|a-b| / max|b| per layer (default by precision: fp16 1e-2, bf16 5e-2)."),
    ] = None,
    atol: Annotated[float, typer.Option(help="Absolute tolerance added to rtol * max|b|.")] = 0.0,
    failures_only: Annotated[bool, typer.Option("--failures-only", help="List only layers out of tolerance.")] = False,
    calibration: Calibration = None,
    option: Options = None,
    strict: Strict = False,
) -> None:
    """Run ARCH in two precisions with the reference executor and compare them layer by layer (by name).

    Prints each layer's largest absolute error and its error relative to the layer's scale
    (max |a - b| / max |b|, b = the --against network), and the FIRST layer that leaves the
    tolerance. Exit status 1 when a layer does. (PyTorch comparisons: the Python API
    netdef.reference.compare.compare_with_torch.)
    """
    from netdef.cli.targets import define
    from netdef.reference import ReferenceExecutor
    from netdef.reference.compare import compare_networks, random_inputs

    if input_path is not None and random is not None:
        raise ValueError("give --input or --random, not both")
    if random is not None and random < 1:
        raise ValueError(f"--random must be >= 1, got {random}")
    tested, reference = (
        define(
            arch, weights, precision=p, batch=-1, calibration=calibration if p == "int8" else None, options=option,
            strict=strict, warn_unused=p == precision,
        ).network
        for p in (precision, against)
    )  # fmt: skip
    if input_path is not None:
        inputs = _reference_inputs(
            ReferenceExecutor(reference.trt_network),
            load_arrays(input_path, NetworkInputError, "input"),
            str(input_path),
        )
        source = str(input_path)
    else:
        inputs = random_inputs(reference, batch=random or 1, seed=seed)
        source = f"{random or 1} random sample(s), seed {seed}"
    if rtol is None:
        rtol = max(_DEFAULT_RTOL.get(precision, 1e-2), _DEFAULT_RTOL.get(against, 1e-2))
    report = compare_networks(
        tested, reference, inputs, rtol=rtol, atol=atol, title=f"{arch}: {precision} vs {against} on {source}"
    )
    _print_wide(report.table(failures_only))
    if report.unmatched:
        console.print(f"not compared ({len(report.unmatched)}): " + ", ".join(report.unmatched), markup=False)
    console.print(f"[{'green' if report.ok else 'bold red'}]{escape(report.summary())}[/]")
    if not report.ok:
        raise typer.Exit(1)


def _print_wide(renderable) -> None:
    """In a terminal, fit the terminal; in a pipe or file, never wrap table cells."""
    if console.is_terminal:
        console.print(renderable)
        return
    from rich.console import Console
    from rich.measure import Measurement

    needed = Measurement.get(console, console.options.update_width(1000), renderable).maximum
    Console(file=console.file, width=max(console.width, needed), highlight=False).print(renderable)

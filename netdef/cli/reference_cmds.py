"""``netdef explain``, ``netdef run`` and ``netdef compare``: the NumPy reference executor from the command line."""

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from netdef.cli.app import app, console, new_table
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


def _tensor_text(tensor: dict | None) -> str:
    from netdef.explain_html.model import shape_text, short_dtype

    if tensor is None:
        return "(none)"
    return f"{tensor['name']} [{shape_text(tensor['shape'])} {short_dtype(tensor['dtype'])}]"


def _layer_weights(network, layer_name: str, layer_names: set[str]) -> list[str]:
    """The named weights a layer holds itself (``conv1.weight`` in layer ``conv1``); constant layers are
    layers of their own, so the weights of a matrix multiply or a bias add show as their constant inputs."""
    from netdef.explain_html.model import folded_into, network_weights, own_weights

    found = [
        f"{w.name} {w.shape_text} {w.dtype}"
        for w in own_weights(network_weights(network), layer_name)
        if w.name not in layer_names and w.refittable
    ]
    folded = folded_into(network)
    if found and layer_name in folded:
        found[-1] += f" (BatchNorm {folded[layer_name]} folded in)"
    return found


def _print_layer(index: int, layer: dict, network, layer_names: set[str], full_doc: str | None = None) -> None:
    from netdef.explain_html.model import setting_text

    console.print(f"[bold]{index:>3} {escape(layer['name'])}[/]  [cyan]{layer['type']}[/]")
    ins = ", ".join(_tensor_text(t) for t in layer["inputs"]) or "(no inputs)"
    outs = ", ".join(_tensor_text(t) for t in layer["outputs"])
    console.print(f"      {escape(ins)} -> {escape(outs)}")
    weights = _layer_weights(network, layer["name"], layer_names)
    if weights:
        console.print("      weights: " + escape("; ".join(weights)))
    if layer["params"]:
        console.print("      " + escape("  ".join(f"{k}={setting_text(k, v)}" for k, v in layer["params"].items())))
    if full_doc is None:
        console.print(f"      [dim]{escape(layer['semantics'])}[/]")
    else:
        console.print()
        for line in full_doc.splitlines():
            console.print(f"      {escape(line)}")


def _print_layer_table(described: list[dict], network) -> None:
    """One line per layer: name, type and settings, inputs, output, weights and FLOPs; then each type's semantics."""
    from collections import Counter

    from rich.console import JustifyMethod

    from netdef.explain_html.model import shape_text, short_dtype
    from netdef.inspect import count_text, flops_text, inspect_network, type_text
    from netdef.reference import semantics

    summary = inspect_network(network)
    table = new_table(box=None, pad_edge=False, show_edge=False)
    columns: list[tuple[str, JustifyMethod]] = [
        ("#", "right"), ("layer", "left"), ("type", "left"), ("settings", "left"), ("inputs", "left"),
        ("output", "left"), ("weights", "right"), ("FLOPs", "right"),
    ]  # fmt: skip
    for header, justify in columns:
        table.add_column(header, justify=justify)
    for info, layer in zip(summary.layers, described, strict=True):
        out = layer["outputs"][0] if layer["outputs"] else None
        table.add_row(
            str(info.index),
            escape(info.name),
            type_text(info.type),
            escape(info.detail),
            escape(", ".join(t["name"] for t in layer["inputs"] if t is not None)),
            f"{shape_text(out['shape'])} {short_dtype(out['dtype'])}" if out else "",
            f"{info.params:,}" if info.params else "",
            "?" if info.flops is None else (count_text(info.flops) if info.flops else ""),
        )
    _print_wide(table)
    batch = "per sample" if any(-1 in (t["shape"] or []) for t in network.io_tensors()) else "for the batch"
    console.print(f"total: {summary.total_params:,} weights, {flops_text(summary.total_flops)} {batch}")
    console.print("\n[bold]What each layer type computes[/] (TensorRT semantics):")
    for kind, n in Counter(d["type"] for d in described).most_common():
        console.print(f"  [cyan]{type_text(kind)}[/] x{n}: {escape(semantics(kind))}")


@app.command()
@_paragraphs
def explain(
    target: Annotated[str, typer.Argument(help=TARGET_HELP + ", or an engine file.")],
    weights: OptionalWeights = None,
    precision: Annotated[str, typer.Option("--precision", "-p", help="fp32, fp16, bf16 or int8.")] = "fp32",
    batch: Annotated[int, typer.Option(help="Batch size the shapes are shown for (-1: dynamic).")] = 1,
    layer: Annotated[
        str | None,
        typer.Option("--layer", "-l", help="Explain only this layer, in full (with --html: the layer shown first)."),
    ] = None,
    full: Annotated[
        bool, typer.Option("--full", help="The long form: every layer's tensors, weights, settings.")
    ] = False,
    html: Annotated[
        Path | None, typer.Option("--html", help="Write one self-contained interactive page (graph, layer panel).")
    ] = None,
    input_path: Annotated[
        Path | None, typer.Option("--input", "-i", help="With --html: each layer's output on this .npy/.npz input.")
    ] = None,
    compare_with: Annotated[
        str | None,
        typer.Option("--compare", help="With --html: the per-layer error of this precision (fp16, bf16, int8)."),
    ] = None,
    calibration: Calibration = None,
    option: Options = None,
    strict: Strict = False,
) -> None:
    """What each layer computes: one line per layer (type, settings, inputs, output, weights, FLOPs), then
    what each layer type computes in TensorRT.

    --full prints the long form (every layer's tensors, weights, settings and semantics); --layer NAME
    one layer with the full statement of its semantics. --html FILE writes one self-contained page
    that works offline: the graph (pan, zoom, fold scopes), and a panel per layer with its formula,
    settings, shapes, weights (checkpoint keys, histograms) and FLOPs. With --input, the page shows each
    layer's output on that input; with --compare fp16 (bf16, int8), a per-layer error plot against
    this network. The network is read back from TensorRT as built (BatchNorm already folded, fp16
    casts inserted). Without --weights, zeros of the expected shapes stand in (shapes and settings are
    the same). An engine file is defined again from its record (its checkpoint unless --weights).
    """
    from netdef.cli.targets import define
    from netdef.reference import describe_layer, documentation

    if html is None and (input_path is not None or compare_with is not None):
        raise ValueError("--input and --compare are for the page: add --html FILE")
    defined = define(
        target, weights, precision=precision, batch=batch, calibration=calibration if precision == "int8" else None,
        options=option, strict=strict, zeros=True,
    )  # fmt: skip
    network = defined.network
    label = target
    if defined.engine is not None:
        label = f"{target} ({defined.engine.precision}, network defined again from {defined.checkpoint})"
    if html is not None:
        if layer is not None:
            _layer_index(network, layer, label)
        _write_explain_page(
            defined, html, target=target, weights=weights, input_path=input_path, compare_with=compare_with,
            calibration=calibration, option=option, layer=layer,
        )  # fmt: skip
        return
    trt_network = network.trt_network
    described = [describe_layer(trt_network.get_layer(i)) for i in range(trt_network.num_layers)]
    if layer is not None:
        index = _layer_index(network, layer, label)
        info = described[index]
        _print_layer(index, info, network, {d["name"] for d in described}, full_doc=documentation(info["type"]))
        return
    inputs = ", ".join(_tensor_text(t) for t in network.io_tensors())
    console.print(f"[bold]{escape(label)}[/] {network.precision}: {len(described)} layers; {escape(inputs)}\n")
    if full:
        from collections import Counter

        layer_names = {d["name"] for d in described}
        for index, info in enumerate(described):
            _print_layer(index, info, network, layer_names)
        counts = Counter(d["type"] for d in described)
        console.print("\n" + ", ".join(f"{kind} x{n}" for kind, n in counts.most_common()))
    else:
        _print_layer_table(described, network)
    console.print(
        f"\nOne layer in full: netdef explain {target} --layer NAME; every layer: --full; "
        "an interactive page: --html FILE"
    )


def _layer_index(network, layer: str, label: str) -> int:
    """The index of the layer named ``layer``; a misspelt name is an error with suggestions."""
    trt_network = network.trt_network
    names = [trt_network.get_layer(i).name for i in range(trt_network.num_layers)]
    if layer in names:
        return names.index(layer)
    import difflib

    near = difflib.get_close_matches(layer, names, n=5, cutoff=0.5)
    hint = f"; did you mean {', '.join(near)}?" if near else f" (layers: {', '.join(names[:8])}...)"
    raise ValueError(f"{label} ({network.precision}) has no layer named {layer!r}{hint}")


def _write_explain_page(
    defined, html: Path, *, target, weights, input_path, compare_with, calibration, option, layer
) -> None:
    """``explain --html``: the page, with activations on ``input_path``, errors of ``compare_with``, and
    ``layer`` (a name) selected when it opens."""
    from netdef.cli.targets import define
    from netdef.explain_html import write_page
    from netdef.reference import ReferenceExecutor
    from netdef.reference.compare import compare_networks, random_inputs

    started = time.perf_counter()
    network = defined.network
    inputs = None
    if input_path is not None:
        arrays = load_arrays(input_path, NetworkInputError, "input")
        inputs = _reference_inputs(ReferenceExecutor(network.trt_network), arrays, str(input_path))
    comparison, comparing = None, ("", "")
    if compare_with is not None:
        against = str(network.precision)
        if compare_with == against:
            raise ValueError(f"--compare {compare_with}: the page's network is {against} already; compare another")
        if defined.engine is not None:
            raise ValueError("--compare needs a definition, not an engine file (an engine has one precision)")
        if weights is None:
            raise ValueError("--compare needs --weights: on the zeros that stand in for weights every error is 0")
        tested = define(
            target, weights, precision=compare_with, batch=_batch_of(network),
            calibration=calibration if compare_with == "int8" else None, options=option, warn_unused=False,
        ).network  # fmt: skip
        sample = inputs if inputs is not None else random_inputs(network, batch=1, seed=0)
        source = str(input_path) if input_path is not None else "1 random sample, seed 0"
        rtol = max(_DEFAULT_RTOL.get(compare_with, 1e-2), _DEFAULT_RTOL.get(against, 1e-2))
        comparison = compare_networks(
            tested, network, sample, rtol=rtol, title=f"{target}: {compare_with} vs {against} on {source}"
        )
        comparing = (compare_with, against)
    result = write_page(
        network,
        html,
        inputs=inputs,
        input_label=str(input_path) if input_path is not None else "the input",
        comparison=comparison,
        comparing=comparing,
        select=layer,
        checkpoint=defined.checkpoint if defined.checkpoint != "zeros" else "zeros (no --weights)",
    )
    seconds = time.perf_counter() - started
    console.print(
        f"wrote {escape(str(result.path))}: {result.layers} layers, {result.size / 1e6:.2f} MB in {seconds:.1f} s "
        "(one self-contained file; open it in a browser)"
    )
    if result.note:
        console.print(f"[yellow]note:[/] the page has no graph: {escape(result.note)}")
    if comparison is not None:
        console.print(escape(comparison.summary()))


def _batch_of(network) -> int:
    shapes = [t["shape"] for t in network.io_tensors() if t["mode"] == "input" and t["shape"]]
    return int(shapes[0][0]) if shapes else 1


# ---------------------------------------------------------------------------------------------- inputs


def _reference_inputs(executor, arrays, source: str) -> dict:
    """The arrays named after the network's inputs, float arrays cast to the declared float type, checked."""
    from netdef.tensorspec import match_inputs

    return _finite(match_inputs(executor.inputs, arrays, source=source, casting="float"), source)


def _engine_inputs(engine, target: str, arrays, source: str) -> dict:
    """Inputs checked against the engine's own I/O and profile (no checkpoint needed)."""
    from netdef.runtime.iospec import EngineIO
    from netdef.tensorspec import match_inputs

    io = EngineIO.from_metadata(engine.metadata, source=target)
    return _finite(match_inputs(io.inputs, arrays, source=source, casting="float", owner="engine"), source)


def _finite(arrays: dict, source: str) -> dict:
    """``arrays``, or one NetworkInputError naming each input and sample that holds NaN or Inf."""
    from netdef.tensorspec import non_finite_problems

    problems = non_finite_problems(arrays)
    if problems:
        raise NetworkInputError(f"{source}: the inputs hold NaN or Inf", problems)
    return arrays


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


def _write_outputs(outputs: dict, path: Path, inputs: list) -> None:
    """``.npy`` (one output) or ``.npz``, written atomically (:mod:`netdef.fileio`)."""
    import numpy as np

    from netdef.fileio import atomic_write

    if path.suffix not in (".npy", ".npz"):
        raise ValueError(f"{path}: outputs are written as .npy (one output) or .npz (several)")
    if path.suffix == ".npy" and len(outputs) != 1:
        raise ValueError(f"{path}: the network has {len(outputs)} outputs {list(outputs)}; write an .npz instead")
    with atomic_write(path, inputs) as f:
        if path.suffix == ".npy":
            np.save(f, next(iter(outputs.values())))
        else:
            np.savez(f, **outputs)


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
    written_from = [input_path, weights, calibration, target if Path(target).exists() else None]
    if output is not None:
        from netdef.fileio import check_output

        check_output(output, written_from)  # before any work: never over an input, never a FIFO or device
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
        _write_outputs(outputs, output, written_from)
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

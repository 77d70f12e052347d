"""``netdef bench``: latency and throughput of an engine, optionally against PyTorch eager."""

from pathlib import Path
from typing import Annotated, Any

import typer

from netdef.cli.app import app, console, new_table
from netdef.cli.targets import Options, Strict


def _require_gpu(what: str) -> None:
    """Refuse early, with the backend's reason, when no engine can run here."""
    from netdef import backend
    from netdef.errors import GPUUnavailableError

    caps = backend.capabilities()
    if not caps.can_run:
        raise GPUUnavailableError(f"{what} needs a GPU that {backend.describe()} can run engines on: {caps.reason}")


def _require_torch_cuda(device: int) -> None:
    from netdef.errors import GPUUnavailableError

    try:
        import torch
    except ImportError:
        raise GPUUnavailableError("--vs-torch needs PyTorch: pip install 'netdef-trt[torch]'") from None
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if device >= count:
        build = torch.__version__
        raise GPUUnavailableError(
            f"--vs-torch needs PyTorch with CUDA device {device}; torch {build} sees {count} CUDA device(s)"
        )


def _row(result: Any) -> list[str]:
    return [
        result.name,
        f"{result.median_ms:.3f}",
        f"{result.p90_ms:.3f}",
        f"{result.mean_ms:.3f}",
        f"{result.throughput:,.0f}",
    ]


@app.command()
def bench(
    target: Annotated[
        str, typer.Argument(help="An engine file, or a definition (name, file.py:function; give --weights).")
    ],
    batch: Annotated[int, typer.Option("--batch", "-b", help="Batch size of the timed calls.")] = 1,
    weights: Annotated[
        Path | None, typer.Option("--weights", "-w", help="Checkpoint (to build ARCH, or for --vs-torch).")
    ] = None,
    precision: Annotated[str, typer.Option("--precision", "-p", help="fp32, fp16 or bf16 when building.")] = "fp32",
    vs_torch: Annotated[
        bool, typer.Option("--vs-torch", help="Also time PyTorch eager on the same GPU and input.")
    ] = False,
    warmup: Annotated[int, typer.Option(help="Untimed calls first.")] = 20,
    iterations: Annotated[int, typer.Option(help="Timed calls.")] = 200,
    device: Annotated[int, typer.Option(help="CUDA device index.")] = 0,
    cuda_graph: Annotated[bool, typer.Option("--cuda-graph", help="Replay the engine as a CUDA graph.")] = False,
    seed: Annotated[int, typer.Option(help="Seed of the random input.")] = 0,
    json_path: Annotated[Path | None, typer.Option("--json", help="Also write the figures to this JSON file.")] = None,
    option: Options = None,
    strict: Strict = False,
) -> None:
    """Median latency (CUDA events) and throughput after warm-up; --vs-torch compares with PyTorch eager."""
    import json

    import numpy as np

    from netdef.cli.targets import is_engine
    from netdef.definition import record_of
    from netdef.engine import Engine
    from netdef.runtime.bench import bench_runner, bench_torch, check_counts, synthetic_inputs
    from netdef.runtime.iospec import EngineIO
    from netdef.runtime.runner import Runner

    if json_path is not None:
        from netdef.fileio import check_output

        check_output(json_path, [target if Path(target).exists() else None, weights])  # before any work
    check_counts(warmup, iterations)
    if batch < 1:
        raise ValueError(f"--batch must be >= 1, got {batch}")
    built_here = not is_engine(target)
    if built_here:
        if weights is None:
            raise ValueError(f"{target} is an architecture: give its checkpoint with --weights to build an engine")
        _require_gpu("netdef bench")
        engine = _build(target, weights, precision, batch, option, strict)
    else:
        engine = Engine.load(target)
    record = record_of(engine)
    arch = record.architecture if record else None
    checkpoint_path = weights or (Path(record.checkpoint) if record and record.checkpoint else None)
    io = EngineIO.from_metadata(engine.metadata, source=target)
    inputs = synthetic_inputs(io, batch, seed)  # profile errors before any GPU work
    model = None
    if vs_torch:
        model = _torch_reference(arch, checkpoint_path, target)
        _require_torch_cuda(device)
    source = engine if built_here else target  # a file: errors name its path
    with Runner(source, device=device, cuda_graph=cuda_graph) as runner:
        trt_result = bench_runner(runner, inputs, warmup, iterations, name=f"tensorrt ({engine.precision})")
        trt_out = runner.infer(inputs)
    results = [trt_result]
    figures: dict[str, Any] = {"target": target, "batch": batch, "tensorrt": trt_result.as_dict()}
    if model is not None:
        import torch

        (x,) = inputs.values()
        torch_result = bench_torch(model, x, device, warmup, iterations)
        results.append(torch_result)
        with torch.inference_mode():
            reference = model.to(f"cuda:{device}")(torch.from_numpy(x).to(f"cuda:{device}")).cpu().numpy()
        (out,) = trt_out.values()
        figures["pytorch"] = torch_result.as_dict()
        figures["speedup"] = torch_result.median_ms / trt_result.median_ms
        figures["max_abs_diff"] = float(np.max(np.abs(out.astype(np.float64) - reference)))
    table = new_table("runner", "median ms", "p90 ms", "mean ms", "samples/s", box=None, pad_edge=False)
    for result in results:
        table.add_row(*_row(result))
    console.print(f"[bold]{target}[/]  batch {batch}, {warmup} warm-up + {iterations} timed calls, device {device}")
    console.print(table)
    if "speedup" in figures:
        console.print(
            f"  TensorRT is {figures['speedup']:.2f}x PyTorch eager (median); "
            f"outputs differ by at most {figures['max_abs_diff']:.3g}"
        )
    console.print("  times: host-to-device copy + inference + device-to-host copy, per call")
    if json_path is not None:
        from netdef.fileio import write_text

        write_text(
            json_path, json.dumps(figures, indent=1), inputs=[target if Path(target).exists() else None, weights]
        )


def _build(arch: str, weights: Path, precision: str, batch: int, options: list[str] | None, strict: bool) -> Any:
    from netdef.build import BuildConfig, build
    from netdef.cli.targets import define

    network = define(arch, weights, precision=precision, batch=batch, options=options, strict=strict).network
    return build(network, BuildConfig())


def _torch_reference(arch: str | None, checkpoint_path: Path | None, target: str) -> Any:
    from netdef.cli.torch_models import torch_model
    from netdef.errors import NetdefError
    from netdef.weights import Checkpoint

    if arch is None:
        raise NetdefError(f"{target}: the engine metadata names no architecture, so --vs-torch has no model")
    if checkpoint_path is None:
        raise NetdefError(f"{target}: give the checkpoint with --weights for --vs-torch")
    return torch_model(arch, Checkpoint.load(checkpoint_path), source=str(checkpoint_path))

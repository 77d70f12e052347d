"""How long does it take to get from a checkpoint to a TensorRT engine, by each path?

Paths, each run in a fresh Python process (one subprocess per run), median of ``--runs``:

- **A  ONNX**: ``torch.onnx.export`` (PyTorch's default exporter) of the PyTorch twin loaded from
  ``.pth``, then TensorRT's ``OnnxParser`` and a build;
- **B  tensorrtx-style**: the classic per-value ``.wts`` reader (one ``struct.unpack`` per value),
  then the layer API (netdef's architecture definition) and a build;
- **C  netdef .safetensors**, **D  netdef .pth**, **E  netdef .wts** (the vectorised reader):
  ``Checkpoint.load`` + architecture definition + build.

The build stage of C is the bare build of an already-defined network. Stages: import (TensorRT,
and torch where the path needs it), read, define, build; plus peak RSS (``ru_maxrss`` in the child)
and the plan's size. Weights are seeded random with randomized BatchNorm statistics.

    python benchmarks/build_paths.py            # LeNet and ResNet-50, fp32/fp16, batch 1/32, 3 runs
    python benchmarks/build_paths.py --quick    # LeNet only, 1 run (smoke test)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from itertools import product
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"

PATHS = {
    "A": "ONNX export + OnnxParser",
    "B": "tensorrtx-style per-value .wts",
    "C": "netdef .safetensors",
    "D": "netdef .pth",
    "E": "netdef .wts (vectorised)",
}
STAGES = ("import", "read", "define", "build")
MODELS = {"lenet": "LeNet", "resnet50": "ResNet-50"}


# ---------------------------------------------------------------------------- child: one path, one run


def child(args: argparse.Namespace) -> None:
    """Run one path once and write its timings to ``args.result`` (JSON)."""
    import resource

    started = time.perf_counter()
    marks: dict[str, float] = {}
    from netdef import backend  # noqa: F401  (imports TensorRT)

    if args.path == "A":  # D reads .pth without torch (netdef.weights.torch_io); its result says if torch came in
        import torch  # noqa: F401
    if args.path != "A":  # netdef's own modules: checkpoint readers, architectures, build
        import architectures
        import netdef.build  # noqa: F401
        from netdef.weights import supported_suffixes

        supported_suffixes(), architectures.names()
    marks["import"] = time.perf_counter()
    directory = Path(args.dir)
    if args.path == "A":
        plan, extra = _onnx_path(args, directory, marks)
    else:
        plan, extra = _netdef_path(args, directory, marks)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    previous, stages = started, {}
    for stage in STAGES:
        stages[stage] = marks[stage] - previous
        previous = marks[stage]
    result = {
        "stages": stages,
        "total": previous - started,
        "peak_rss_kib": usage.ru_maxrss,
        "vm_hwm_kib": _vm_hwm_kib(),
        "engine_bytes": len(plan),
        "torch_imported": "torch" in sys.modules,
        **extra,
    }
    Path(args.result).write_text(json.dumps(result))


def _vm_hwm_kib() -> int:
    """This process's own peak RSS (``VmHWM``), a check on ``ru_maxrss``, which Linux carries over from the
    parent at fork (the parent is kept small for that reason)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return -1


def _netdef_path(args: argparse.Namespace, directory: Path, marks: dict[str, float]) -> tuple[bytes, dict]:
    from architectures import get
    from netdef.build import build
    from netdef.weights import Checkpoint

    if args.path == "B":
        from wts_per_value import read_wts_per_value

        checkpoint = Checkpoint(read_wts_per_value(directory / f"{args.model}.wts"), directory / f"{args.model}.wts")
    else:
        suffix = {"C": "safetensors", "D": "pth", "E": "wts"}[args.path]
        checkpoint = Checkpoint.load(directory / f"{args.model}.{suffix}")
    marks["read"] = time.perf_counter()
    architecture = get(args.model)
    # .wts entries are flat: name the class count where the architecture takes one.
    options = {"num_classes": 1000} if "num_classes" in architecture.options else {}
    network = architecture.build_network(checkpoint, precision=args.precision, batch=args.batch, **options)
    marks["define"] = time.perf_counter()
    engine = build(network)
    marks["build"] = time.perf_counter()
    return engine.plan, {"layers": network.num_layers}


def _onnx_path(args: argparse.Namespace, directory: Path, marks: dict[str, float]) -> tuple[bytes, dict]:
    import torch

    from netdef import backend
    from netdef.backend import trt
    from netdef.errors import BuildError

    model = torch_model(args.model)
    model.load_state_dict(torch.load(directory / f"{args.model}.pth", weights_only=True))
    model = Exported(model, half=args.precision == "fp16", softmax=args.model == "lenet").eval()
    marks["read"] = time.perf_counter()
    onnx_file = directory / f"{args.model}-{args.precision}-{args.batch}-{os.getpid()}.onnx"
    example = torch.zeros(args.batch, *input_shape(args.model))
    exported_at = time.perf_counter()
    with torch.no_grad():
        torch.onnx.export(model, (example,), str(onnx_file), input_names=["input"], output_names=["output"])
    export_seconds = time.perf_counter() - exported_at
    builder = backend.create_builder()
    network = backend.create_network(builder)
    parser = trt.OnnxParser(network, backend.LOGGER)
    if not parser.parse_from_file(str(onnx_file)):
        errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
        raise BuildError(f"{onnx_file}: OnnxParser failed", errors)
    marks["define"] = time.perf_counter()
    plan = backend.build_serialized_network(builder, network, builder.create_builder_config())
    marks["build"] = time.perf_counter()
    return plan, {"layers": network.num_layers, "export_seconds": export_seconds}


def torch_model(name: str):
    sys.path.insert(0, str(ROOT / "tests"))
    from torch_models import LeNet, torchvision_twin

    return LeNet() if name == "lenet" else torchvision_twin(name)


def input_shape(name: str) -> tuple[int, ...]:
    return (1, 28, 28) if name == "lenet" else (3, 224, 224)


def _exported_class():
    import torch

    class Exported(torch.nn.Module):
        """The twin as netdef defines it: float32 in and out, fp16 inside if asked, LeNet's softmax."""

        def __init__(self, model: torch.nn.Module, half: bool, softmax: bool):
            super().__init__()
            self.model, self.half, self.softmax = (model.half() if half else model), half, softmax

        def forward(self, x):
            y = self.model(x.half() if self.half else x)
            y = torch.softmax(y, dim=1) if self.softmax else y
            return y.float()

    return Exported


def Exported(model, half: bool, softmax: bool):  # noqa: N802  (a class made lazily: torch is imported late)
    return _exported_class()(model, half, softmax)


# ---------------------------------------------------------------------------- parent: weights, runs, table


def prepare_weights(models: list[str], directory: Path) -> dict[str, int]:
    """Seeded random weights (randomized BatchNorm statistics) as .pth, .safetensors and .wts.

    Runs in a subprocess of its own: the parent stays small, since a child's ``ru_maxrss`` starts
    from the parent's resident size at fork.
    """
    command = [sys.executable, __file__, "--prepare", str(directory), "--models", ",".join(models)]
    done = subprocess.run(command, capture_output=True, text=True, env=_child_env(), cwd=ROOT)
    if done.returncode != 0:
        raise RuntimeError(f"preparing weights failed:\n{done.stdout}{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _child_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}


def write_weights(models: list[str], directory: Path) -> dict[str, int]:
    """(In the --prepare subprocess.) Write each model's weights in the three formats."""
    import torch

    sys.path.insert(0, str(ROOT / "tests"))
    from torch_models import randomize, state_dict_arrays

    from netdef.weights.safetensors_io import write_safetensors
    from netdef.weights.wts_io import write_wts

    sizes = {}
    for name in models:
        model = randomize(torch_model(name), seed=0)
        torch.save(model.state_dict(), directory / f"{name}.pth")
        arrays = state_dict_arrays(model)
        write_safetensors(arrays, directory / f"{name}.safetensors")
        write_wts(arrays, directory / f"{name}.wts")
        sizes[name] = sum(a.size for k, a in arrays.items() if not k.endswith("num_batches_tracked"))
    return sizes


def run_one(path: str, model: str, precision: str, batch: int, directory: Path) -> dict:
    result_file = directory / f"result-{path}-{model}-{precision}-{batch}.json"
    result_file.unlink(missing_ok=True)
    command = [sys.executable, __file__, "--child", path, "--model", model, "--precision", precision]
    command += ["--batch", str(batch), "--dir", str(directory), "--result", str(result_file)]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=_child_env(), cwd=ROOT)
    wall = time.perf_counter() - started
    if done.returncode != 0 or not result_file.exists():
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-15:])
        raise RuntimeError(f"path {path} {model} {precision} batch {batch} failed ({done.returncode}):\n{tail}")
    return {**json.loads(result_file.read_text()), "process_wall": wall}


def median_result(runs: list[dict]) -> dict:
    keys = ("total", "peak_rss_kib", "vm_hwm_kib", "process_wall")
    merged = {key: statistics.median(r[key] for r in runs) for key in keys}
    merged["stages"] = {s: statistics.median(r["stages"][s] for r in runs) for s in STAGES}
    merged["engine_bytes"] = statistics.median(r["engine_bytes"] for r in runs)
    merged["runs"] = len(runs)
    merged["torch_imported"] = any(r.get("torch_imported", False) for r in runs)
    if "export_seconds" in runs[0]:
        merged["export_seconds"] = statistics.median(r["export_seconds"] for r in runs)
    return merged


def ratio_rows(config_results: dict[str, dict]) -> list[tuple[str, float, str, bool]]:
    """(what, value, target, met) for one model/precision/batch."""
    a, b, c, d, e = (config_results[p] for p in "ABCDE")
    c_define = c["stages"]["read"] + c["stages"]["define"]
    bytes_diff = abs(c["engine_bytes"] - a["engine_bytes"]) / a["engine_bytes"]
    return [
        ("A/C end to end", a["total"] / c["total"], ">= 8x", a["total"] / c["total"] >= 8),
        ("A/D end to end", a["total"] / d["total"], ">= 4x", a["total"] / d["total"] >= 4),
        (
            ".wts read: per-value / vectorised",
            b["stages"]["read"] / e["stages"]["read"],
            ">= 20x",
            b["stages"]["read"] / e["stages"]["read"] >= 20,
        ),
        (
            "netdef read+define / bare build",
            c_define / c["stages"]["build"],
            "<= 0.25",
            c_define <= 0.25 * c["stages"]["build"],
        ),
        ("peak RSS C/A", c["peak_rss_kib"] / a["peak_rss_kib"], "<= 1", c["peak_rss_kib"] <= a["peak_rss_kib"]),
        ("engine bytes: abs(C - A) / A", bytes_diff, "<= 0.5%", bytes_diff <= 0.005),
    ]


def markdown(results: dict, meta: dict) -> str:
    lines = [
        "# Build paths: checkpoint to TensorRT engine",
        "",
        f"{meta['date']} on {meta['machine']}; {meta['backend']}, torch {meta['torch']} "
        f"(ONNX exporter: {meta['exporter']}); median of {meta['runs']} run(s), each path in a fresh process; "
        f"load average (1, 5, 15 min) at the start {meta['load']}; {meta['minutes']} minutes in all.",
        "",
        "Seconds per stage: import = TensorRT, plus torch for A, plus netdef's readers, architectures and "
        "build modules for B-E; read = checkpoint to arrays (A: torch.load + load_state_dict); define = network "
        "definition (A: ONNX export + parse, the export alone in brackets); build = build_serialized_network "
        "(C's is the bare build of an already-defined network); process = the child's wall time including "
        f"Python's start. RSS = peak resident memory of the run's process (ru_maxrss; /proc's VmHWM differs by "
        f"at most {_max_rss_gap(results):.0f} MiB: the parent that forks the runs stays small).",
        "",
        "| model | prec | batch | path | import | read | define | build | total | process | peak RSS MiB | plan MiB |",
        "|---|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    for (model, precision, batch), paths in results.items():
        for path, r in paths.items():
            s = r["stages"]
            define = f"{s['define']:.2f}" + (f" ({r['export_seconds']:.2f})" if "export_seconds" in r else "")
            lines.append(
                f"| {MODELS[model]} | {precision} | {batch} | {path} {PATHS[path]} | {s['import']:.2f} | "
                f"{s['read']:.3f} | {define} | {s['build']:.2f} | {r['total']:.2f} | {r['process_wall']:.2f} | "
                f"{r['peak_rss_kib'] / 1024:.0f} | {r['engine_bytes'] / 2**20:.2f} |"
            )
    with_torch = sorted({p for paths in results.values() for p, r in paths.items() if r.get("torch_imported")})
    lines += ["", f"Paths whose process imported torch (checked in the child): {', '.join(with_torch) or 'none'}."]
    lines += ["", "Ratios against the targets (✓ met, ✗ not met):", ""]
    header = ["ratio", "target"] + [f"{MODELS[m]} {p} b{b}" for m, p, b in results]
    lines += ["| " + " | ".join(header) + " |", "|---|---|" + "--:|" * len(results)]
    table = {key: ratio_rows(paths) for key, paths in results.items()}
    for i, (what, _, target, _) in enumerate(next(iter(table.values()))):
        cells = []
        for rows in table.values():
            value, met = rows[i][1], rows[i][3]
            shown = f"{value * 100:.2f}%" if "%" in target else f"{value:.2f}"
            cells.append(f"{shown} {'✓' if met else '✗'}")
        lines.append(f"| {what} | {target} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def _max_rss_gap(results: dict) -> float:
    gaps = [abs(r["peak_rss_kib"] - r["vm_hwm_kib"]) for paths in results.values() for r in paths.values()]
    return max(gaps) / 1024


def machine_meta(runs: int) -> dict:
    """Versions read from package metadata: the parent imports neither torch nor TensorRT."""
    from importlib.metadata import PackageNotFoundError, version

    backend = "?"
    for package in ("tensorrt_rtx", "tensorrt"):
        try:
            backend = f"{package} {version(package)}"
            break
        except PackageNotFoundError:
            continue
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "machine": f"{cpu}, {os.cpu_count()} cores",
        "backend": backend,
        "torch": version("torch").split("+")[0],
        "exporter": "default (dynamo=True, onnxscript)",
        "runs": runs,
        "load": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="LeNet only, 1 run (smoke test)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--models", default="lenet,resnet50")
    parser.add_argument("--precisions", default="fp32,fp16")
    parser.add_argument("--batches", default="1,32")
    parser.add_argument("--paths", default="ABCDE")
    parser.add_argument(
        "--output", type=Path, help=f"Markdown file to write (default {RESULTS.name}/build_paths.md; --quick: none)"
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--prepare", type=Path, help=argparse.SUPPRESS)
    for hidden in ("--model", "--precision", "--dir", "--result"):
        parser.add_argument(hidden, help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        args.path = args.child
        child(args)
        return
    if args.prepare:
        print(json.dumps(write_weights(args.models.split(","), args.prepare)))
        return
    models = ["lenet"] if args.quick else args.models.split(",")
    runs = 1 if args.quick else args.runs
    configs = list(product(models, args.precisions.split(","), [int(b) for b in args.batches.split(",")]))
    meta = machine_meta(runs)
    began = time.perf_counter()
    raw: dict = {config: {p: [] for p in args.paths} for config in configs}
    with tempfile.TemporaryDirectory(prefix="netdef-bench-") as tmp:
        directory = Path(tmp)
        sizes = prepare_weights(models, directory)
        print(f"weights in {directory}: " + ", ".join(f"{m} {n:,} parameters" for m, n in sizes.items()), flush=True)
        for run in range(runs):  # interleaved, so slow drifts of the machine hit every path alike
            for config in configs:
                for path in args.paths:
                    result = run_one(path, *config, directory)
                    raw[config][path].append(result)
                    print(f"run {run + 1}/{runs} {config} {path}: total {result['total']:.2f} s", flush=True)
    meta["load"] += " (at the end: " + " ".join(f"{x:.2f}" for x in os.getloadavg()) + ")"
    meta["minutes"] = f"{(time.perf_counter() - began) / 60:.1f}"
    results = {config: {p: median_result(r) for p, r in paths.items()} for config, paths in raw.items()}
    text = markdown(results, meta) if set(args.paths) == set(PATHS) else json.dumps(results, indent=1, default=str)
    print(text)
    if args.output is None and args.quick:
        return
    args.output = args.output or RESULTS / "build_paths.md"
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text)
    raw_file = args.output.with_suffix(".json")
    raw_file.write_text(
        json.dumps({"meta": meta, "runs": {"/".join(map(str, k)): v for k, v in raw.items()}}, indent=1)
    )
    print(f"wrote {args.output} and {raw_file}")


if __name__ == "__main__":
    main()

"""Checkpoint to engine as users time it: whole fresh processes, timed from outside.

Side by side, in one run, median of ``--runs`` (interleaved, so drifts of the machine hit every path):

- **ONNX**: two fresh processes, as the usual recipe runs them: ``torch.onnx.export`` of torchvision's
  model (LeNet: the PyTorch LeNet) loaded from ``.pth``, then TensorRT's ``OnnxParser`` + build + plan
  file. Its wall time is the sum of both processes.
- **netdef**: one fresh process, ``netdef build ARCH -w FILE -p PREC --batch N -o out.engine -q``, from
  ``.safetensors``, ``.pth`` and ``.wts``.

For every netdef process the table shows where its wall time went: interpreter start (``python -c
pass``, measured separately), imports (process start to the command's first line, less the
interpreter), read, define, build, write, and the rest (exit). Peak RSS is each process's own
(``os.wait4``); the ONNX path's is the larger of its two processes.

Also measured, each against what it is compared with in the same run:

- ``netdef --help`` and ``netdef list`` against ``python -c "import numpy"``;
- ``netdef info`` on the ResNet-50 fp32 engine (about 100 MB) against that engine's build process;
- ``netdef refit ENGINE CK --check`` (the CPU refit plan) against the build process, for ResNet-50;
- ``netdef build`` again with ``--cache`` (a hit) against the build process.

    python benchmarks/cli_paths.py              # LeNet and ResNet-50, fp32/fp16, batch 1/32, 3 runs
    python benchmarks/cli_paths.py --quick      # LeNet, fp16, batch 1, 1 run (smoke test)
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from itertools import product
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
MODELS = {"lenet": "LeNet", "resnet50": "ResNet-50"}
FORMATS = ("safetensors", "pth", "wts")
STAGES = ("interpreter", "imports", "read", "define", "build", "write", "exit")
TARGETS = {"safetensors": 8.0, "pth": 6.0, "wts": 6.0}


def _env(**extra: str) -> dict[str, str]:
    """The children's environment: the project on the path, and bytecode caches on (see :func:`compile_sources`)."""
    path = os.pathsep.join([str(ROOT), str(ROOT / "tests"), os.environ.get("PYTHONPATH", "")])
    inherited = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    return {**inherited, "PYTHONPATH": path, **extra}


def compile_sources() -> None:
    """Compile netdef's and the architectures' modules to bytecode first, as ``pip install`` does for a
    wheel, so no timed process compiles Python source (an environment with PYTHONDONTWRITEBYTECODE set
    would otherwise compile every netdef module in every process, while torch's come precompiled)."""
    import compileall

    for folder in ("netdef", "architectures", "tests"):
        compileall.compile_dir(ROOT / folder, quiet=1, workers=0)


def timed_process(command: list[str], **extra_env: str) -> dict:
    """Run ``command`` in a fresh process: wall seconds, its own peak RSS (MiB), its start epoch."""
    started_epoch, started = time.time(), time.perf_counter()
    proc = subprocess.Popen(command, env=_env(**extra_env), cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    out, err = proc.stdout.read().decode(), proc.stderr.read().decode()  # type: ignore[union-attr]
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({proc.returncode}):\n{(out + err)[-3000:]}")
    return {"wall": wall, "rss_mib": usage.ru_maxrss / 1024, "epoch": started_epoch, "stdout": out}


def netdef_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "netdef.cli", *args]


# ---------------------------------------------------------------------------- the ONNX path's two processes


def onnx_export(args: argparse.Namespace) -> None:
    """(Child.) torch.load the .pth into the PyTorch model and export it to ONNX (float32 I/O)."""
    import torch

    model = torch_model(args.model)
    model.load_state_dict(torch.load(args.weights, weights_only=True))
    model = model.half() if args.precision == "fp16" else model

    class Exported(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, x):
            y = self.inner(x.half() if args.precision == "fp16" else x)
            return (torch.softmax(y, dim=1) if args.model == "lenet" else y).float()

    example = torch.zeros(args.batch, *input_shape(args.model))
    with torch.no_grad():
        torch.onnx.export(Exported(model).eval(), (example,), args.onnx, input_names=["input"], output_names=["out"])


def onnx_build(args: argparse.Namespace) -> None:
    """(Child.) TensorRT's OnnxParser, a build, and the plan written to a file."""
    from netdef import backend
    from netdef.backend import trt
    from netdef.errors import BuildError

    builder = backend.create_builder()
    network = backend.create_network(builder)
    parser = trt.OnnxParser(network, backend.LOGGER)
    if not parser.parse_from_file(args.onnx):
        raise BuildError(
            f"{args.onnx}: OnnxParser failed", [str(parser.get_error(i)) for i in range(parser.num_errors)]
        )
    plan = backend.build_serialized_network(builder, network, builder.create_builder_config())
    Path(args.plan).write_bytes(plan)  # straight from TensorRT's host memory, as the recipe does


def torch_model(name: str):
    if name == "lenet":
        from torch_models import LeNet

        return LeNet()
    from torchvision_models import get_model

    return get_model(name)


def input_shape(name: str) -> tuple[int, ...]:
    return (1, 28, 28) if name == "lenet" else (3, 224, 224)


def write_weights(models: list[str], directory: Path) -> None:
    """(Child.) Seeded random weights with randomized BatchNorm statistics, as .pth, .safetensors and .wts."""
    import torch
    from torch_models import randomize

    from netdef.weights.safetensors_io import write_safetensors
    from netdef.weights.wts_io import write_wts

    for name in models:
        model = randomize(torch_model(name), seed=0)
        state = {k: v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
        torch.save(state, directory / f"{name}.pth")
        arrays = {k: v.detach().numpy().copy() for k, v in state.items()}
        write_safetensors(arrays, directory / f"{name}.safetensors")
        write_wts(arrays, directory / f"{name}.wts")


# ---------------------------------------------------------------------------- one configuration


def run_onnx(model: str, precision: str, batch: int, directory: Path) -> dict:
    onnx_file, plan = directory / f"{model}-{precision}-{batch}.onnx", directory / f"{model}.plan"
    common = ["--model", model, "--precision", precision, "--batch", str(batch), "--onnx", str(onnx_file)]
    export = timed_process(
        [sys.executable, __file__, "--child", "export", *common, "--weights", str(directory / f"{model}.pth")]
    )
    build = timed_process([sys.executable, __file__, "--child", "build", *common, "--plan", str(plan)])
    return {
        "wall": export["wall"] + build["wall"],
        "rss_mib": max(export["rss_mib"], build["rss_mib"]),
        "export": export["wall"],
        "parse_build": build["wall"],
        "plan_bytes": plan.stat().st_size,
    }


def run_netdef(model: str, fmt: str, precision: str, batch: int, directory: Path, interpreter: float) -> dict:
    out, stages_file = directory / f"{model}-{fmt}.engine", directory / "stages.json"
    stages_file.unlink(missing_ok=True)
    command = netdef_command(
        "build",
        model,
        "-w",
        str(directory / f"{model}.{fmt}"),
        "-p",
        precision,
        "--batch",
        str(batch),
        "-o",
        str(out),
        "-q",
    )
    result = timed_process(command, NETDEF_STAGES=str(stages_file))
    marks = json.loads(stages_file.read_text())
    ends = [marks[s] for s in ("start", "read", "define", "build", "write")]
    stages = {"interpreter": interpreter, "imports": ends[0] - result["epoch"] - interpreter}
    stages.update({s: b - a for s, a, b in zip(("read", "define", "build", "write"), ends, ends[1:], strict=False)})
    stages["exit"] = result["wall"] - (ends[-1] - result["epoch"])
    import numpy as np

    from netdef.engine import Engine

    meta = Engine.read_metadata(out)
    weights = sum(math.prod(w["shape"]) * np.dtype(w["dtype"]).itemsize for w in meta["weights"].values())
    return {
        **result,
        "stages": stages,
        "plan_bytes": meta["plan_bytes"],
        "weights_bytes": weights,
        "trt_build": meta["build_seconds"],
    }


def median(runs: list[dict]) -> dict:
    merged = {k: statistics.median(r[k] for r in runs) for k in ("wall", "rss_mib", "plan_bytes")}
    for k in ("weights_bytes", "trt_build"):
        if k in runs[0]:
            merged[k] = statistics.median(r[k] for r in runs)
    if "stages" in runs[0]:
        merged["stages"] = {s: statistics.median(r["stages"][s] for r in runs) for s in STAGES}
    for k in ("export", "parse_build"):
        if k in runs[0]:
            merged[k] = statistics.median(r[k] for r in runs)
    return merged


def instant_answers(directory: Path, runs: int, models: list[str]) -> dict:
    """--help, list, info, refit --check and a cache hit, each with what it is compared with.

    ``build`` is the whole build process, ``build_work`` its work from the command's first line to the engine
    written (stage marks), ``build_stage`` TensorRT's build alone (the engine's ``build_seconds``), and
    ``hit`` the cached command's work from its first line to the engine written.
    """
    from netdef.engine import Engine

    keys = ("numpy", "help", "list", "info", "check", "hit", "build", "build_work", "build_stage", "hit_wall")
    samples: dict[str, list[float]] = {k: [] for k in keys}
    big = "resnet50" if "resnet50" in models else models[0]
    weights, engine = directory / f"{big}.safetensors", directory / f"{big}-fp32.engine"
    cache, marks_file = directory / "cache", directory / "marks.json"

    def marks(command: list[str]) -> tuple[dict, dict]:
        marks_file.unlink(missing_ok=True)
        result = timed_process(command, NETDEF_STAGES=str(marks_file))
        return result, json.loads(marks_file.read_text())

    for _ in range(runs):
        samples["numpy"].append(timed_process([sys.executable, "-c", "import numpy"])["wall"])
        samples["help"].append(timed_process(netdef_command("--help"))["wall"])
        samples["list"].append(timed_process(netdef_command("list"))["wall"])
        built, m = marks(netdef_command("build", big, "-w", str(weights), "-o", str(engine), "-q"))
        samples["build"].append(built["wall"])
        samples["build_work"].append(m["write"] - m["start"])
        samples["build_stage"].append(Engine.read_metadata(engine)["build_seconds"])
        samples["info"].append(timed_process(netdef_command("info", str(engine)))["wall"])
        samples["check"].append(timed_process(netdef_command("refit", str(engine), str(weights), "--check"))["wall"])
        hit_engine = str(directory / "hit.engine")
        cached = netdef_command("build", big, "-w", str(weights), "-o", hit_engine, "-q", "--cache", str(cache))
        timed_process(cached)  # fills the cache (and the fingerprint memo)
        hit, m = marks(cached)
        assert "from cache" in hit["stdout"], hit["stdout"]
        samples["hit"].append(m["write"] - m["start"])
        samples["hit_wall"].append(hit["wall"])
    return {"model": big, **{k: statistics.median(v) for k, v in samples.items()}}


# ---------------------------------------------------------------------------- report


def markdown(results: dict, instant: dict, meta: dict) -> str:
    lines = [
        "# Checkpoint to engine through the CLI, as users time it",
        "",
        f"{meta['date']} on {meta['machine']}; {meta['backend']}, torch {meta['torch']}; median of {meta['runs']} "
        f"run(s), every command a fresh process timed from outside, netdef's modules compiled to bytecode first (as "
        f"`pip install` does); load average (1, 5, 15 min) {meta['load']}.",
        "",
        "Seconds. ONNX = `torch.onnx.export` process + OnnxParser/build process (export, parse+build in "
        "brackets). netdef = one `netdef build` process; its stages: interpreter start (`python -c pass`), "
        "imports, read, define, build (TensorRT's `build_serialized_network` with the builder's configuration and the "
        "engine's metadata; the targets use TensorRT's own build seconds), write, exit. RSS: peak MiB of the "
        "process (ONNX: the larger of its two).",
        "",
        "| model | prec | batch | path | wall | interp | imports | read | define | build | write | exit | "
        "RSS MiB | ONNX / this |",
        "|---|---|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|",
    ]
    ratios = []
    for (model, precision, batch), paths in results.items():
        onnx = paths["onnx"]
        lines.append(
            f"| {MODELS[model]} | {precision} | {batch} | ONNX | {onnx['wall']:.2f} ({onnx['export']:.2f} + "
            f"{onnx['parse_build']:.2f}) | | | | | | | | {onnx['rss_mib']:.0f} | 1 |"
        )
        for fmt in FORMATS:
            r = paths[fmt]
            s = r["stages"]
            ratio = onnx["wall"] / r["wall"]
            ratios.append((model, precision, batch, fmt, ratio, r, onnx))
            lines.append(
                f"| {MODELS[model]} | {precision} | {batch} | netdef .{fmt} | {r['wall']:.2f} | "
                + " | ".join(f"{s[k]:.2f}" for k in STAGES)
                + f" | {r['rss_mib']:.0f} | {ratio:.1f} |"
            )
    lines += [
        "",
        "Targets (✓ met, ✗ not met):",
        "",
        "| target | " + " | ".join(f"{MODELS[m]} {p} b{b}" for m, p, b in results) + " |",
        "|---|" + "--:|" * len(results),
    ]
    for fmt in FORMATS:
        cells = [f"{r:.1f} {'✓' if r >= TARGETS[fmt] else '✗'}" for _, _, _, f, r, _, _ in ratios if f == fmt]
        lines.append(f"| ONNX / netdef .{fmt} >= {TARGETS[fmt]:.0f}x | " + " | ".join(cells) + " |")
    cells = []
    for _, _, _, f, _, r, _ in ratios:
        if f == "safetensors":
            share = (r["stages"]["read"] + r["stages"]["define"]) / r["trt_build"]
            cells.append(f"{share:.2f} {'✓' if share <= 0.25 else '✗'}")
    lines.append("| (read + define) / TensorRT's build <= 0.25 (.safetensors) | " + " | ".join(cells) + " |")
    cells = []
    for _, _, _, f, _, r, onnx in ratios:
        if f == "safetensors":
            share = r["rss_mib"] / onnx["rss_mib"]
            cells.append(f"{share:.2f} {'✓' if share <= 0.6 else '✗'}")
    lines.append("| peak RSS netdef / ONNX <= 0.6 (.safetensors) | " + " | ".join(cells) + " |")
    cells = []
    for _, precision, batch, f, _, r, onnx in ratios:
        smallest = results.get(("lenet", precision, batch), {}).get("safetensors")
        if f == "safetensors" and smallest is not None:
            floor = smallest["rss_mib"] + (r["weights_bytes"] + r["plan_bytes"]) / 2**20
            cells.append(f"{floor / onnx['rss_mib']:.2f}")
        elif f == "safetensors":
            cells.append("")
    lines.append(
        "| RSS floor / ONNX: LeNet's whole process + the weights TensorRT reads + the plan it writes | "
        + " | ".join(cells)
        + " |"
    )
    cells = []
    for _, _, _, f, _, r, _ in ratios:
        if f == "safetensors":
            cells.append(f"{r['trt_build'] / r['wall']:.2f}")
    lines.append("| TensorRT's build / netdef wall (the floor's share) | " + " | ".join(cells) + " |")
    i = instant
    rows = [
        ("`netdef --help` / `python -c 'import numpy'`", i["help"] / i["numpy"], "<= 4", i["help"] <= 4 * i["numpy"]),
        ("`netdef list` / `python -c 'import numpy'`", i["list"] / i["numpy"], "<= 5", i["list"] <= 5 * i["numpy"]),
        (
            f"`netdef info` ({MODELS[i['model']]} fp32 engine) / its build",
            i["info"] / i["build"],
            "<= 0.3",
            i["info"] <= 0.3 * i["build"],
        ),
        (
            f"`netdef refit --check` ({MODELS[i['model']]}) / its build",
            i["check"] / i["build"],
            "<= 0.5",
            i["check"] <= 0.5 * i["build"],
        ),
        (
            f"`netdef build --cache` hit, command to engine written ({MODELS[i['model']]}) / its TensorRT build",
            i["hit"] / i["build_stage"],
            "<= 0.1",
            i["hit"] <= 0.1 * i["build_stage"],
        ),
        (
            "the same hit / the uncached build command's work (first line to engine written)",
            i["hit"] / i["build_work"],
            "<= 0.1",
            i["hit"] <= 0.1 * i["build_work"],
        ),
    ]
    lines += [
        "",
        "Instant answers (whole processes, seconds: numpy {numpy:.2f}, help {help:.2f}, list {list:.2f}, "
        "build {build:.2f} (TensorRT's build {build_stage:.2f}), info {info:.2f}, refit --check {check:.2f}, "
        "cache hit {hit_wall:.2f} (command to engine written {hit:.3f}; "
        "the uncached build's {build_work:.2f})):".format(**i),
        "",
        "| ratio | value | target |",
        "|---|--:|---|",
    ]
    lines += [f"| {what} | {v:.2f} | {t} {'✓' if ok else '✗'} |" for what, v, t, ok in rows]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="LeNet, fp16, batch 1, 1 run; writes no file")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--models", default="lenet,resnet50")
    parser.add_argument("--output", type=Path, default=RESULTS / "cli_paths.md")
    parser.add_argument("--child", choices=["export", "build", "weights"], help=argparse.SUPPRESS)
    for hidden in ("--model", "--precision", "--onnx", "--plan", "--weights", "--dir"):
        parser.add_argument(hidden, help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        {
            "export": onnx_export,
            "build": onnx_build,
            "weights": lambda a: write_weights(a.model.split(","), Path(a.dir)),
        }[args.child](args)
        return
    models = ["lenet"] if args.quick else args.models.split(",")
    precisions, batches = (["fp16"], [1]) if args.quick else (["fp32", "fp16"], [1, 32])
    runs = 1 if args.quick else args.runs
    from build_paths import machine_meta  # the same machine/version header as the stage benchmark

    meta = machine_meta(runs)
    compile_sources()
    configs = list(product(models, precisions, batches))
    with tempfile.TemporaryDirectory(prefix="netdef-cli-bench-") as tmp:
        directory = Path(tmp)
        timed_process([sys.executable, __file__, "--child", "weights", "--model", ",".join(models), "--dir", tmp])
        raw: dict = {c: {p: [] for p in ("onnx", *FORMATS)} for c in configs}
        for run in range(runs):
            interpreter = statistics.median(timed_process([sys.executable, "-c", "pass"])["wall"] for _ in range(3))
            for config in configs:
                raw[config]["onnx"].append(run_onnx(*config, directory))
                for fmt in FORMATS:
                    model, precision, batch = config
                    raw[config][fmt].append(run_netdef(model, fmt, precision, batch, directory, interpreter))
                print(
                    f"run {run + 1}/{runs} {config}: ONNX {raw[config]['onnx'][-1]['wall']:.2f} s, netdef "
                    + ", ".join(f"{f} {raw[config][f][-1]['wall']:.2f} s" for f in FORMATS),
                    flush=True,
                )
        instant = instant_answers(directory, runs, models)
    meta["load"] += " (at the end: " + " ".join(f"{x:.2f}" for x in os.getloadavg()) + ")"
    results = {c: {p: median(r) for p, r in paths.items()} for c, paths in raw.items()}
    text = markdown(results, instant, meta)
    print(text)
    if not args.quick:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text)
        print(f"wrote {args.output}")


if __name__ == "__main__":
    main()

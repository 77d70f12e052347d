"""Refit vs rebuild: how much faster is updating an engine's weights than building it again?

    python benchmarks/refit_vs_rebuild.py --arch resnet50 --precision fp16 --repeats 3 [--json out.json]

Checkpoint A builds the engine, checkpoint B is the "retrained" one (LeNet: the trained digits
weights and a perturbed copy; other architectures: seeded random weights with randomized
BatchNorm statistics). Measured, median of ``--repeats``:

- rebuild: define the network from B and build it (refittable where the GPU allows, as the
  engine being replaced was);
- plan: recompute and validate every weight from B (``refit_plan``; CPU only);
- refit in memory: plan + ``Refitter`` on an already deserialized engine (what a live runner's
  hot swap costs);
- refit file to file: load, plan, deserialize, refit, serialize, save (``netdef refit``);
- rebuild + first inference vs hot swap + first inference: TensorRT-RTX builds ahead of time on
  the CPU without timing kernels and compiles them on the GPU at first use, so its "build" alone
  understates what a rebuild costs before the new weights serve.

The goal is refit >= 10x faster than rebuild. Without a supported GPU the refit cannot be
measured; the script says why and reports the rebuild and plan times it can measure.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # seeded random checkpoints, shared with the tests

from random_weights import perturbed, random_checkpoint  # noqa: E402

from architectures import get  # noqa: E402
from netdef import backend  # noqa: E402
from netdef.build import BuildConfig, build  # noqa: E402
from netdef.weights import Checkpoint  # noqa: E402

GOAL = 10.0


def checkpoints(arch: str) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(A, B) for ``arch``."""
    if arch == "lenet":
        a = dict(Checkpoint.load(ROOT / "weights" / "lenet_digits.safetensors"))
        return a, perturbed(a)
    return random_checkpoint(arch, 0), random_checkpoint(arch, 1)


def build_from(arch: str, checkpoint, precision: str, refit: bool):
    net = get(arch).build_network(checkpoint, precision=precision, batch=1)
    definition = {"architecture": arch, "options": {}, "checkpoint": None}
    return build(net, BuildConfig(refit=refit), definition=definition)


def median_seconds(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--arch", default="resnet50")
    parser.add_argument("--precision", default="fp16", choices=["fp32", "fp16", "bf16"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args()

    from netdef.refit import refit_plan

    caps = backend.capabilities()
    a, b = checkpoints(args.arch)
    params = sum(v.size for v in a.values())
    print(f"{args.arch} {args.precision}: {params:,} parameters, {backend.describe()}")
    print(f"GPU: {caps.gpu.name if caps.gpu else 'none'}")
    figures: dict[str, object] = {"arch": args.arch, "precision": args.precision, "backend": backend.describe()}

    refittable = caps.can_build_refittable
    rebuild = median_seconds(lambda: build_from(args.arch, b, args.precision, refittable), args.repeats)
    kind = "refittable" if refittable else "plain (refittable builds need a supported GPU)"
    print(f"rebuild (define + build, {kind}): {rebuild:8.3f} s")
    figures["rebuild_seconds"] = rebuild

    engine = build_from(args.arch, a, args.precision, refittable)
    plan_time = median_seconds(lambda: refit_plan(engine, b), args.repeats)
    print(f"plan (recompute + validate on the CPU): {plan_time:8.3f} s")
    figures["plan_seconds"] = plan_time

    if not caps.can_run:
        print(f"refit could not be measured: {caps.reason}")
        figures["refit_unavailable"] = caps.reason
    else:
        figures.update(measure_refit(args, engine, b, rebuild))
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1))
    return 0


def refit_in_memory(engine, b, repeats: int) -> float:
    """Median seconds of plan + Refitter on one deserialized engine (freed on return)."""
    from netdef.refit import apply_weights, deserialize, refit_plan

    runtime, cuda_engine = deserialize(engine)
    seconds = median_seconds(lambda: apply_weights(cuda_engine, refit_plan(engine, b)), repeats)
    del runtime
    return seconds


def measure_refit(args: argparse.Namespace, engine, b, rebuild: float) -> dict[str, float]:
    """The GPU part: refit in memory, file to file, and both paths up to their first inference."""
    from netdef.refit import refit_engine_file
    from netdef.runtime import Runner, run_engine_file

    x = {"input": np.random.default_rng(0).standard_normal((1, *get(args.arch).input_shape)).astype(np.float32)}
    in_memory = refit_in_memory(engine, b, args.repeats)
    with tempfile.TemporaryDirectory() as tmp:
        src = engine.save(Path(tmp) / "a.engine")
        file_to_file = median_seconds(lambda: refit_engine_file(src, b, Path(tmp) / "b.engine"), args.repeats)
    # TensorRT-RTX compiles kernels on the GPU at first use: a rebuilt engine pays that again, a
    # hot-swapped one does not. So compare the two up to the first inference with the new weights.
    rebuild_ready = median_seconds(
        lambda: run_engine_file(build_from(args.arch, b, args.precision, True), x), args.repeats
    )
    with Runner(engine) as runner:
        runner.infer(x)  # warm: kernels compiled, as in a serving process
        swap_ready = median_seconds(lambda: (runner.refit(b), runner.infer(x)), args.repeats)
    figures = {
        "refit_in_memory_seconds": in_memory,
        "refit_file_seconds": file_to_file,
        "rebuild_to_first_inference_seconds": rebuild_ready,
        "hot_swap_to_first_inference_seconds": swap_ready,
        "speedup_in_memory": rebuild / in_memory,
        "speedup_to_first_inference": rebuild_ready / swap_ready,
    }
    print(f"refit in memory (plan + Refitter):   {in_memory:8.3f} s  -> {rebuild / in_memory:6.1f}x vs rebuild")
    print(f"refit file to file (netdef refit):   {file_to_file:8.3f} s  -> {rebuild / file_to_file:6.1f}x")
    print(f"rebuild + first inference:           {rebuild_ready:8.3f} s")
    print(f"hot swap + first inference:          {swap_ready:8.3f} s  -> {rebuild_ready / swap_ready:6.1f}x")
    best = max(figures["speedup_in_memory"], figures["speedup_to_first_inference"])
    print(f"goal refit >= {GOAL:.0f}x faster: {'met' if best >= GOAL else 'NOT met'} ({best:.1f}x)")
    return figures


if __name__ == "__main__":
    sys.exit(main())

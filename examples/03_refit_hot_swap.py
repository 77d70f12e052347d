"""Refit: swap an engine's weights for a new checkpoint without rebuilding it.

A netdef engine remembers which architecture built it and every weight's name, shape and dtype.
Given a new checkpoint, :func:`netdef.refit.refit_plan` re-runs the definition, recomputes every
weight under its engine name (BatchNorm folds and fp16 casts included) and validates all of them
against the engine: that part runs on the CPU. Handing the weights to TensorRT's refitter, and
swapping them into a running engine ("hot swap"), needs a GPU that the backend supports.

    python examples/03_refit_hot_swap.py [--out DIR]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from architectures import get
from netdef import Checkpoint, backend
from netdef.build import BuildConfig, build
from netdef.datasets import digits_split
from netdef.errors import RefitError
from netdef.reference import run
from netdef.refit import refit_plan
from netdef.weights.safetensors_io import write_safetensors

ROOT = Path(__file__).resolve().parents[1]
WEIGHTS = ROOT / "weights" / "lenet_digits.safetensors"


def accuracy(network, digits) -> float:
    prob = run(network.trt_network, {"input": digits.x_test}).outputs["prob"]
    return float((prob.argmax(axis=1) == digits.y_test).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="Directory for engines and checkpoints (default: temporary).")
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="netdef_example03_"))
    out.mkdir(parents=True, exist_ok=True)
    caps = backend.capabilities()
    digits = digits_split()

    # 1. The engine in service: LeNet in fp16, dynamic batch. Refittable engines can only be built
    #    where a supported GPU is present; elsewhere the engine is built plain (the plan below needs
    #    only its metadata).
    v1 = Checkpoint.load(WEIGHTS)
    net = get("lenet").build_network(v1, precision="fp16", batch=-1)
    definition = {"architecture": "lenet", "options": {}, "checkpoint": str(WEIGHTS)}
    refittable = caps.can_build_refittable
    engine = build(net, BuildConfig(batch=(1, 8, 64), refit=refittable), definition=definition)
    engine_path = engine.save(out / "lenet_v1.engine")
    print(f"engine {engine_path.name}: {len(engine.weight_names)} weights, refittable: {engine.refittable}")

    # 2. A new checkpoint: the same network, retrained (here: the classifier's last layer nudged).
    rng = np.random.default_rng(0)
    v2_arrays = {k: np.array(v) for k, v in v1.items()}
    v2_arrays["fc2.weight"] = v2_arrays["fc2.weight"] + rng.normal(0, 0.02, v2_arrays["fc2.weight"].shape).astype(
        np.float32
    )
    v2_path = out / "lenet_v2.safetensors"
    write_safetensors(v2_arrays, v2_path)

    # 3. The refit plan, computed and validated on the CPU.
    plan = refit_plan(engine, v2_path)
    old = refit_plan(engine, WEIGHTS)
    diffs = plan.max_abs_diff(old)
    print(f"refit plan from {v2_path.name}: {len(plan)} weights, {plan.nbytes / 1024:.0f} KiB, {plan.seconds:.2f} s")
    for weight in plan:
        print(f"  {weight.name:12s} {str(weight.shape):14s} {weight.dtype:8s} max |new - old| {diffs[weight.name]:.4f}")
    changed = [name for name, d in diffs.items() if d]
    print(f"changed: {', '.join(changed)}")

    # What the new weights would score, on the CPU, before any engine is touched.
    v2_net = get("lenet").build_network(Checkpoint.load(v2_path), precision="fp16", batch=-1)
    v1_score, v2_score = accuracy(net, digits), accuracy(v2_net, digits)
    print(f"held-out accuracy (reference executor, fp16): v1 {v1_score:.2%}, v2 {v2_score:.2%}")

    # 4. A checkpoint that does not fit is refused before the engine is touched, every problem at once.
    broken = dict(v2_arrays)
    broken["fc1.weight"] = broken["fc1.weight"][:, :700]
    del broken["conv2.bias"]
    broken_path = out / "lenet_broken.safetensors"
    write_safetensors(broken, broken_path)
    try:
        refit_plan(engine, broken_path)
    except RefitError as exc:
        print(f"refused {broken_path.name}:")
        print("\n".join("  " + line for line in str(exc).splitlines()[:6]))

    # 5. Refit the engine file, and hot-swap the weights of a running engine (GPU).
    if not caps.can_run:
        print(f"skipped applying the refit on the GPU: {caps.reason}")
        return
    from netdef.refit import refit_engine_file
    from netdef.runtime import Runner

    report = refit_engine_file(engine_path, plan, out / "lenet_v2.engine")
    print(f"refit {report.weights} weights into {report.output} in {report.refit_seconds * 1000:.1f} ms")
    with Runner(engine_path) as runner:
        before = runner.infer({"input": digits.x_test[:64]})["prob"]
        runner.refit(v2_path)  # in place: the runner keeps serving
        after = runner.infer({"input": digits.x_test[:64]})["prob"]
    expected = run(v2_net.trt_network, {"input": digits.x_test[:64]}).outputs["prob"]
    moved, off = np.abs(after - before).max(), np.abs(after - expected).max()
    print(f"hot swap: outputs moved by {moved:.4f}; max |GPU - reference| {off:.4f}")


if __name__ == "__main__":
    main()

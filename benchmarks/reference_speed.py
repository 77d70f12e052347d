"""How fast is the NumPy reference executor? ResNet-50, batch 1, fp32, against PyTorch eager on the CPU.

Weights: torchvision's ResNet-50 structure (tests/torch_models.py) with seeded random weights and
randomized BatchNorm statistics; the same state_dict defines the netdef network (BatchNorm folded).
Each timed iteration runs the reference executor and then PyTorch eager on the same input, so
both see the same machine load. Reported: defining the network, preparing the executor (reading
every layer back from TensorRT), the first run (converts and caches weights), then the median and
minimum of ``--runs`` runs of each, their ratio, and the relative error of the logits.

    python benchmarks/reference_speed.py                # 10 runs, writes benchmarks/results/reference_speed.md
    python benchmarks/reference_speed.py --runs 3 --no-write
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "reference_speed.md"
TARGET_S = 2.0


def timed(fn):
    started = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - started


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def measure(arch: str, batch: int, runs: int, seed: int) -> dict:
    import torch

    sys.path.insert(0, str(ROOT / "tests"))
    from torch_models import randomize, state_dict_arrays, torchvision_model

    import architectures
    from netdef import backend
    from netdef.reference import ReferenceExecutor

    load_before = [round(v, 2) for v in os.getloadavg()]
    model = randomize(torchvision_model(arch), seed=seed)
    checkpoint = state_dict_arrays(model)
    x = np.random.default_rng(seed).standard_normal((batch, 3, 224, 224)).astype(np.float32)
    network, define_s = timed(lambda: architectures.get(arch).build_network(checkpoint, batch=batch))
    executor, prepare_s = timed(lambda: ReferenceExecutor(network.trt_network))
    first, first_s = timed(lambda: executor.run({"input": x}).outputs["logits"])
    tx = torch.from_numpy(x)
    with torch.inference_mode():
        expected, torch_first_s = timed(lambda: model(tx).numpy())
        reference_s, torch_s = [], []
        for _ in range(runs):
            out, seconds = timed(lambda: executor.run({"input": x}).outputs["logits"])
            reference_s.append(seconds)
            _, seconds = timed(lambda: model(tx))
            torch_s.append(seconds)
    assert np.array_equal(out, first), "the reference executor is not deterministic"
    error = float(np.abs(first.astype(np.float64) - expected).max() / np.abs(expected).max())
    return {
        "arch": arch,
        "batch": batch,
        "runs": runs,
        "layers": network.num_layers,
        "define_s": define_s,
        "prepare_s": prepare_s,
        "first_s": first_s,
        "torch_first_s": torch_first_s,
        "reference_median_s": statistics.median(reference_s),
        "reference_min_s": min(reference_s),
        "torch_median_s": statistics.median(torch_s),
        "torch_min_s": min(torch_s),
        "relative_error": error,
        "environment": {
            "cpu": cpu_name(),
            "cores": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "python": platform.python_version(),
            "numpy": np.__version__,
            "torch": torch.__version__,
            "backend": backend.describe(),
            "load_before": load_before,
            "load_after": [round(v, 2) for v in os.getloadavg()],
        },
    }


def markdown(r: dict) -> str:
    env = r["environment"]
    ratio = r["reference_median_s"] / r["torch_median_s"]
    verdict = "meets" if r["reference_median_s"] <= TARGET_S else "misses"
    rows = [
        ("define the netdef network (BatchNorm folded)", f"{r['define_s']:.3f} s"),
        ("prepare the executor (read every layer back)", f"{r['prepare_s']:.3f} s"),
        ("first reference run (converts and caches weights)", f"{r['first_s']:.3f} s"),
        (f"reference run, median of {r['runs']}", f"**{r['reference_median_s']:.3f} s**"),
        (f"reference run, min of {r['runs']}", f"{r['reference_min_s']:.3f} s"),
        (f"PyTorch eager CPU, median of {r['runs']}", f"{r['torch_median_s']:.3f} s"),
        (f"PyTorch eager CPU, min of {r['runs']}", f"{r['torch_min_s']:.3f} s"),
        ("ratio reference / PyTorch (medians)", f"{ratio:.2f}x"),
        ("ratio reference / PyTorch (minima)", f"{r['reference_min_s'] / r['torch_min_s']:.2f}x"),
        ("logits: max abs error / max abs PyTorch", f"{r['relative_error']:.1e}"),
    ]
    lines = [
        f"## Reference executor speed: {r['arch']}, batch {r['batch']}, fp32 ({r['layers']} layers)",
        "",
        "| measure | value |",
        "|---|---|",
        *(f"| {name} | {value} |" for name, value in rows),
        "",
        f"Target: at most {TARGET_S:g} s per run: **{verdict}** it.",
        "",
        f"Machine: {env['cpu']}, {env['cores']} cores (shared), PyTorch using {env['torch_threads']} threads; "
        f"Python {env['python']}, NumPy {env['numpy']}, torch {env['torch']}, {env['backend']}; "
        f"load average (1, 5, 15 min) {env['load_before']} before and {env['load_after']} after: other work shares "
        "these cores, so compare the minima as well as the medians.",
        "",
        "Reproduce: `python benchmarks/reference_speed.py`",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="resnet50")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--no-write", action="store_true", help="Only print the table.")
    args = parser.parse_args()
    result = measure(args.arch, args.batch, args.runs, args.seed)
    text = markdown(result)
    print(text)
    if not args.no_write:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        args.output.write_text(f"# Reference executor speed\n\nMeasured {stamp}.\n\n{text}")
        print(f"wrote {args.output}")


if __name__ == "__main__":
    main()

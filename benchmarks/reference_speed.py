"""How fast is the NumPy reference executor? Against PyTorch eager on the CPU, fp32, batch 1.

Two networks: ResNet-50 at 224x224 (torchvision's structure, tests/torch_models.py, seeded random
weights and BatchNorm statistics, BatchNorm folded by netdef) and, with ``--arch yolov8n --imgsz 640``,
a 640x640 detector: the architecture registered as ``yolov8n`` (without NMS) against Ultralytics'
``DetectionModel("yolov8n.yaml")`` with the same random weights, fused as Ultralytics fuses it for
inference.

Each timed iteration runs the reference executor and then PyTorch on the same input, so both see the
same machine load. Both wall-clock and process CPU time (``time.process_time``, all threads) are
reported: on a shared machine the wall-clock time mostly measures the other work, the CPU time less so.
Reported: defining the network, preparing the executor (reading every layer back from TensorRT), the
first run (converts and caches weights), then the median and minimum of ``--runs`` runs of each, their
ratios, and the relative error of the output.

    python benchmarks/reference_speed.py                                 # ResNet-50, writes results
    python benchmarks/reference_speed.py --arch yolov8n --imgsz 640      # the 640x640 detector
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
TARGETS = {"default": 1.0, "yolov8n": 1.5}
"""Largest ratio reference / PyTorch accepted: at or below PyTorch for classifiers, 1.5x for 640x640 detectors."""


def timed(fn):
    started = time.perf_counter()
    value = fn()
    return value, time.perf_counter() - started


def clocked(fn):
    """``fn()``, its wall-clock seconds and the process's CPU seconds (every thread) while it ran."""
    wall, cpu = time.perf_counter(), time.process_time()
    value = fn()
    return value, time.perf_counter() - wall, time.process_time() - cpu


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def resnet_case(arch: str, batch: int, imgsz: int, seed: int):
    """(netdef network, PyTorch model, input, output name) for a torchvision classifier with random weights."""
    sys.path.insert(0, str(ROOT / "tests"))
    from torch_models import randomize, state_dict_arrays, torchvision_twin

    import architectures

    model = randomize(torchvision_twin(arch), seed=seed)
    network = architectures.get(arch).build_network(state_dict_arrays(model), batch=batch)
    x = np.random.default_rng(seed).standard_normal((batch, 3, imgsz, imgsz)).astype(np.float32)
    return network, model, x, "logits"


def detector_case(arch: str, batch: int, imgsz: int, seed: int):
    """(netdef network, Ultralytics model, input, output name) for a YOLO detector with random weights."""
    import torch
    from ultralytics.nn.tasks import DetectionModel

    import architectures

    torch.manual_seed(seed)
    model = DetectionModel(f"{arch}.yaml", verbose=False).eval()
    checkpoint = {f"model.{key}" if not key.startswith("model.") else key: value.detach().numpy().copy()
                  for key, value in model.state_dict().items()}  # fmt: skip
    network = architectures.get(arch).build_network(checkpoint, batch=batch, nms=False, imgsz=imgsz)
    x = np.random.default_rng(seed).random((batch, 3, imgsz, imgsz)).astype(np.float32)
    model = model.fuse(verbose=False)
    return network, (lambda tx: model(tx)[0]), x, network.trt_network.get_output(0).name


def measure(arch: str, batch: int, imgsz: int, runs: int, seed: int) -> dict:
    import torch

    from netdef import backend
    from netdef.reference import ReferenceExecutor

    load_before = [round(v, 2) for v in os.getloadavg()]
    case = detector_case if arch.startswith("yolo") else resnet_case
    (network, model, x, output), define_s = timed(lambda: case(arch, batch, imgsz, seed))
    input_name = network.trt_network.get_input(0).name
    executor, prepare_s = timed(lambda: ReferenceExecutor(network.trt_network))
    first, first_s = timed(lambda: executor.run({input_name: x}).outputs[output])
    tx = torch.from_numpy(x)
    with torch.inference_mode():
        expected, torch_first_s = timed(lambda: model(tx).numpy())
        reference, pytorch = [], []
        for _ in range(runs):
            out, wall, cpu = clocked(lambda: executor.run({input_name: x}).outputs[output])
            reference.append((wall, cpu))
            _, wall, cpu = clocked(lambda: model(tx))
            pytorch.append((wall, cpu))
    assert np.array_equal(out, first), "the reference executor is not deterministic"
    error = float(np.abs(first.astype(np.float64) - expected).max() / np.abs(expected).max())
    return {
        "arch": arch,
        "batch": batch,
        "imgsz": imgsz,
        "runs": runs,
        "layers": network.num_layers,
        "define_s": define_s,
        "prepare_s": prepare_s,
        "first_s": first_s,
        "torch_first_s": torch_first_s,
        "reference_median_s": statistics.median(w for w, _ in reference),
        "reference_min_s": min(w for w, _ in reference),
        "reference_cpu_median_s": statistics.median(c for _, c in reference),
        "torch_median_s": statistics.median(w for w, _ in pytorch),
        "torch_min_s": min(w for w, _ in pytorch),
        "torch_cpu_median_s": statistics.median(c for _, c in pytorch),
        "relative_error": error,
        "measured": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
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
    limit = TARGETS.get(r["arch"], TARGETS["default"])
    verdict = "meets" if ratio <= limit else "misses"
    rows = [
        ("define the netdef network (BatchNorm folded)", f"{r['define_s']:.3f} s"),
        ("prepare the executor (read every layer back)", f"{r['prepare_s']:.3f} s"),
        ("first reference run (converts and caches weights)", f"{r['first_s']:.3f} s"),
        (f"reference run, median of {r['runs']}", f"**{r['reference_median_s']:.3f} s**"),
        (f"reference run, min of {r['runs']}", f"{r['reference_min_s']:.3f} s"),
        (f"PyTorch eager CPU, median of {r['runs']}", f"{r['torch_median_s']:.3f} s"),
        (f"PyTorch eager CPU, min of {r['runs']}", f"{r['torch_min_s']:.3f} s"),
        ("ratio reference / PyTorch (wall-clock medians)", f"**{ratio:.2f}x**"),
        ("ratio reference / PyTorch (wall-clock minima)", f"{r['reference_min_s'] / r['torch_min_s']:.2f}x"),
        (
            "CPU time per run, reference / PyTorch (medians)",
            f"{r['reference_cpu_median_s']:.3f} s / {r['torch_cpu_median_s']:.3f} s = "
            f"{r['reference_cpu_median_s'] / r['torch_cpu_median_s']:.2f}x",
        ),
        ("output: max abs error / max abs PyTorch", f"{r['relative_error']:.1e}"),
    ]
    lines = [
        f"## Reference executor speed: {r['arch']}, {r['imgsz']}x{r['imgsz']}, batch {r['batch']}, fp32 "
        f"({r['layers']} layers)",
        "",
        f"Measured {r['measured']}.",
        "",
        "| measure | value |",
        "|---|---|",
        *(f"| {name} | {value} |" for name, value in rows),
        "",
        f"Target: at most {limit:g}x PyTorch's time (wall-clock medians): **{verdict}** it.",
        "",
        f"Machine: {env['cpu']}, {env['cores']} cores (shared), PyTorch using {env['torch_threads']} threads; "
        f"Python {env['python']}, NumPy {env['numpy']}, torch {env['torch']}, {env['backend']}; "
        f"load average (1, 5, 15 min) {env['load_before']} before and {env['load_after']} after: other work shares "
        "these cores, so compare the minima as well as the medians.",
        "",
        f"Reproduce: `python benchmarks/reference_speed.py --arch {r['arch']} --imgsz {r['imgsz']}`",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default="resnet50")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--imgsz", type=int, default=None, help="Input height and width (224; 640 for YOLO).")
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--no-write", action="store_true", help="Only print the table.")
    args = parser.parse_args()
    imgsz = args.imgsz or (640 if args.arch.startswith("yolo") else 224)
    result = measure(args.arch, args.batch, imgsz, args.runs, args.seed)
    text = markdown(result)
    print(text)
    if not args.no_write:
        write_section(args.output, result["arch"], text)
        print(f"wrote {args.output}")


def write_section(path: Path, arch: str, text: str) -> None:
    """Replace (or add) this architecture's section of the results file, keeping the others."""
    sections: dict[str, str] = {}
    if path.exists():
        for chunk in path.read_text().split("\n## ")[1:]:
            sections[chunk.split(":", 1)[1].split(",", 1)[0].strip()] = "## " + chunk.rstrip() + "\n"
    sections[arch] = text
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("# Reference executor speed\n\n" + "\n".join(sections[name] for name in sorted(sections)))


if __name__ == "__main__":
    main()

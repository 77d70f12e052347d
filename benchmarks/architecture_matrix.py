"""Architecture x precision: TensorRT build time, engine size and reference error, as a Markdown table.

Each architecture gets its PyTorch twin (tests/torch_models.py) with seeded random weights and
BatchNorm statistics measured on random images then perturbed; netdef defines it from the twin's
state_dict at full size, TensorRT builds it (static batch 1; on the CPU with TensorRT-RTX), and the
NumPy reference executor runs it on random images, compared with PyTorch in fp32:
relative error = max |netdef - PyTorch| / max |PyTorch| over the logits.

    python benchmarks/architecture_matrix.py                      # the default five architectures
    python benchmarks/architecture_matrix.py resnet18 -p fp16 --images 2 --no-reference
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from torch_models import randomize, state_dict_arrays, torchvision_model  # noqa: E402
from zoo import calibrate_batch_norm  # noqa: E402

import architectures  # noqa: E402
from netdef import backend  # noqa: E402
from netdef.build import build  # noqa: E402
from netdef.reference import run  # noqa: E402

DEFAULT = ["resnet18", "resnet50", "mobilenet_v2", "vgg16", "vit_b_16"]


def measure(arch: str, precisions: list[str], images: int, reference: bool) -> list[dict]:
    model = randomize(torchvision_model(arch), seed=0)
    rng = np.random.default_rng(1)
    calibrate_batch_norm(model, torch.from_numpy(rng.standard_normal((4, 3, 224, 224), dtype=np.float32)), seed=2)
    checkpoint = state_dict_arrays(model)
    x = rng.standard_normal((images, 3, 224, 224), dtype=np.float32)
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).numpy().astype(np.float64)
    del model
    rows = []
    for precision in precisions:
        started = time.perf_counter()
        net = architectures.get(arch).build_network(checkpoint, precision=precision, batch=images)
        defined = time.perf_counter() - started
        engine = build(net)
        row = {
            "arch": arch,
            "precision": precision,
            "parameters": architectures.get(arch).num_parameters(),
            "define_s": defined,
            "build_s": engine.metadata["build_seconds"],
            "engine_mib": len(engine.plan) / 2**20,
            "error": None,
            "reference_s": None,
        }
        del engine
        if reference:
            started = time.perf_counter()
            out = run(net.trt_network, {"input": x}).outputs["logits"]
            row["reference_s"] = time.perf_counter() - started
            row["error"] = float(np.abs(out - expected).max() / np.abs(expected).max())
        rows.append(row)
        print(_row(row), file=sys.stderr, flush=True)
        del net
        gc.collect()
    return rows


def _row(r: dict) -> str:
    error = f"{r['error']:.1e}" if r["error"] is not None else "-"
    return (
        f"| {r['arch']} | {r['precision']} | {r['parameters'] / 1e6:.1f} M | {r['define_s']:.1f} | {r['build_s']:.1f} "
        f"| {r['engine_mib']:.1f} | {error} |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("archs", nargs="*", default=DEFAULT)
    parser.add_argument("-p", "--precision", action="append", choices=["fp32", "fp16", "bf16"])
    parser.add_argument("--images", type=int, default=1, help="images (batch) for the reference comparison")
    parser.add_argument("--no-reference", action="store_true", help="skip the reference executor run")
    args = parser.parse_args()
    precisions = args.precision or ["fp32", "fp16", "bf16"]
    rows = []
    for arch in args.archs:
        rows += measure(arch, precisions, args.images, not args.no_reference)
    caps = backend.capabilities()
    print(f"{backend.describe()}; built on {'GPU ' + str(caps.gpu) if caps.gpu else 'the CPU'}; 224x224, batch "
          f"{args.images}; reference error on {args.images} random image(s)\n")  # fmt: skip
    print("| architecture | precision | parameters | define s | build s | engine MiB | reference error |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for row in rows:
        print(_row(row))


if __name__ == "__main__":
    main()

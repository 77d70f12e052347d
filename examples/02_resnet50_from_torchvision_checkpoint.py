"""ResNet-50 from a torchvision-style checkpoint: define, inspect, build, read the engine's metadata.

A real torchvision checkpoint (``resnet50-*.pth``) cannot be downloaded here, so this example
writes one with the same parameter names and shapes and seeded random values (BatchNorm
statistics included), exactly as ``torch.save(model.state_dict())`` would. Everything after
that is what you would do with the real file:

    python examples/02_resnet50_from_torchvision_checkpoint.py [--out DIR] [--precision fp16]

The engine build runs on the CPU with TensorRT-RTX (about 2 s); running it needs a supported GPU.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

from architectures import get
from netdef import Checkpoint, backend
from netdef.build import BuildConfig, build
from netdef.inspect import flops_text, inspect_network


def random_torchvision_checkpoint(arch: str, path: Path, seed: int = 0) -> Path:
    """Seeded random weights under torchvision's names: He-normal convolutions and linear layers,
    BatchNorm with non-trivial statistics. Saved with torch.save when PyTorch is installed."""
    rng = np.random.default_rng(seed)
    expected = get(arch).expected_weights()
    batch_norms = {k.removesuffix(".running_var") for k in expected if k.endswith(".running_var")}
    state = {}
    for name, shape in expected.items():
        prefix, _, kind = name.rpartition(".")
        if prefix in batch_norms:
            value = {
                "weight": rng.uniform(0.5, 1.0, shape),
                "bias": rng.normal(0, 0.1, shape),
                "running_mean": rng.normal(0, 0.2, shape),
                "running_var": rng.uniform(0.5, 2.0, shape),
            }[kind]
        elif kind == "weight":
            value = rng.normal(0, (2.0 / np.prod(shape[1:])) ** 0.5, shape)
        else:
            value = rng.normal(0, 0.1, shape)
        state[name] = value.astype(np.float32)
    try:
        import torch
    except ImportError:
        from netdef.weights.safetensors_io import write_safetensors

        path = path.with_suffix(".safetensors")
        write_safetensors(state, path)
        return path
    tensors = {k: torch.from_numpy(v) for k, v in state.items()}
    for prefix in batch_norms:  # torchvision's state_dict has these too; netdef ignores them
        tensors[f"{prefix}.num_batches_tracked"] = torch.tensor(0)
    torch.save(tensors, path)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="Directory for the checkpoint and engine (default: temporary).")
    parser.add_argument("--precision", default="fp16", choices=["fp32", "fp16", "bf16"])
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="netdef_example02_"))
    out.mkdir(parents=True, exist_ok=True)

    # 1. A checkpoint with torchvision's parameter names.
    path = random_torchvision_checkpoint("resnet50", out / "resnet50.pth")
    checkpoint = Checkpoint.load(path)
    print(f"checkpoint {path.name}: {len(checkpoint)} entries, {checkpoint.num_parameters:,} values")

    # 2. Define the network layer by layer. BatchNorm folds into the convolutions before it.
    architecture = get("resnet50")
    net = architecture.build_network(checkpoint, precision=args.precision, batch=-1)
    print(f"defined resnet50 ({args.precision}): {net.num_layers} layers, {len(net.weights)} named weights")
    print(f"  unused checkpoint entries: {len(net.unused_keys())} (num_batches_tracked is never needed)")
    folded = "layer1.0.conv1.weight"
    print(f"  {folded} is derived from {', '.join(net.derived[folded])}")

    # 3. What it contains, read back from TensorRT (as `netdef inspect resnet50` shows).
    summary = inspect_network(net)
    print(f"  {summary.total_params:,} weights, {flops_text(summary.total_flops)} per image")
    for kind, (count, _, flops) in list(summary.by_type().items())[:3]:
        print(f"    {kind.lower():16s} {count:3d} layers {100 * flops / summary.total_flops:5.1f}% of FLOPs")

    # 4. Build with a dynamic batch of 1..32 images (optimised for 8).
    caps = backend.capabilities()
    if not caps.can_build:
        print(f"skipped the build: {caps.reason}")
        return
    definition = {"architecture": "resnet50", "options": {}, "checkpoint": str(path)}
    engine = build(net, BuildConfig(batch=(1, 8, 32)), definition=definition)
    engine_path = engine.save(out / f"resnet50_{args.precision}.engine")
    print(f"built {engine_path.name}: {len(engine.plan) / 2**20:.1f} MiB in {engine.metadata['build_seconds']:.1f} s")

    # 5. The engine file's metadata, as `netdef info` prints it.
    from typer.testing import CliRunner

    from netdef.cli import app

    print(CliRunner().invoke(app, ["info", str(engine_path)]).output.rstrip())

    if not caps.can_run:
        print(f"skipped running the engine: {caps.reason}")
        return
    from netdef.runtime import run_engine_file

    image = np.random.default_rng(1).standard_normal((1, 3, 224, 224)).astype(np.float32)
    logits = run_engine_file(engine_path, {"input": image})["logits"]
    print(f"GPU engine: logits {logits.shape}, top-5 classes {np.argsort(logits[0])[::-1][:5].tolist()}")


if __name__ == "__main__":
    main()

"""fp16 vs fp32, layer by layer: where does half precision lose accuracy in LeNet?

Both networks are defined from the same trained checkpoint; the NumPy reference executor runs
them on the 360 held-out digits with TensorRT's dtype semantics (fp16 tensors are rounded to
fp16 after every layer) and keeps every layer's output. Each layer of the fp16 network is then
compared with the same layer of the fp32 one.

    python examples/05_fp16_vs_fp32.py [--precision fp16|bf16]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from architectures import get
from netdef import Checkpoint
from netdef.datasets import digits_split
from netdef.inspect import inspect_network, type_text
from netdef.reference import run

ROOT = Path(__file__).resolve().parents[1]
WEIGHTS = ROOT / "weights" / "lenet_digits.safetensors"


def layerwise(reference: dict[str, list[np.ndarray]], other: dict[str, list[np.ndarray]]) -> list[tuple]:
    """(layer, max |a - b|, relative error ||a - b|| / ||a||, scale max |a|) for layers both networks have."""
    rows = []
    for name, outputs in reference.items():
        if name not in other:
            continue
        a = outputs[0].astype(np.float64)
        b = other[name][0].astype(np.float64)
        diff = np.abs(a - b)
        rel = float(np.linalg.norm(a - b) / max(np.linalg.norm(a), 1e-30))
        rows.append((name, float(diff.max()), rel, float(np.abs(a).max())))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--precision", default="fp16", choices=["fp16", "bf16"])
    args = parser.parse_args()

    checkpoint = Checkpoint.load(WEIGHTS)
    digits = digits_split()
    lenet = get("lenet")
    full = lenet.build_network(checkpoint, precision="fp32", batch=-1)
    half = lenet.build_network(checkpoint, precision=args.precision, batch=-1)

    r32 = run(full.trt_network, {"input": digits.x_test}, capture=True)
    r16 = run(half.trt_network, {"input": digits.x_test}, capture=True)
    types = {layer.name: type_text(layer.type) for layer in inspect_network(full).layers}
    extra = sorted(set(r16.layers) - set(r32.layers))
    print(f"fp32: {full.num_layers} layers; {args.precision}: {half.num_layers} layers (extra: {', '.join(extra)})")

    print(f"\n{'layer':14s} {'type':15s} {'max |fp32|':>11s} {'max |diff|':>11s} {'rel. error':>11s}")
    rows = layerwise(r32.layers, r16.layers)
    for name, max_diff, rel, scale in rows:
        print(f"{name:14s} {types.get(name, '?'):15s} {scale:11.4g} {max_diff:11.3g} {rel:11.2e}")
    worst = max(rows, key=lambda row: row[2])
    print(f"\nlargest relative error: {worst[0]} ({worst[2]:.2e})")

    p32, p16 = r32.outputs["prob"], r16.outputs["prob"]
    labels32, labels16 = p32.argmax(axis=1), p16.argmax(axis=1)
    acc32 = float((labels32 == digits.y_test).mean())
    acc16 = float((labels16 == digits.y_test).mean())
    print(f"held-out accuracy: fp32 {acc32:.2%}, {args.precision} {acc16:.2%}")
    print(f"predictions that differ: {int((labels32 != labels16).sum())} of {len(labels32)}")
    print(f"max |probability difference|: {np.abs(p32 - p16).max():.2e}")


if __name__ == "__main__":
    main()

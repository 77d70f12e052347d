"""The zoo table: per torchvision classification model, parameters, layers, fp16 build time and engine
size, and the measured parity with torchvision.

Each model goes through the zoo harness (``tests/zoo.py``): torchvision's own model with random
weights (calibrated BatchNorm statistics, a refit classifier), its ``state_dict`` as the checkpoint.

- parameters: entries of torchvision's ``state_dict`` that netdef reads (1000 classes, BatchNorm
  statistics included, ``num_batches_tracked`` and training-only heads excluded);
- layers and the build: the registered architecture at torchvision's input size, fp16, dynamic batch
  1:4:8, built by TensorRT-RTX on this machine's CPU (build s = ``build_serialized_network``);
- fp32 error: max |reference executor - torchvision| / max |torchvision| over the logits of 2 images
  at the harness's small image size; fp16/bf16: top-1 agreement with torchvision fp32 on 8 images
  (and the relative error).

Results are one JSON line per model in ``benchmarks/results/zoo.jsonl`` (re-measuring a model
replaces its line) and the Markdown table ``benchmarks/results/zoo.md`` made from all lines.

    python benchmarks/zoo_table.py resnet18 densenet121      # measure these, rewrite the table
    python benchmarks/zoo_table.py --family resnet            # one torchvision module's models
    python benchmarks/zoo_table.py --table                    # only rewrite zoo.md from zoo.jsonl
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from zoo import (  # noqa: E402
    build_checkpoint,
    case,
    define,
    family,
    relative_error,
    torch_logits,
    torchvision_state_shapes,
    zoo_model,
    zoo_names,
)

import architectures  # noqa: E402
from netdef import backend  # noqa: E402
from netdef.build import BuildConfig, build  # noqa: E402
from netdef.reference import run  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
JSONL = RESULTS / "zoo.jsonl"
TABLE = RESULTS / "zoo.md"


def measure(name: str, reduced: bool = True) -> dict:
    arch = architectures.get(name)
    state = torchvision_state_shapes(name)
    parameters = sum(math.prod(s) for k, s in state.items() if not k.startswith(case(name).ignored))
    row: dict = {"name": name, "family": family(name), "input": list(arch.input_shape), "parameters": parameters}

    model, checkpoint, x = zoo_model(name)
    net = define(name, checkpoint, batch=2)
    row["fp32_error"] = relative_error(
        run(net.trt_network, {"input": x[:2]}).outputs["logits"], torch_logits(model, x[:2])
    )
    row["reference_size"] = case(name).size
    if reduced:
        expected = torch_logits(model, x)
        for precision in ("fp16", "bf16"):
            reduced_net = define(name, checkpoint, precision=precision, batch=len(x))  # (keeps its weights alive)
            logits = run(reduced_net.trt_network, {"input": x}).outputs["logits"]
            row[f"{precision}_top1"] = float((logits.argmax(1) == expected.argmax(1)).mean())
            row[f"{precision}_error"] = relative_error(logits, expected)
    build_ckpt, options = build_checkpoint(name)
    del net, model
    zoo_model.cache_clear()
    gc.collect()

    started = time.perf_counter()
    net = arch.build_network(build_ckpt, precision="fp16", batch=-1, **options)
    row["define_s"] = time.perf_counter() - started
    row["layers"] = net.num_layers
    engine = build(net, BuildConfig(batch=(1, 4, 8)), definition={"architecture": name})
    row["build_s"] = engine.metadata["build_seconds"]
    row["engine_mib"] = len(engine.plan) / 2**20
    row["builder"] = backend.describe()
    del engine, net, build_ckpt
    gc.collect()
    return row


def load() -> dict[str, dict]:
    if not JSONL.exists():
        return {}
    return {row["name"]: row for row in map(json.loads, JSONL.read_text().splitlines()) if row}


def save(rows: dict[str, dict]) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    JSONL.write_text("".join(json.dumps(rows[n], sort_keys=True) + "\n" for n in sorted(rows)))
    TABLE.write_text(table(rows))


def _top1(row: dict, precision: str) -> str:
    if f"{precision}_top1" not in row:
        return "-"
    return f"{row[f'{precision}_top1']:.0%} ({row[f'{precision}_error']:.1e})"


def table(rows: dict[str, dict]) -> str:
    builders = sorted({r.get("builder", "?") for r in rows.values()})
    lines = [
        "# The torchvision zoo: size, fp16 build, parity with torchvision",
        "",
        f"Measured by `python benchmarks/zoo_table.py` ({'; '.join(builders)}; built on the CPU, a shared",
        "2-core machine, so build times vary by about 2x). Engine: fp16, dynamic batch 1:4:8, torchvision's",
        "input size. fp32 error: max |reference - torchvision| / max |torchvision| on 2 images at the",
        "reference size; fp16/bf16: top-1 agreement with torchvision fp32 on 8 images (relative error).",
        "",
        "| model | family | input | parameters | layers | build s | engine MiB | reference size | fp32 error "
        "| fp16 top-1 | bf16 top-1 |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in sorted(rows.values(), key=lambda r: (r["family"], r["parameters"])):
        lines.append(
            f"| {r['name']} | {r['family']} | {r['input'][1]}x{r['input'][2]} | {r['parameters'] / 1e6:.1f} M "
            f"| {r['layers']} | {r['build_s']:.1f} | {r['engine_mib']:.1f} | {r['reference_size']} "
            f"| {r['fp32_error']:.1e} | {_top1(r, 'fp16')} | {_top1(r, 'bf16')} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("names", nargs="*", help="models to measure (default: none with --table, else all)")
    parser.add_argument("--family", action="append", default=[], help="measure a torchvision module's models")
    parser.add_argument("--no-reduced", action="store_true", help="skip the fp16/bf16 reference runs")
    parser.add_argument("--table", action="store_true", help="only rewrite zoo.md from zoo.jsonl")
    args = parser.parse_args()
    rows = load()
    names = list(args.names) + [n for n in zoo_names() if family(n) in args.family]
    if not names and not args.table:
        names = zoo_names()
    for name in names:
        started = time.perf_counter()
        rows[name] = measure(name, reduced=not args.no_reduced)
        save(rows)  # after each model: a long run keeps what it measured
        print(f"{name}: {json.dumps(rows[name])} ({time.perf_counter() - started:.0f} s)", file=sys.stderr, flush=True)
    save(rows)
    print(TABLE.read_text())


if __name__ == "__main__":
    main()

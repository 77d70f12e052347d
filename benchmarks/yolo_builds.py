"""Every YOLOv8 and YOLO11 scale: TensorRT build time and engine size, fp32/fp16, static and dynamic batch.

The networks are the default ones (decoding and greedy NMS inside the engine) at 640x640, defined on
zero weights of the expected shapes (build time and size do not depend on the values). Each build
runs in this process, one after the other; the table goes to benchmarks/results/yolo_builds.md.

    python benchmarks/yolo_builds.py                  # all 10 variants x fp32/fp16 x static/dynamic
    python benchmarks/yolo_builds.py yolov8n yolo11n  # some
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import architectures  # noqa: E402,F401  (registers the zoo)
from netdef import backend  # noqa: E402
from netdef.build import BuildConfig, build  # noqa: E402
from netdef.definition import get  # noqa: E402
from netdef.weights import Checkpoint  # noqa: E402

VARIANTS = [f"yolov8{s}" for s in "nsmlx"] + [f"yolo11{s}" for s in "nsmlx"]
RESULTS = Path(__file__).resolve().parent / "results" / "yolo_builds.md"


def measure(arch: str) -> list[str]:
    definition = get(arch)
    zeros = Checkpoint(definition.zeros(nms=False))
    rows = []
    for precision in ("fp32", "fp16"):
        for batch, profile, label in ((1, None, "1"), (-1, (1, 4, 8), "1:4:8")):
            started = time.perf_counter()
            net = definition.build_network(zeros, precision=precision, batch=batch)
            defined = time.perf_counter()
            engine = build(net, BuildConfig(batch=profile))
            built = time.perf_counter()
            rows.append(
                f"| {arch} | {precision} | {label} | {net.num_layers} | {defined - started:.2f} | "
                f"{built - defined:.1f} | {len(engine.plan) / 2**20:.1f} |"
            )
            print(rows[-1], flush=True)
            del net, engine
            gc.collect()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("variants", nargs="*", default=VARIANTS)
    args = parser.parse_args()
    header = [
        f"Backend: {backend.describe()}, building on this machine's CPU. Input 640x640, NMS in the engine "
        "(max_det 300, 1000 candidates).",
        "",
        "| variant | precision | batch | layers | define s | build s | engine MiB |",
        "|---|---|---|--:|--:|--:|--:|",
    ]
    rows = [row for arch in args.variants for row in measure(arch)]
    if args.variants == VARIANTS:
        RESULTS.write_text("\n".join(header + rows) + "\n")
        print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()

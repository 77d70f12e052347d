"""How big and how fast is ``netdef explain --html``? ResNet-50 (and ResNet-152, ViT-B/16) pages.

Measured, as ratios to the targets:
- the size of ResNet-50's page (target <= 5 MB);
- the time to write it with ``netdef explain resnet50 -w CK --html FILE`` against the time of the
  text ``netdef explain resnet50 -w CK`` (target <= 3x); both run in this process through the CLI,
  alternating, after one warm-up run of each (imports), each defining the network from the checkpoint;
- the time from navigation to an interactive graph in headless Chromium (target <= 2 s): the page's
  script records ``performance.now()`` (time since the navigation started; ``file://``, a fresh load
  each run) once its graph, list and panel handlers are set up and the next frame has been painted;
- for ResNet-152 and ViT-B/16 (the largest graphs): page size, time to interactive and the time to
  select a layer deep in the network (panel drawn, graph panned to it).

Weights are seeded random checkpoints (tests/random_weights.py), so histograms are realistic.

    python benchmarks/explain_html.py              # writes benchmarks/results/explain_html.md
    python benchmarks/explain_html.py --runs 1 --no-write
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "explain_html.md"
SIZE_TARGET_MB = 5.0
WRITE_RATIO_TARGET = 3.0
INTERACTIVE_TARGET_S = 2.0


def cli(*args: str) -> float:
    """Run ``netdef ARGS`` in this process with its output discarded; the seconds it took."""
    from netdef.cli import run_app

    argv = sys.argv
    sys.argv = ["netdef", *args]
    started = time.perf_counter()
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            run_app()
    except SystemExit as exc:
        if exc.code not in (0, None):
            raise RuntimeError(f"netdef {' '.join(args)} exited with {exc.code}") from None
    finally:
        sys.argv = argv
    return time.perf_counter() - started


def write_times(checkpoint: Path, page: Path, runs: int) -> dict:
    cli("explain", "resnet50", "-w", str(checkpoint))  # warm-up: imports, first reads
    cli("explain", "resnet50", "-w", str(checkpoint), "--html", str(page))
    text, html = [], []
    for _ in range(runs):
        text.append(cli("explain", "resnet50", "-w", str(checkpoint)))
        html.append(cli("explain", "resnet50", "-w", str(checkpoint), "--html", str(page)))
    return {"text": text, "html": html}


def browser_times(driver, page: Path, runs: int, deep_layer: int | None = None) -> dict:
    from headless_chromium import console_errors, open_page

    ready, select = [], []
    for _ in range(runs):
        ready.append(open_page(driver, page))
        if deep_layer is not None:
            select.append(
                driver.execute_script(
                    "const t = performance.now(); window.netdefExplain.select(arguments[0]);"
                    "document.body.getBoundingClientRect(); return performance.now() - t;",
                    deep_layer,
                )
                / 1000
            )
    return {"ready": ready, "select": select, "errors": console_errors(driver)}


def large_page(arch: str, directory: Path) -> tuple[Path, int, float]:
    """Write ``arch``'s page (batch 1, seeded random weights) through the Python API: path, layers, seconds."""
    from random_weights import random_checkpoint

    import architectures
    from netdef.explain_html import write_page

    network = architectures.get(arch).build_network(random_checkpoint(arch, 0), batch=1)
    started = time.perf_counter()
    result = write_page(network, directory / f"{arch}.html", checkpoint="seeded random weights")
    return result.path, result.layers, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-write", action="store_true", help="print the table only")
    parser.add_argument("--skip-large", action="store_true", help="ResNet-50 only")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "tests"))
    sys.path.insert(0, str(ROOT))
    import headless_chromium
    from random_weights import random_checkpoint

    load_before = [round(v, 2) for v in os.getloadavg()]
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        checkpoint = directory / "resnet50.npz"
        np.savez(checkpoint, **random_checkpoint("resnet50", 0))
        page = directory / "resnet50.html"
        writes = write_times(checkpoint, page, args.runs)
        size_mb = page.stat().st_size / 1e6
        reason = headless_chromium.missing()
        if reason:
            raise SystemExit(f"cannot measure the browser side: {reason}")
        driver = headless_chromium.start()
        try:
            r50 = browser_times(driver, page, args.runs, deep_layer=100)
            large = {}
            if not args.skip_large:
                for arch in ("resnet152", "vit_b_16"):
                    path, layers, seconds = large_page(arch, directory)
                    large[arch] = {
                        "layers": layers,
                        "mb": path.stat().st_size / 1e6,
                        "write": seconds,
                        **browser_times(driver, path, args.runs, deep_layer=layers - 10),
                    }
        finally:
            driver.quit()
    load_after = [round(v, 2) for v in os.getloadavg()]

    text_s = statistics.median(writes["text"])
    html_s = statistics.median(writes["html"])
    ready_s = statistics.median(r50["ready"])
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    lines = [
        "# `netdef explain --html`: page size and speed",
        "",
        f"`python benchmarks/explain_html.py --runs {args.runs}`, {when}:",
        f"{os.cpu_count()} CPUs shared with other work (load average {load_before} before, {load_after} after).",
        "Seeded random weights (tests/random_weights.py), batch 1, fp32; medians of the runs.",
        "",
        "| measure (ResNet-50, 125 layers) | value | target | ratio to target |",
        "|---|---|---|---|",
        f"| page size | {size_mb:.2f} MB | <= {SIZE_TARGET_MB:g} MB | {size_mb / SIZE_TARGET_MB:.2f} |",
        f"| `netdef explain resnet50 -w CK` (text) | {text_s:.2f} s | | |",
        f"| `netdef explain resnet50 -w CK --html FILE` | {html_s:.2f} s | | |",
        f"| writing the page / the text | {html_s / text_s:.2f}x | <= {WRITE_RATIO_TARGET:g}x "
        f"| {html_s / text_s / WRITE_RATIO_TARGET:.2f} |",
        f"| headless Chromium: navigation to interactive graph | {ready_s:.2f} s | <= {INTERACTIVE_TARGET_S:g} s "
        f"| {ready_s / INTERACTIVE_TARGET_S:.2f} |",
        f"| the first of those loads (a browser just started) | {r50['ready'][0]:.2f} s | | |",
        f"| selecting layer 100 (panel, pan to it) | {statistics.median(r50['select']) * 1000:.0f} ms | | |",
        f"| browser console errors | {len(r50['errors'])} | 0 | |",
        "",
        f"Runs: text {[round(s, 2) for s in writes['text']]} s, page {[round(s, 2) for s in writes['html']]} s, "
        f"interactive {[round(s, 2) for s in r50['ready']]} s.",
    ]
    if large:
        lines += [
            "",
            "| larger graphs | layers | page size | writing (Python API) | to interactive | select a deep layer "
            "| console errors |",
            "|---|---|---|---|---|---|---|",
        ]
        for arch, m in large.items():
            lines.append(
                f"| {arch} | {m['layers']} | {m['mb']:.2f} MB | {m['write']:.2f} s "
                f"| {statistics.median(m['ready']):.2f} s | {statistics.median(m['select']) * 1000:.0f} ms "
                f"| {len(m['errors'])} |"
            )
    text = "\n".join(lines) + "\n"
    print(text)
    if not args.no_write:
        RESULTS.write_text(text)
        print(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()

"""Every example runs to the end (exit 0) and prints what it promises; GPU steps say why they were skipped."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from netdef import backend

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
CAPS = backend.capabilities()


def run_example(name: str, *args: str, timeout: int = 600) -> str:
    proc = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args], capture_output=True, text=True, timeout=timeout
    )
    assert proc.returncode == 0, f"{name} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def check_gpu_step(output: str, what: str) -> None:
    if CAPS.can_run:
        assert "skipped" not in output
    else:
        assert f"skipped {what}: {CAPS.reason}" in output


def percent(pattern: str, output: str) -> float:
    match = re.search(pattern, output)
    assert match, f"no match for {pattern!r} in:\n{output}"
    return float(match.group(1))


def test_01_mnist_network_by_hand(tmp_path):
    out = run_example("01_mnist_network_by_hand.py", "--out", str(tmp_path))
    assert re.search(r"^  conv1 +-> conv1 +\(-1, 20, 24, 24\)$", out, flags=re.M)
    assert re.search(r"^  softmax +-> prob +\(-1, 10\)$", out, flags=re.M)
    accuracy = percent(r"reference executor: ([\d.]+)% of 360 held-out digits correct", out)
    from safetensors import safe_open

    with safe_open(str(EXAMPLES.parent / "weights" / "lenet_digits.safetensors"), "np") as f:
        recorded = float(f.metadata()["heldout_accuracy"])
    assert accuracy == pytest.approx(100 * recorded, abs=0.01)
    assert "registered 'lenet' vs this one: max |difference| 0.0e+00" in out
    if CAPS.can_build:
        assert (tmp_path / "mnist_by_hand.engine").stat().st_size > 1_000_000
        check_gpu_step(out, "running the engine on the GPU")


def test_02_resnet50_from_torchvision_checkpoint(tmp_path):
    out = run_example("02_resnet50_from_torchvision_checkpoint.py", "--out", str(tmp_path))
    assert "defined resnet50 (fp16): " in out
    assert "layer1.0.conv1.weight is derived from layer1.0.conv1.weight, layer1.0.bn1.weight" in out
    assert "unused checkpoint entries: 0" in out
    flops = percent(r"([\d.]+) GFLOPs per image", out)
    assert 8.0 < flops < 8.5  # ResNet-50: 4.1 G multiply-adds
    if CAPS.can_build:
        assert re.search(r"input +input +-1x3x224x224 +float32", out)  # `netdef info`'s table
        assert "profile {'batch': [1, 8, 32]}" in out and "precision fp16" in out
        assert (tmp_path / "resnet50_fp16.engine").is_file()
        check_gpu_step(out, "running the engine")


def test_03_refit_hot_swap(tmp_path):
    out = run_example("03_refit_hot_swap.py", "--out", str(tmp_path))
    assert "refit plan from lenet_v2.safetensors: 8 weights" in out
    assert "changed: fc2.weight\n" in out
    assert re.search(r"fc2\.weight +\(10, 500\) +float16 +max \|new - old\| 0\.0[1-9]", out)
    v1 = percent(r"v1 ([\d.]+)%", out)
    assert v1 > 98
    assert "refused lenet_broken.safetensors" in out
    assert "missing weight 'conv2.bias'" in out and "checkpoint has (500, 700)" in out
    check_gpu_step(out, "applying the refit on the GPU")


def test_04_layer_semantics_tour():
    out = run_example("04_layer_semantics_tour.py")
    stops = re.findall(r"^== (.+?): (\w+) layer '([^']+)'", out, flags=re.M)
    assert len(stops) >= 10
    kinds = {kind for _, kind, _ in stops}
    assert {"Convolution", "Pooling", "Activation", "MatrixMultiply", "Softmax", "Shuffle", "Scale"} <= kinds
    assert out.count("   agree (") == len(stops) and "DIFFER" not in out
    assert f"{len(stops)} of {len(stops)} stops agree with NumPy" in out
    assert "The default axis is rank - 3" in out  # the softmax stop shows the reference's docstring


def test_05_fp16_vs_fp32():
    out = run_example("05_fp16_vs_fp32.py")
    assert "fp16: 17 layers (extra: input.cast, prob.cast)" in out
    rows = re.findall(r"^(\S+) +(\w+) +[\d.e+-]+ +[\d.e+-]+ +([\d.]+e[+-]\d+)$", out, flags=re.M)
    assert {name for name, _, _ in rows} >= {"conv1", "conv2", "fc1", "fc2", "softmax"}
    assert all(0 < float(rel) < 1e-2 for _, _, rel in rows if _ != "flatten")  # fp16 keeps ~3 decimal digits
    fp32 = percent(r"fp32 ([\d.]+)%, fp16", out)
    fp16 = percent(r"fp16 ([\d.]+)%\n", out)
    assert abs(fp32 - fp16) <= 0.6  # at most two of 360 digits change

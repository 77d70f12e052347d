"""``netdef explain | run | compare`` end to end: what they print and write, and how they fail.

Commands run in this process as the ``netdef`` script runs them (``run_app``), plus one real
subprocess. Engine files are built with TensorRT-RTX on the CPU; running them with TensorRT needs a
supported GPU (skipped with the backend's reason otherwise).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from cli_runner import assert_clean_failure, needs_build, netdef

import architectures
from netdef import backend
from netdef.datasets import digits_split
from netdef.reference import documentation, run, semantics
from netdef.weights import Checkpoint

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def digits():
    return digits_split()


@pytest.fixture
def x8(tmp_path, digits) -> Path:
    path = tmp_path / "x8.npy"
    np.save(path, digits.x_test[:8])
    return path


def reference_prob(weights: Path, x: np.ndarray, precision: str = "fp32") -> np.ndarray:
    net = architectures.get("lenet").build_network(Checkpoint.load(weights), precision=precision, batch=-1)
    return run(net.trt_network, {"input": x}).outputs["prob"]


# ---------------------------------------------------------------------------------------------- explain


def test_explain_lists_every_layer_with_shapes_weights_and_semantics(monkeypatch, capsys, lenet_weights):
    code, out, err = netdef(monkeypatch, capsys, "explain", "lenet", "-w", lenet_weights, "--batch", "4")
    assert code == 0, err
    net = architectures.get("lenet").build_network(Checkpoint.load(lenet_weights), batch=4)
    names = [net.trt_network.get_layer(i).name for i in range(net.num_layers)]
    headers = [line.split()[1] for line in out.splitlines() if line[:4].strip().isdigit()]
    assert headers == names
    assert "input [4x1x28x28 fp32] -> conv1 [4x20x24x24 fp32]" in out
    assert "weights: conv1.weight 20x1x5x5 fp32; conv1.bias 20 fp32" in out
    assert "kernel_size_nd=5x5" in out and "op1=TRANSPOSE" in out
    for kind in ("CONVOLUTION", "POOLING", "MATRIX_MULTIPLY", "SOFTMAX", "SHUFFLE"):
        assert semantics(kind) in out
    assert "CONSTANT x4, CONVOLUTION x2" in out


def test_explain_shows_folded_batch_norm_without_weights(monkeypatch, capsys):
    code, out, err = netdef(monkeypatch, capsys, "explain", "resnet18", "-p", "fp16")
    assert code == 0, err
    assert "layer1.0.conv1.bias 64 fp16 (BatchNorm layer1.0.bn1 folded in)" in out
    assert "input [1x3x224x224 fp32] -> input.cast [1x3x224x224 fp16]" in out
    assert "bn1" not in [line.split()[1] for line in out.splitlines() if line[:4].strip().isdigit()]


def test_explain_one_layer_prints_its_full_semantics(monkeypatch, capsys, lenet_weights):
    code, out, err = netdef(monkeypatch, capsys, "explain", "lenet", "-w", lenet_weights, "--layer", "max_pool_1")
    assert code == 0, err
    assert out.splitlines()[0].split()[:3] == ["3", "max_pool_1", "POOLING"]
    for line in documentation("POOLING").splitlines():
        assert line.strip() in out
    code, _, err = netdef(monkeypatch, capsys, "explain", "lenet", "--layer", "maxpool_1")
    assert_clean_failure(code, err, "lenet (fp32) has no layer named 'maxpool_1'; did you mean max_pool_1")


# ---------------------------------------------------------------------------------------------- run


def test_run_architecture_writes_the_reference_output(monkeypatch, capsys, tmp_path, lenet_weights, x8, digits):
    out_file = tmp_path / "prob.npy"
    code, out, err = netdef(monkeypatch, capsys, "run", "lenet", "-w", lenet_weights, "-i", x8, "-o", out_file)
    assert code == 0, err
    expected = reference_prob(lenet_weights, digits.x_test[:8])
    np.testing.assert_array_equal(np.load(out_file), expected)
    assert "NumPy reference executor" in out and "prob  8x10 float32" in out
    assert "argmax per row: " + " ".join(map(str, expected.argmax(axis=1))) in out


def test_run_npz_in_and_out_and_float64_input(monkeypatch, capsys, tmp_path, lenet_weights, digits):
    x = digits.x_test[:3].astype(np.float64)
    np.savez(tmp_path / "in.npz", input=x)
    code, _, err = netdef(
        monkeypatch, capsys, "run", "lenet", "-w", lenet_weights, "-i", tmp_path / "in.npz", "-o", tmp_path / "o.npz",
        "-p", "fp16",
    )  # fmt: skip
    assert code == 0, err
    with np.load(tmp_path / "o.npz") as saved:
        assert saved.files == ["prob"]
        np.testing.assert_array_equal(saved["prob"], reference_prob(lenet_weights, x.astype(np.float32), "fp16"))


def test_run_input_errors_name_input_expected_and_actual(monkeypatch, capsys, tmp_path, lenet_weights, digits):
    bad = tmp_path / "bad.npy"
    np.save(bad, digits.x_test[:8, 0])
    code, _, err = netdef(monkeypatch, capsys, "run", "lenet", "-w", lenet_weights, "-i", bad)
    assert_clean_failure(code, err, f"{bad}: input 'input': expected shape (?, 1, 28, 28), got (8, 28, 28)")
    one = tmp_path / "one.npy"
    np.save(one, digits.x_test[0])
    code, _, err = netdef(monkeypatch, capsys, "run", "lenet", "-w", lenet_weights, "-i", one)
    assert_clean_failure(code, err, "got (1, 28, 28)", "looks like one sample: add the batch axis")
    np.savez(tmp_path / "named.npz", image=digits.x_test[:2])
    code, _, err = netdef(monkeypatch, capsys, "run", "lenet", "-w", lenet_weights, "-i", tmp_path / "named.npz")
    assert_clean_failure(code, err, "missing inputs: 'input'", "unknown inputs: 'image'")
    ints = tmp_path / "ints.npy"
    np.save(ints, np.zeros((2, 1, 28, 28), np.int32))
    code, _, err = netdef(monkeypatch, capsys, "run", "lenet", "-w", lenet_weights, "-i", ints)
    assert_clean_failure(code, err, "input 'input': expected dtype float32, got int32")


def test_run_usage_errors(monkeypatch, capsys, tmp_path, lenet_weights, x8):
    cases = [
        (("run", "lenet", "-i", x8), "lenet is an architecture: give its checkpoint with --weights"),
        (("run", "lenet", "-w", lenet_weights, "-i", tmp_path / "x.txt"), "inputs are read from .npy"),
        (("run", "lenet", "-w", lenet_weights, "-i", tmp_path / "no.npy"), "no.npy: no such input file"),
        (("run", "lenett", "-w", lenet_weights, "-i", x8), "lenett: neither an engine file nor an architecture"),
        (("run", "lenet", "-w", lenet_weights, "-i", x8, "-o", tmp_path / "o.csv"), "written as .npy"),
        (("run", "lenet", "-w", lenet_weights, "-i", x8, "--executor", "gpu"), "--executor must be auto, reference"),
    ]
    for args, fragment in cases:
        code, _, err = netdef(monkeypatch, capsys, *args)
        assert_clean_failure(code, err, fragment)
    assert not (tmp_path / "o.csv").exists()


@pytest.fixture
def lenet_engine(monkeypatch, capsys, tmp_path, lenet_weights) -> tuple[Path, Path]:
    """A LeNet engine (dynamic batch 1..8) built from a copy of the weights: (engine, weights copy)."""
    needs_build()
    weights = tmp_path / "lenet.safetensors"
    shutil.copy(lenet_weights, weights)
    engine = tmp_path / "lenet.engine"
    code, _, err = netdef(monkeypatch, capsys, "build", "lenet", "-w", weights, "-o", engine, "--batch", "1:4:8", "-q")
    assert code == 0, err
    return engine, weights


def test_run_engine_file_with_the_reference_executor(monkeypatch, capsys, tmp_path, lenet_engine, x8, digits):
    engine, weights = lenet_engine
    out_file = tmp_path / "o.npy"
    code, out, err = netdef(monkeypatch, capsys, "run", engine, "-i", x8, "-o", out_file, "--executor", "reference")
    assert code == 0, err
    assert f"network defined again from {weights}" in " ".join(out.split())
    np.testing.assert_array_equal(np.load(out_file), reference_prob(weights, digits.x_test[:8]))
    big = tmp_path / "x9.npy"
    np.save(big, digits.x_test[:9])
    code, _, err = netdef(monkeypatch, capsys, "run", engine, "-i", big, "--executor", "reference")
    assert_clean_failure(code, err, "'input' has batch 9; the engine's profile allows batch 1..8")
    code, _, err = netdef(monkeypatch, capsys, "run", engine, "-i", x8, "-p", "fp16")
    assert_clean_failure(code, err, "--precision is for architectures")


def test_run_engine_whose_checkpoint_moved(monkeypatch, capsys, tmp_path, lenet_engine, lenet_weights, x8):
    engine, weights = lenet_engine
    weights.unlink()
    code, _, err = netdef(monkeypatch, capsys, "run", engine, "-i", x8, "--executor", "reference")
    assert_clean_failure(
        code, err, f"built from {weights}, which is not a file here; give the checkpoint with --weights"
    )
    code, _, err = netdef(monkeypatch, capsys, "run", engine, "-i", x8, "--executor", "reference", "-w", lenet_weights)
    assert code == 0, err


def test_tensorrt_executor_without_a_supported_gpu(monkeypatch, capsys, lenet_engine, lenet_weights, x8):
    caps = backend.capabilities()
    if caps.can_run:
        pytest.skip("a supported GPU is present: test_tensorrt_executor_matches_the_reference runs instead")
    engine, weights = lenet_engine
    weights.unlink()  # running the engine itself needs no checkpoint
    code, _, err = netdef(monkeypatch, capsys, "run", engine, "-i", x8, "--executor", "tensorrt")
    assert_clean_failure(code, err, caps.reason)
    bad = x8.with_name("bad.npy")
    np.save(bad, np.load(x8)[:, 0])
    code, _, err = netdef(monkeypatch, capsys, "run", engine, "-i", bad, "--executor", "tensorrt")
    assert_clean_failure(
        code, err, "input 'input': expected shape (?, 1, 28, 28), got (8, 28, 28) (4 dimensions, not 3)"
    )
    code, _, err = netdef(monkeypatch, capsys, "run", "lenet", "-w", lenet_weights, "-i", x8, "--executor", "tensorrt")
    assert_clean_failure(code, err, "--executor tensorrt needs a GPU", caps.reason)
    code, out, err = netdef(monkeypatch, capsys, "run", engine, "-i", x8, "-w", lenet_weights)  # auto: reference
    assert code == 0 and "NumPy reference executor" in out, err


@pytest.mark.gpu
def test_tensorrt_executor_matches_the_reference(monkeypatch, capsys, tmp_path, lenet_engine, x8, digits):
    caps = backend.capabilities()
    if not caps.can_run:
        pytest.skip(caps.reason)
    engine, weights = lenet_engine
    out_file = tmp_path / "trt.npy"
    code, out, err = netdef(monkeypatch, capsys, "run", engine, "-i", x8, "-o", out_file)  # auto: TensorRT
    assert code == 0, err
    assert "TensorRT" in out
    np.testing.assert_allclose(np.load(out_file), reference_prob(weights, digits.x_test[:8]), atol=1e-4)


def test_run_as_a_real_process(tmp_path, lenet_weights, x8, digits):
    result = subprocess.run(
        [sys.executable, "-m", "netdef.cli", "run", "lenet", "-w", lenet_weights, "-i", x8, "-o", tmp_path / "p.npy"],
        capture_output=True, text=True, cwd=REPO, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    np.testing.assert_array_equal(np.load(tmp_path / "p.npy"), reference_prob(lenet_weights, digits.x_test[:8]))


# ---------------------------------------------------------------------------------------------- compare


def test_compare_fp16_against_fp32(monkeypatch, capsys, lenet_weights, x8):
    code, out, err = netdef(monkeypatch, capsys, "compare", "lenet", "-w", lenet_weights, "--random", "4")
    assert code == 0, err
    assert "lenet: fp16 vs fp32 on 4 random sample(s), seed 0" in out
    rows = [line.split() for line in out.splitlines() if line[:3].strip().isdigit() and "compared" not in line]
    assert [row[1] for row in rows][:3] == ["conv1", "max_pool", "conv2"] and all(row[-1] == "ok" for row in rows)
    assert "not compared (2): input.cast (only in lenet fp16), prob.cast (only in lenet fp16)" in out
    assert "15 layers compared (rtol 0.01, atol 0)" in out and "all within tolerance" in out
    code, out, err = netdef(
        monkeypatch, capsys, "compare", "lenet", "-w", lenet_weights, "-p", "bf16", "-i", x8, "--rtol", "1e-4",
        "--failures-only",
    )  # fmt: skip
    assert code == 1, err
    flat = " ".join(out.split())
    assert "lenet: bf16 vs fp32 on" in flat and "the first is conv1" in flat
    assert "FAIL <- first" in next(line for line in out.splitlines() if " conv1 " in line)
    assert " ok" not in out  # --failures-only


def test_compare_errors(monkeypatch, capsys, lenet_weights, x8):
    code, _, err = netdef(monkeypatch, capsys, "compare", "lenet", "-w", lenet_weights, "-i", x8, "--random", "2")
    assert_clean_failure(code, err, "give --input or --random, not both")
    code, _, err = netdef(monkeypatch, capsys, "compare", "lenet", "-w", lenet_weights, "--random", "0")
    assert_clean_failure(code, err, "--random must be >= 1, got 0")
    code, _, err = netdef(monkeypatch, capsys, "compare", "lenet", "-w", lenet_weights, "-p", "fp8")
    assert code == 1 and "fp8" in err and "Traceback" not in err

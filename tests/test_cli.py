"""The ``netdef build | info | list`` commands: what they print, and how they fail (one line, no traceback)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from cli_runner import needs_build, netdef

from netdef import backend
from netdef.build import parse_batch, parse_size
from netdef.engine import Engine
from netdef.weights.safetensors_io import write_safetensors

REPO = Path(__file__).resolve().parents[1]


def netdef_process(*args, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run ``python -m netdef.cli`` in a fresh process."""
    return subprocess.run(
        [sys.executable, "-m", "netdef.cli", *map(str, args)],
        capture_output=True, text=True, cwd=REPO, env={**os.environ, **(env or {})}, timeout=300,
    )  # fmt: skip


def assert_clean_failure(code: int, err: str, *fragments: str) -> None:
    assert code == 1, err
    assert err.startswith("error: "), err
    assert "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in err, (fragment, err)


# --------------------------------------------------------------------------- success


def test_build_info_end_to_end_in_a_fresh_process(tmp_path, lenet_weights):
    needs_build()
    output = tmp_path / "lenet_fp16.engine"
    started = time.perf_counter()
    done = netdef_process(
        "build", "lenet", "--weights", lenet_weights, "--precision", "fp16", "--batch", "1:8:64", "-o", output
    )
    seconds = time.perf_counter() - started
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == f"built {output}  lenet fp16 batch dynamic 1:8:64"
    assert "weights 8 (431,080 parameters)" in lines[1] and "engine " in lines[1]
    assert f"with {backend.BACKEND} {backend.VERSION}" in lines[2]
    print(f"netdef build lenet (fp16, 1:8:64) in a fresh process: {seconds:.2f} s")

    engine = Engine.load(output)
    assert engine.precision == "fp16" and engine.metadata["profile"] == {"batch": [1, 8, 64]}
    assert engine.metadata["definition"]["architecture"] == "lenet"

    info = netdef_process("info", output)
    assert info.returncode == 0, info.stderr
    assert "precision fp16" in info.stdout and "profile {'batch': [1, 8, 64]}" in info.stdout
    rows = [line.split() for line in info.stdout.splitlines()]
    assert ["input", "input", "-1x1x28x28", "float32"] in rows
    assert ["output", "prob", "-1x10", "float32"] in rows
    assert "8 named weights (0 derived)" in info.stdout


@pytest.mark.parametrize(("precision", "batch", "shape"), [("fp32", None, "static 1"), ("bf16", "8", "static 8")])
def test_build_static_batches(monkeypatch, capsys, tmp_path, lenet_weights, precision, batch, shape):
    needs_build()
    output = tmp_path / "lenet.engine"
    args = ["build", "lenet", "-w", lenet_weights, "-p", precision, "-o", output] + (
        ["--batch", batch] if batch else []
    )
    code, out, err = netdef(monkeypatch, capsys, *args)
    assert code == 0, err
    assert out.startswith(f"built {output}  lenet {precision} batch {shape}")
    assert Engine.load(output).inputs[0]["shape"][0] == int(shape.split()[1])


def test_build_warns_about_unused_checkpoint_entries(monkeypatch, capsys, tmp_path, lenet_weights):
    needs_build()
    from netdef.weights import Checkpoint

    extended = tmp_path / "extra.safetensors"
    write_safetensors({**Checkpoint.load(lenet_weights), "fc3.weight": np.zeros((2, 2), np.float32)}, extended)
    code, _, err = netdef(monkeypatch, capsys, "build", "lenet", "-w", extended, "-o", tmp_path / "e.engine")
    assert code == 0, err
    assert "warning:" in err and "'fc3.weight' is not used by lenet" in err


def test_list(monkeypatch, capsys):
    code, out, err = netdef(monkeypatch, capsys, "list")
    assert code == 0, err
    row = next(line.split() for line in out.splitlines() if line.startswith("lenet "))
    assert row[:4] == ["lenet", "1x28x28", "prob", "431,080"]


# --------------------------------------------------------------------------- failures


def _bad_checkpoints(tmp_path, lenet_weights):
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\xff" * 64)
    renamed = tmp_path / "renamed.npz"
    from netdef.weights import Checkpoint

    np.savez(renamed, **{k.replace("conv", "cnv"): v for k, v in Checkpoint.load(lenet_weights).items()})
    return garbage, renamed


@pytest.mark.parametrize(
    ("case", "fragments"),
    [
        ("missing-weights", ["nowhere.safetensors: no such checkpoint file"]),
        ("garbage-checkpoint", ["garbage.safetensors: corrupt safetensors header length"]),
        ("renamed-checkpoint", ["renamed.npz: 4 problem(s) defining 'lenet'", "missing weight 'conv1.weight'",
                                "(closest: cnv1.weight"]),
        ("unknown-architecture", ["unknown architecture 'lenett'; did you mean lenet?"]),
        ("batch-two-parts", ["batch '1:8': expected N or MIN:OPT:MAX"]),
        ("batch-words", ["batch 'big': expected N or MIN:OPT:MAX"]),
        ("batch-order", ["batch range must satisfy 1 <= min <= opt <= max, got (8, 1, 64)"]),
        ("batch-zero", ["1 <= min"]),
        ("precision", ["unknown precision 'fp8': expected one of fp32, fp16, bf16"]),
        ("workspace", ["size 'LOTS': expected bytes or a number with K, M or G"]),
    ],
)  # fmt: skip
def test_build_failures_are_one_clean_error_and_write_nothing(
    monkeypatch, capsys, tmp_path, lenet_weights, case, fragments
):
    garbage, renamed = _bad_checkpoints(tmp_path, lenet_weights)
    output = tmp_path / "out" / "never.engine"
    args = {
        "missing-weights": ["lenet", "-w", tmp_path / "nowhere.safetensors"],
        "garbage-checkpoint": ["lenet", "-w", garbage],
        "renamed-checkpoint": ["lenet", "-w", renamed],
        "unknown-architecture": ["lenett", "-w", lenet_weights],
        "batch-two-parts": ["lenet", "-w", lenet_weights, "--batch", "1:8"],
        "batch-words": ["lenet", "-w", lenet_weights, "--batch", "big"],
        "batch-order": ["lenet", "-w", lenet_weights, "--batch", "8:1:64"],
        "batch-zero": ["lenet", "-w", lenet_weights, "--batch", "0"],
        "precision": ["lenet", "-w", lenet_weights, "--precision", "fp8"],
        "workspace": ["lenet", "-w", lenet_weights, "--workspace", "lots"],
    }[case]
    code, out, err = netdef(monkeypatch, capsys, "build", *args, "-o", output)
    assert_clean_failure(code, err, *fragments)
    assert len(err.splitlines()) <= 6, err  # one error (a checkpoint's lists its problems, one per line)
    assert not output.parent.exists() or not any(output.parent.iterdir()), "a failed build writes nothing"
    assert "built" not in out


def test_build_failure_in_a_fresh_process(tmp_path):
    output = tmp_path / "never.engine"
    done = netdef_process("build", "lenett", "-w", "weights/lenet_digits.safetensors", "-o", output)
    assert done.returncode == 1
    assert done.stderr.startswith("error: unknown architecture 'lenett'; did you mean lenet? (known: ")
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
    assert not output.exists()


def test_info_refuses_a_file_that_is_not_an_engine(monkeypatch, capsys, tmp_path, lenet_weights):
    code, _, err = netdef(monkeypatch, capsys, "info", lenet_weights)
    assert_clean_failure(code, err, "lenet_digits.safetensors: not a netdef engine file")
    code, _, err = netdef(monkeypatch, capsys, "info", tmp_path / "absent.engine")
    assert_clean_failure(code, err, "absent.engine: no such engine file")


def test_usage_errors_exit_2_without_traceback(monkeypatch, capsys, lenet_weights):
    code, _, err = netdef(monkeypatch, capsys, "build", "lenet", "-w", lenet_weights)  # no -o
    assert code == 2 and "Missing option '--output'" in err and "Traceback" not in err


@pytest.mark.skipif(importlib.util.find_spec("tensorrt") is not None, reason="tensorrt is installed here")
def test_forcing_an_absent_backend_is_a_clean_cli_error():
    done = netdef_process("list", env={"NETDEF_BACKEND": "tensorrt"})
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.startswith("error: no TensorRT backend could be imported")
    assert "pip install 'netdef-trt[tensorrt]'" in done.stderr


# --------------------------------------------------------------------------- option parsing


@pytest.mark.parametrize(("text", "expected"), [("8", (8, 8, 8)), ("1:8:64", (1, 8, 64)), (" 2:2:2 ", (2, 2, 2))])
def test_parse_batch(text, expected):
    assert parse_batch(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [("1048576", 1 << 20), ("512M", 512 << 20), ("2G", 2 << 30), ("1.5g", 3 << 29), ("64KiB", 64 << 10),
     ("256MB", 256 << 20)],
)  # fmt: skip
def test_parse_size(text, expected):
    assert parse_size(text) == expected

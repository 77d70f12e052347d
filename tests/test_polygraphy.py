"""Polygraphy network scripts: the script's load_network(), and Polygraphy itself loading and building it."""

from __future__ import annotations

import gc
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import architectures  # noqa: F401  (the zoo's definitions, found by name)
from netdef import backend
from netdef.errors import NetdefError
from netdef.inspect import inspect_network
from netdef.polygraphy_export import export_polygraphy, polygraphy_commands
from netdef.weights import Checkpoint

POLYGRAPHY = shutil.which("polygraphy") or (
    str(Path(sys.executable).parent / "polygraphy") if (Path(sys.executable).parent / "polygraphy").exists() else None
)
HAS_POLYGRAPHY = importlib.util.find_spec("polygraphy") is not None and POLYGRAPHY is not None
needs_polygraphy = pytest.mark.skipif(not HAS_POLYGRAPHY, reason="Polygraphy is not installed (pip install polygraphy)")


def load_script(path: Path):
    spec = importlib.util.spec_from_file_location(f"pg_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def polygraphy(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    if backend.IS_RTX:
        env["POLYGRAPHY_USE_TENSORRT_RTX"] = "1"
    return subprocess.run([POLYGRAPHY, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_script_rebuilds_the_same_network_and_keeps_weights_alive(tmp_path, lenet_weights, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the script must not depend on the working directory
    script = export_polygraphy("lenet", lenet_weights, tmp_path / "net.py", precision="fp16")
    text = script.read_text()
    compile(text, str(script), "exec")
    assert repr(str(lenet_weights.resolve())) in text and "def load_network():" in text

    builder, network = load_script(script).load_network()
    gc.collect()
    assert network.num_inputs == 1 and network.get_input(0).shape == (1, 1, 28, 28)
    from architectures import get

    expected = inspect_network(get("lenet").build_network(Checkpoint.load(lenet_weights), precision="fp16", batch=1))
    got = inspect_network(network)
    assert got.layers == expected.layers
    conv1 = network.get_layer(next(i for i in range(network.num_layers) if network.get_layer(i).name == "conv1"))
    conv1.__class__ = backend.trt.IConvolutionLayer
    kernel = Checkpoint.load(lenet_weights)["conv1.weight"].astype(np.float16).ravel()
    np.testing.assert_array_equal(conv1.kernel, kernel)  # still the checkpoint's values after gc


def test_dynamic_batch_script_and_shape_flags(tmp_path, lenet_weights):
    script = export_polygraphy("lenet", lenet_weights, tmp_path / "dyn.py", batch=(1, 4, 8))
    text = script.read_text()
    assert "BATCH = -1" in text and "batch dynamic 1:4:8" in text
    flags = "--trt-min-shapes input:[1,1,28,28] --trt-opt-shapes input:[4,1,28,28] --trt-max-shapes input:[8,1,28,28]"
    commands = polygraphy_commands("lenet", "dyn.py", (1, 4, 8))
    assert commands[1].endswith(f"-o lenet.plan {flags}") and flags in text
    _, network = load_script(script).load_network()
    assert network.get_input(0).shape == (-1, 1, 28, 28)


def test_problems_are_reported_before_anything_is_written(tmp_path, lenet_weights):
    with pytest.raises(NetdefError, match="ending in .py"):
        export_polygraphy("lenet", lenet_weights, tmp_path / "net.txt")
    with pytest.raises(NetdefError, match="unknown architecture 'lenett'; did you mean lenet"):
        export_polygraphy("lenett", lenet_weights, tmp_path / "a.py")
    bad = tmp_path / "bad.npz"
    np.savez(bad, **{"conv1.weight": np.zeros((3, 3), np.float32)})
    with pytest.raises(NetdefError, match="conv1.weight"):
        export_polygraphy("lenet", bad, tmp_path / "b.py")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.npz"]


def test_cli_export_prints_the_commands(tmp_path, lenet_weights):
    from netdef.cli import app

    out = tmp_path / "net.py"
    result = CliRunner().invoke(
        app, ["export-polygraphy", "lenet", "-w", str(lenet_weights), "-o", str(out)], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    assert (
        f"wrote {out}" in result.output and f"polygraphy convert {out} --model-type=trt-network-script" in result.output
    )
    assert out.is_file()


@needs_polygraphy
def test_polygraphy_convert_builds_a_plan_from_the_script(tmp_path, lenet_weights):
    if not backend.capabilities().can_build:
        pytest.skip(f"cannot build here: {backend.capabilities().reason}")
    export_polygraphy("lenet", lenet_weights, tmp_path / "net.py")
    proc = polygraphy("convert", "net.py", "--model-type=trt-network-script", "-o", "lenet.plan", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Finished engine building" in proc.stdout + proc.stderr
    assert (tmp_path / "lenet.plan").stat().st_size > 1_000_000  # the weights alone are 1.7 MB in fp32


@needs_polygraphy
def test_polygraphy_inspect_model(tmp_path, lenet_weights):
    export_polygraphy("lenet", lenet_weights, tmp_path / "net.py")
    proc = polygraphy("inspect", "model", "net.py", "--model-type=trt-network-script", "--show", "layers", cwd=tmp_path)
    output = proc.stdout + proc.stderr
    if proc.returncode != 0 and backend.IS_RTX and "'tensorrt' is required" in output:
        pytest.skip(
            "Polygraphy's `inspect model` imports the `tensorrt` module even with POLYGRAPHY_USE_TENSORRT_RTX=1 "
            "(polygraphy/tools/inspect/subtool/model/extractors/_trt.py); `convert` is tested instead"
        )
    assert proc.returncode == 0, output
    assert all(name in output for name in ("conv1", "fc1.bias_add", "softmax"))


@needs_polygraphy
def test_polygraphy_run_on_a_supported_gpu(tmp_path, lenet_weights):
    caps = backend.capabilities()
    if not caps.can_run:
        pytest.skip(f"polygraphy run executes the engine: {caps.reason}")
    export_polygraphy("lenet", lenet_weights, tmp_path / "net.py")
    proc = polygraphy("run", "net.py", "--model-type=trt-network-script", "--trt", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "PASSED" in proc.stdout + proc.stderr

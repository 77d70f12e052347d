"""Strict inputs: regular files only, reads bounded by the file's size, float weights only, finite
calibration data, validated calibration caches, refused overflowing casts, one output per tensor,
no warning text on the terminal, Ctrl-C exits 130 with one line.

Every case works on files under ``tmp_path``; FIFOs and device nodes are made there.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from netdef.errors import CalibrationError, CheckpointError, NetdefError, NetworkDefinitionError
from netdef.weights import Checkpoint
from netdef.weights.convert import write_checkpoint
from tests.cli_runner import netdef
from tests.reliability_helpers import lenet_tensors, make_fifo, make_zero_device, run_python


@pytest.fixture
def weights(tmp_path, lenet_weights) -> Path:
    copy = tmp_path / "w.safetensors"
    shutil.copyfile(lenet_weights, copy)
    return copy


@pytest.fixture(scope="module")
def lenet_digits():
    from netdef.datasets import digits_split

    return digits_split().x_train[:16]


# ------------------------------------------------------------------------------------------ non-regular inputs


def test_calibration_cache_that_is_a_fifo_is_refused_without_hanging(tmp_path, weights):
    fifo = make_fifo(tmp_path / "cache.json")
    code = f"""
import sys
from netdef.cli import run_app
sys.argv = ["netdef", "build", "lenet", "-w", {str(weights)!r}, "-p", "int8", "--calibration", {str(fifo)!r},
            "-o", {str(tmp_path / "x.engine")!r}, "-q"]
run_app()
"""
    result = run_python(code, timeout=60)
    assert result.returncode == 1, result.stderr
    assert "FIFO" in result.stderr and str(fifo) in result.stderr


def test_calibration_cache_that_is_dev_zero_is_refused_without_eating_memory(tmp_path, weights):
    zero = make_zero_device(tmp_path / "zero")
    code = f"""
import resource, sys
from netdef.cli import run_app
resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))
sys.argv = ["netdef", "build", "lenet", "-w", {str(weights)!r}, "-p", "int8", "--calibration", {str(zero)!r},
            "-o", {str(tmp_path / "x.engine")!r}, "-q"]
run_app()
"""
    result = run_python(code, timeout=60)
    assert result.returncode == 1, result.stderr
    assert "character device" in result.stderr


@pytest.mark.parametrize("option", ["weights", "input", "engine", "data"])
def test_every_path_option_refuses_a_fifo_and_a_directory(monkeypatch, capsys, tmp_path, weights, option):
    for kind in ("fifo", "dir"):
        path = tmp_path / f"{kind}-{option}.npy"
        if option in ("weights",):
            path = path.with_suffix(".safetensors")
        if option == "engine":
            path = path.with_suffix(".engine")
        make_fifo(path) if kind == "fifo" else path.mkdir()
        args = {
            "weights": ["weights", path],
            "input": ["run", "lenet", "-w", weights, "-i", path],
            "engine": ["info", path],
            "data": ["calibrate", "lenet", "-w", weights, "--data", path, "-o", tmp_path / "c.json", "-q"],
        }[option]
        code, _, err = netdef(monkeypatch, capsys, *args)
        assert code == 1
        assert ("FIFO" if kind == "fifo" else "directory") in err and str(path) in err


def test_reading_a_file_is_bounded_by_its_size(tmp_path):
    from netdef.fileio import read_regular_file

    path = tmp_path / "f.bin"
    path.write_bytes(b"abc")
    assert read_regular_file(path) == b"abc"
    with pytest.raises(NetdefError, match="FIFO"):
        read_regular_file(make_fifo(tmp_path / "p"))


# ------------------------------------------------------------------------------------------ float weights only


def _bad_dtype_checkpoint(tmp_path: Path, suffix: str = ".safetensors") -> Path:
    tensors = lenet_tensors()
    tensors["conv1.weight"] = np.round(tensors["conv1.weight"] * 10).astype(np.int64)
    tensors["conv1.bias"] = tensors["conv1.bias"].astype(np.int8)
    tensors["conv2.bias"] = (tensors["conv2.bias"] > 0).astype(np.uint8)
    tensors["fc1.bias"] = tensors["fc1.bias"] > 0
    path = tmp_path / f"ints{suffix}"
    write_checkpoint(tensors, path)
    return path


def test_integer_and_bool_weights_are_refused_all_at_once(tmp_path):
    from architectures import get

    path = _bad_dtype_checkpoint(tmp_path)
    with pytest.raises(CheckpointError) as caught:
        get("lenet").build_network(Checkpoint.load(path), precision="fp32", batch=1)
    message = str(caught.value)
    assert str(path) in message
    for name, dtype in [
        ("conv1.weight", "int64"),
        ("conv1.bias", "int8"),
        ("conv2.bias", "uint8"),
        ("fc1.bias", "bool"),
    ]:
        assert f"{name!r}" in message and dtype in message


def test_refit_check_applies_the_same_rule(monkeypatch, capsys, tmp_path, weights):
    engine = tmp_path / "l.engine"
    assert netdef(monkeypatch, capsys, "build", "lenet", "-w", weights, "-o", engine, "-q")[0] == 0
    bad = _bad_dtype_checkpoint(tmp_path)
    code, out, err = netdef(monkeypatch, capsys, "refit", engine, bad, "--check")
    assert code == 1 and "plan OK" not in out
    assert "'conv1.weight'" in err and "int64" in err and "'fc1.bias'" in err and "bool" in err


def test_complex_weights_are_refused_without_a_numpy_warning(monkeypatch, capsys, tmp_path):
    tensors = lenet_tensors()
    tensors["fc2.bias"] = tensors["fc2.bias"].astype(np.complex64) * 1j
    path = tmp_path / "c.npz"
    np.savez(path, **tensors)
    code, _, err = netdef(monkeypatch, capsys, "explain", "lenet", "-w", path)
    assert code == 1
    assert "'fc2.bias'" in err and "complex64" in err and str(path) in err
    assert "Warning" not in err


def test_string_tensors_are_refused_naming_file_and_tensor_with_every_other_problem(tmp_path):
    from architectures import get

    tensors = lenet_tensors()
    tensors["fc1.weight"] = np.array(["a"] * tensors["fc1.weight"].size).reshape(tensors["fc1.weight"].shape)
    tensors["fc2.weight"] = tensors["fc2.weight"].astype(np.int32)
    path = tmp_path / "s.npz"
    np.savez(path, **tensors)
    with pytest.raises(CheckpointError) as caught:
        get("lenet").build_network(Checkpoint.load(path), precision="fp32", batch=1)
    message = str(caught.value)
    assert str(path) in message and "'fc1.weight'" in message and "<U1" in message and "'fc2.weight'" in message


# ------------------------------------------------------------------------------------------ calibration


def test_nan_in_calibration_data_is_refused_naming_sample_and_input(
    monkeypatch, capsys, tmp_path, weights, lenet_digits
):
    data = lenet_digits.copy()
    data[5, 0, 3, 3] = np.nan
    data[9, 0, 0, 0] = np.inf
    path = tmp_path / "calib.npy"
    np.save(path, data)
    code, _, err = netdef(
        monkeypatch, capsys, "calibrate", "lenet", "-w", weights, "--data", path, "-o", tmp_path / "c.json"
    )
    assert code == 1
    assert "'input'" in err and "sample 5" in err and "9" in err and "NaN" in err
    assert not (tmp_path / "c.json").exists()


def test_nan_in_calibration_data_is_refused_by_the_api(lenet_digits):
    from architectures import get
    from netdef.calibration import calibrate

    network = get("lenet").build_network(Checkpoint.load(Path("weights/lenet_digits.safetensors")), batch=-1)
    data = lenet_digits.copy()
    data[2] = np.nan
    with pytest.raises(CalibrationError, match="sample 2"):
        calibrate(network, data, "max")


@pytest.fixture(scope="module")
def lenet_cache(tmp_path_factory, lenet_digits):
    from architectures import get
    from netdef.calibration import calibrate

    network = get("lenet").build_network(Checkpoint.load(Path("weights/lenet_digits.safetensors")), batch=-1)
    path = tmp_path_factory.mktemp("cache") / "cache.json"
    calibrate(network, lenet_digits, "max", architecture="lenet").save(path)
    return path


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda d: d["tensors"][next(iter(d["tensors"]))].update(scale=0.0), "scale"),
        (lambda d: d["tensors"][next(iter(d["tensors"]))].update(scale=float("inf")), "scale"),
        (lambda d: d["tensors"].pop(next(iter(d["tensors"]))), "no scale"),
        (lambda d: d.update(weights_sha256="0" * 64), "other weights"),
        (lambda d: d["tensors"].update(stranger={"amax": 1.0, "scale": 1 / 127, "layers": []}), "does not quantize"),
    ],
    ids=["zero-scale", "inf-scale", "missing-tensor", "fingerprint", "extra-tensor"],
)
def test_a_calibration_cache_is_validated(tmp_path, lenet_cache, weights, edit, message):
    from architectures import get

    data = json.loads(lenet_cache.read_text().replace("Infinity", "1e999"))
    edit(data)
    path = tmp_path / "cache.json"
    path.write_text(json.dumps(data))
    with pytest.raises(CalibrationError, match=message) as caught:
        get("lenet").build_network(Checkpoint.load(weights), precision="int8", batch=1, calibration=path).check()
    assert str(path) in str(caught.value)


# ------------------------------------------------------------------------------------------ smaller fixes


@pytest.mark.parametrize("dtype", ["fp32", "bf16", "fp16"])
def test_convert_refuses_a_cast_that_overflows(monkeypatch, capsys, tmp_path, dtype):
    source = tmp_path / "big.safetensors"
    write_checkpoint({"w": np.array([1.0, 1e39, -1e39], np.float64)}, source)
    out = tmp_path / "out.safetensors"
    code, _, err = netdef(monkeypatch, capsys, "convert", source, "-o", out, "--dtype", dtype)
    assert code == 1 and "overflow" in err and "'w'" in err
    assert not out.exists()


def test_marking_a_tensor_as_two_outputs_is_an_error():
    from netdef.network import Network

    net = Network({}, precision="fp32")
    x = net.input("input", (1, 4))
    y = net.relu(x)
    net.output(y, "a")
    with pytest.raises(NetworkDefinitionError, match="already"):
        net.output(y, "b")


def test_no_python_warning_text_reaches_the_terminal(tmp_path):
    """NumPy and library warnings raised while a command runs go to netdef's log, not to stderr."""
    code = """
import sys, warnings
import numpy as np
import netdef.weights.checkpoint as checkpoint_module
from netdef.cli import run_app
real = checkpoint_module.Checkpoint.load.__func__
def noisy(cls, path):
    warnings.warn("a library said something", UserWarning, stacklevel=1)
    np.float32(1e38) * np.float32(1e38)  # RuntimeWarning: overflow
    np.array([1 + 1j]).astype(np.float32)  # ComplexWarning
    return real(cls, path)
checkpoint_module.Checkpoint.load = classmethod(noisy)
sys.argv = ["netdef", "weights", "weights/lenet_digits.safetensors"]
run_app()
"""
    result = run_python(code)
    assert result.returncode == 0, result.stderr
    assert "conv1.weight" in result.stdout
    assert result.stderr == ""


def test_ctrl_c_while_reading_exits_130_with_one_line(monkeypatch, capsys, weights):
    import netdef.weights.safetensors_io as reader

    def interrupted(path):
        raise KeyboardInterrupt

    monkeypatch.setitem(reader.__dict__, "read_safetensors", interrupted)
    from netdef.weights import checkpoint as checkpoint_module

    monkeypatch.setitem(checkpoint_module._READERS, ".safetensors", interrupted)
    for args in (["weights", weights], ["convert", weights, "-o", weights.with_suffix(".npz")]):
        code, out, err = netdef(monkeypatch, capsys, *args)
        assert code == 130
        assert err.strip().splitlines() == ["interrupted"]
    assert not weights.with_suffix(".npz").exists()


def test_run_refuses_nan_inputs_naming_input_and_sample(monkeypatch, capsys, tmp_path, weights, lenet_digits):
    x = lenet_digits[:4].copy()
    x[3, 0, 1, 1] = np.nan
    path = tmp_path / "x.npy"
    np.save(path, x)
    code, _, err = netdef(monkeypatch, capsys, "run", "lenet", "-w", weights, "-i", path)
    assert code == 1
    assert str(path) in err and "'input'" in err and "sample 3" in err and "NaN" in err


def test_ctrl_c_while_the_command_starts_exits_130_with_one_line():
    """A KeyboardInterrupt while the command modules are imported (a slow start) is handled too."""
    code = """
import sys
class Interrupt:
    def find_spec(self, name, path=None, target=None):
        if name == "netdef.cli.refit_cmds":
            raise KeyboardInterrupt
sys.meta_path.insert(0, Interrupt())
from netdef.cli import main
main()
"""
    result = run_python(code)
    assert result.returncode == 130
    assert result.stderr.strip().splitlines() == ["interrupted"]

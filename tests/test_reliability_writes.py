"""Output-path hazards and interrupted writes: no command ever destroys an input or a half-written output.

Every case works on files under ``tmp_path``; FIFOs and device nodes are made there.
"""

from __future__ import annotations

import os
import shutil
import signal
import time
from pathlib import Path

import numpy as np
import pytest

from netdef.errors import NetdefError
from tests.cli_runner import netdef
from tests.reliability_helpers import (
    leftovers,
    make_fifo,
    make_null_device,
    run_python,
)


@pytest.fixture
def weights(tmp_path, lenet_weights) -> Path:
    copy = tmp_path / "w.safetensors"
    shutil.copyfile(lenet_weights, copy)
    return copy


@pytest.fixture
def digits_npy(tmp_path) -> Path:
    from netdef.datasets import digits_split

    path = tmp_path / "calib.npy"
    np.save(path, digits_split().x_train[:8])
    return path


# ------------------------------------------------------------------------------------------ output == input


def test_build_refuses_writing_the_engine_over_its_weights(monkeypatch, capsys, weights):
    before = weights.read_bytes()
    code, _, err = netdef(monkeypatch, capsys, "build", "lenet", "-w", weights, "-o", weights, "-q")
    assert code == 1
    assert "same file" in err and str(weights) in err
    assert weights.read_bytes() == before


@pytest.mark.parametrize("which", ["weights", "data"])
def test_calibrate_refuses_writing_the_cache_over_an_input(monkeypatch, capsys, weights, digits_npy, which):
    target = weights if which == "weights" else digits_npy
    before = target.read_bytes()
    code, _, err = netdef(
        monkeypatch, capsys, "calibrate", "lenet", "-w", weights, "--data", digits_npy, "-o", target, "-q"
    )
    assert code == 1
    assert "same file" in err
    assert target.read_bytes() == before


def test_convert_refuses_a_hard_link_to_its_input(monkeypatch, capsys, weights, tmp_path):
    link = tmp_path / "link.safetensors"
    os.link(weights, link)
    before = weights.read_bytes()
    code, _, err = netdef(monkeypatch, capsys, "convert", weights, "-o", link)
    assert code == 1
    assert "same file" in err
    assert weights.read_bytes() == before


def test_convert_refuses_a_symlink_to_its_input(monkeypatch, capsys, weights, tmp_path):
    link = tmp_path / "alias.safetensors"
    link.symlink_to(weights)
    before = weights.read_bytes()
    code, _, err = netdef(monkeypatch, capsys, "convert", weights, "-o", link)
    assert code == 1 and "same file" in err
    assert weights.read_bytes() == before and link.is_symlink()


def test_run_refuses_writing_outputs_over_its_input(monkeypatch, capsys, weights, tmp_path):
    from netdef.datasets import digits_split

    inputs = tmp_path / "x.npy"
    np.save(inputs, digits_split().x_test[:2])
    before = inputs.read_bytes()
    code, _, err = netdef(monkeypatch, capsys, "run", "lenet", "-w", weights, "-i", inputs, "-o", inputs)
    assert code == 1 and "same file" in err
    assert inputs.read_bytes() == before


def test_bench_refuses_json_over_the_engine_before_any_work(monkeypatch, capsys, tmp_path, weights):
    engine = tmp_path / "l.engine"
    assert netdef(monkeypatch, capsys, "build", "lenet", "-w", weights, "-o", engine, "-q")[0] == 0
    before = engine.read_bytes()
    code, _, err = netdef(monkeypatch, capsys, "bench", engine, "--json", engine)
    assert code == 1 and "same file" in err  # refused before the GPU is even looked for
    assert engine.read_bytes() == before


def test_refit_refuses_writing_over_the_engine_or_checkpoint(tmp_path, weights):
    from netdef.errors import OutputPathError
    from netdef.refit import refit_engine_file

    engine = tmp_path / "l.engine"
    engine.write_bytes(b"placeholder")
    for target in (engine, weights):
        before = target.read_bytes()
        with pytest.raises(OutputPathError, match="same file"):
            refit_engine_file(engine, weights, target)
        assert target.read_bytes() == before


# ------------------------------------------------------------------------------------------ non-regular outputs


def test_build_refuses_to_replace_a_device_node(monkeypatch, capsys, weights, tmp_path):
    device = make_null_device(tmp_path / "null")
    code, _, err = netdef(monkeypatch, capsys, "build", "lenet", "-w", weights, "-o", device, "-q")
    assert code == 1 and "character device" in err
    assert device.is_char_device()


def test_build_refuses_to_replace_a_fifo(monkeypatch, capsys, weights, tmp_path):
    fifo = make_fifo(tmp_path / "pipe.engine")
    code, _, err = netdef(monkeypatch, capsys, "build", "lenet", "-w", weights, "-o", fifo, "-q")
    assert code == 1 and "FIFO" in err
    assert fifo.is_fifo()


def test_convert_refuses_a_directory_output(monkeypatch, capsys, weights, tmp_path):
    folder = tmp_path / "out.safetensors"
    folder.mkdir()
    code, _, err = netdef(monkeypatch, capsys, "convert", weights, "-o", folder)
    assert code == 1 and "directory" in err
    assert folder.is_dir()


def test_a_symlinked_output_replaces_the_file_it_points_to(tmp_path):
    """Symlinks are followed: the link stays, the regular file it names is replaced atomically."""
    from netdef.fileio import write_bytes

    real = tmp_path / "real.bin"
    real.write_bytes(b"old")
    link = tmp_path / "link.bin"
    link.symlink_to(real)
    write_bytes(link, b"new")
    assert link.is_symlink() and real.read_bytes() == b"new"


def test_a_symlink_to_a_device_is_refused(tmp_path):
    from netdef.errors import OutputPathError
    from netdef.fileio import write_bytes

    fifo = make_fifo(tmp_path / "pipe")
    link = tmp_path / "link.bin"
    link.symlink_to(fifo)
    with pytest.raises(OutputPathError, match="FIFO"):
        write_bytes(link, b"x")


def test_socket_output_is_refused(tmp_path):
    import socket

    from netdef.errors import OutputPathError
    from netdef.fileio import check_output

    path = tmp_path / "s.sock"
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(path))
        with pytest.raises(OutputPathError, match="socket"):
            check_output(path)


# ------------------------------------------------------------------------------------------ interrupted writes


@pytest.mark.parametrize("failure", [OSError(28, "No space left on device"), KeyboardInterrupt()])
def test_a_failed_write_leaves_the_old_output_intact_and_no_temporary(tmp_path, failure):
    from netdef.fileio import atomic_write

    target = tmp_path / "out.bin"
    target.write_bytes(b"precious")
    with pytest.raises(type(failure)), atomic_write(target) as f:
        f.write(b"half")
        raise failure
    assert target.read_bytes() == b"precious"
    assert leftovers(tmp_path, {"out.bin"}) == []


@pytest.mark.parametrize("command", ["convert", "run"])
def test_a_write_past_the_file_size_limit_keeps_the_old_output(tmp_path, weights, command):
    """A write that hits RLIMIT_FSIZE (as on a full disk) fails cleanly: the old output is untouched."""
    if command == "convert":
        out, limit = tmp_path / "out.npz", 20000
        args = ["convert", str(weights), "-o", str(out)]
    else:
        from netdef.datasets import digits_split

        x = tmp_path / "x.npy"
        np.save(x, digits_split().x_test[:4])
        out, limit = tmp_path / "out.npy", 100
        args = ["run", "lenet", "-w", str(weights), "-i", str(x), "-o", str(out)]
    out.write_bytes(b"previous output")
    code = f"""
import resource, sys
from netdef.cli import run_app
resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))
sys.argv = ["netdef", *{args!r}]
run_app()
"""
    result = run_python(code)
    assert result.returncode == 1, result.stderr
    assert "error:" in result.stderr and "Traceback" not in result.stderr
    assert out.read_bytes() == b"previous output"
    assert leftovers(tmp_path, {out.name, "w.safetensors", "x.npy"}) == []


@pytest.mark.parametrize("command", ["convert", "run"])
def test_interrupted_writes_of_convert_and_run_keep_the_old_output(monkeypatch, capsys, tmp_path, weights, command):
    import netdef.fileio as fileio

    out = tmp_path / ("out.npz" if command == "convert" else "out.npy")
    out.write_bytes(b"previous output")
    real_replace = os.replace

    def interrupted(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(fileio.os, "replace", interrupted)
    if command == "convert":
        args = ["convert", weights, "-o", out]
    else:
        from netdef.datasets import digits_split

        x = tmp_path / "x.npy"
        np.save(x, digits_split().x_test[:2])
        args = ["run", "lenet", "-w", weights, "-i", x, "-o", out]
    code, _, err = netdef(monkeypatch, capsys, *args)
    monkeypatch.setattr(fileio.os, "replace", real_replace)
    assert code == 130
    assert err.strip().splitlines() == ["interrupted"]
    assert out.read_bytes() == b"previous output"
    assert leftovers(tmp_path, {out.name, "w.safetensors", "x.npy"}) == []


def test_sigterm_during_a_write_removes_the_temporary_file(tmp_path, weights):
    """A SIGTERM while the engine is being written: exit status 143, no temporary file, old output intact."""
    out = tmp_path / "l.engine"
    out.write_bytes(b"previous engine")
    code = f"""
import os, sys, time
import netdef.fileio as fileio
from netdef.cli import run_app
real_fsync = os.fsync
def slow_fsync(fd):
    print("writing", flush=True)
    time.sleep(30)
fileio.os.fsync = slow_fsync
sys.argv = ["netdef", "build", "lenet", "-w", {str(weights)!r}, "-o", {str(out)!r}, "-q"]
run_app()
"""
    import subprocess
    import sys

    from tests.reliability_helpers import REPO

    env = dict(os.environ, PYTHONPATH=str(REPO))
    process = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO
    )
    try:
        assert process.stdout.readline().strip() == "writing"
        assert any(p.name.startswith(".l.engine.") for p in tmp_path.iterdir())
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == 143, err
    assert err.strip().splitlines()[-1] == "terminated"
    assert out.read_bytes() == b"previous engine"
    assert leftovers(tmp_path, {"l.engine", "w.safetensors"}) == []


def test_a_failed_calibrate_leaves_no_temporary_file(tmp_path, weights, digits_npy):
    """The cache write hits RLIMIT_FSIZE half-way: error, exit 1, no temporary file, no cache."""
    out = tmp_path / "cache.json"
    code = f"""
import resource, sys
from netdef.cli import run_app
resource.setrlimit(resource.RLIMIT_FSIZE, (200, 200))
sys.argv = ["netdef", "calibrate", "lenet", "-w", {str(weights)!r}, "--data", {str(digits_npy)!r},
            "-o", {str(out)!r}, "-q", "-m", "max"]
run_app()
"""
    result = run_python(code)
    assert result.returncode == 1, result.stderr
    assert "error:" in result.stderr and "Traceback" not in result.stderr
    assert leftovers(tmp_path, {"w.safetensors", "calib.npy"}) == []


def test_writes_are_checked_before_any_work_starts(monkeypatch, capsys, weights, tmp_path):
    """An unwritable output is refused before the network is even defined."""
    import architectures

    calls = []
    monkeypatch.setattr(architectures, "get", lambda name: calls.append(name))
    fifo = make_fifo(tmp_path / "x.engine")
    code, _, err = netdef(monkeypatch, capsys, "build", "lenet", "-w", weights, "-o", fifo, "-q")
    assert code == 1 and "FIFO" in err and calls == []


def test_engine_save_and_write_helpers_keep_the_file_mode(tmp_path):
    from netdef.fileio import write_bytes

    target = tmp_path / "f.bin"
    target.write_bytes(b"a")
    target.chmod(0o640)
    write_bytes(target, b"b")
    assert target.read_bytes() == b"b" and (target.stat().st_mode & 0o777) == 0o640


def test_output_errors_are_netdef_errors(tmp_path):
    from netdef.fileio import check_output

    with pytest.raises(NetdefError):
        check_output(tmp_path)


def test_inspect_graph_and_export_polygraphy_refuse_their_inputs(monkeypatch, capsys, weights, tmp_path):
    before = weights.read_bytes()
    dot = tmp_path / "w.dot"
    os.link(weights, dot)
    code, _, err = netdef(monkeypatch, capsys, "inspect", "lenet", "-w", weights, "--graph", dot)
    assert code == 1 and "same file" in err
    code, _, err = netdef(monkeypatch, capsys, "export-polygraphy", "lenet", "-w", weights, "-o", weights)
    assert code == 1 and "same file" in err
    assert weights.read_bytes() == before


def test_slow_writer_timing_is_not_needed(tmp_path):
    """atomic_write makes its temporary file in the target's folder (so the rename is atomic)."""
    from netdef.fileio import atomic_write

    target = tmp_path / "sub" / "out.bin"
    with atomic_write(target) as f:
        names = [p.name for p in target.parent.iterdir()]
        f.write(b"x")
    assert len(names) == 1 and names[0].startswith(".out.bin.")
    assert target.read_bytes() == b"x"
    time.sleep(0)

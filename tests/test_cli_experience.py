"""The CLI's logging and error reporting: -v levels map to TensorRT severities, warnings once, errors
without tracebacks (unless --debug), TensorRT errors not repeated, Ctrl-C exit status."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys

import pytest

from netdef import backend
from netdef.backend import LOGGER, trt

CAPS = backend.capabilities()


def netdef(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "netdef.cli", *args], capture_output=True, text=True, timeout=300, cwd=cwd
    )


@pytest.fixture
def cli_logging():
    """Run the CLI's global callback in-process, and undo its logging setup afterwards."""
    import netdef.cli  # noqa: F401  (netdef.cli.app is shadowed by the Typer app it exports)

    app_module = sys.modules["netdef.cli.app"]
    root = logging.getLogger("netdef")
    trt_log = logging.getLogger("netdef.trt")
    saved = (list(root.handlers), root.level, trt_log.level, dict(app_module._state))

    def setup(verbose: int = 0, debug: bool = False):
        app_module.main(verbose=verbose, debug=debug)
        return app_module

    yield setup
    root.handlers[:], root.level = saved[0], saved[1]
    trt_log.setLevel(saved[2])
    app_module._state.clear()
    app_module._state.update(saved[3])


@pytest.mark.parametrize(
    ("verbose", "shown", "hidden"),
    [
        (0, [], ["WARNING", "INFO", "DEBUG"]),
        (1, ["WARNING"], ["INFO", "DEBUG"]),
        (2, ["WARNING", "INFO"], ["DEBUG"]),
        (3, ["WARNING", "INFO", "DEBUG"], []),
    ],
)
def test_verbosity_maps_tensorrt_severities(cli_logging, capsys, verbose, shown, hidden):
    cli_logging(verbose)
    severities = trt.ILogger.Severity
    for severity in (severities.WARNING, severities.INFO, severities.VERBOSE):
        LOGGER.log(severity, f"message at {severity.name}")  # as TensorRT calls it
    err = capsys.readouterr().err
    for level in shown:
        assert f"[netdef.trt] {level}: message at" in err
    for level in hidden:
        assert f"] {level}:" not in err


def test_each_warning_once(cli_logging, capsys):
    cli_logging(1)
    for _ in range(3):
        LOGGER.log(trt.ILogger.Severity.WARNING, "weights are not refittable")
    LOGGER.log(trt.ILogger.Severity.WARNING, "another warning")
    err = capsys.readouterr().err
    assert err.count("weights are not refittable") == 1 and err.count("another warning") == 1


def test_tensorrt_errors_are_held_and_not_repeated(cli_logging, capsys):
    app_module = cli_logging(0)
    LOGGER.log(trt.ILogger.Severity.ERROR, "kernel weights has count 8 but 12 was expected")
    LOGGER.log(trt.ILogger.Severity.ERROR, "an error nobody quoted")
    assert capsys.readouterr().err == ""  # held until the command ends
    app_module._release_held_errors("BuildError: ...\n  TensorRT: kernel weights has count 8 but 12 was expected")
    err = capsys.readouterr().err
    assert "an error nobody quoted" in err and "kernel weights" not in err


def test_errors_are_one_red_line_without_traceback_unless_debug(tmp_path):
    missing = tmp_path / "[odd] dir" / "w.safetensors"  # brackets must not be read as rich markup
    proc = netdef("build", "lenet", "-w", str(missing), "-o", str(tmp_path / "x.engine"))
    assert proc.returncode == 1
    assert f"error: {missing}: no such checkpoint file" in proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    debug = netdef("--debug", "build", "lenet", "-w", str(missing), "-o", str(tmp_path / "x.engine"))
    assert debug.returncode == 1 and "Traceback (most recent call last)" in debug.stderr
    assert "CheckpointError" in debug.stderr


def test_real_build_logs_by_verbosity(tmp_path, lenet_weights):
    if not CAPS.can_build:
        pytest.skip(f"cannot build here: {CAPS.reason}")
    args = ["build", "lenet", "-w", str(lenet_weights), "-o", str(tmp_path / "l.engine")]
    quiet = netdef(*args)
    assert quiet.returncode == 0, quiet.stderr
    assert "[netdef.trt]" not in quiet.stderr and "built " in quiet.stdout
    chatty = netdef("-vv", *args)
    assert chatty.returncode == 0 and "[netdef.trt] INFO: " in chatty.stderr
    assert "[netdef.trt] DEBUG: " not in chatty.stderr
    verbose = netdef("-vvv", *args)
    assert "[netdef.trt] DEBUG: " in verbose.stderr and verbose.stderr.count("\n") > chatty.stderr.count("\n")


def test_failed_build_shows_tensorrt_error_once(tmp_path, lenet_weights):
    if CAPS.can_build_refittable or not CAPS.can_build:
        pytest.skip(
            "needs a machine where refittable builds fail (CPU-only TensorRT-RTX); " + (CAPS.reason or "here they work")
        )
    args = ["build", "lenet", "-w", str(lenet_weights), "-o", str(tmp_path / "l.engine"), "--refit"]
    proc = netdef(*args)
    assert proc.returncode == 1 and "error: " in proc.stderr
    quoted = [line for line in proc.stderr.splitlines() if "Error Code" in line]
    assert len(quoted) == 1 and quoted[0].startswith("  TensorRT: ")
    assert "[myelin" in quoted[0] or "[" in quoted[0]  # TensorRT's bracketed text survives
    assert not (tmp_path / "l.engine").exists()
    live = netdef("-v", *args)  # with -v the error is also logged as it happens
    assert sum("Error Code" in line for line in live.stderr.splitlines()) == 2


def test_ctrl_c_exits_130_with_one_message(tmp_path, lenet_weights, monkeypatch, capsys, cli_logging):
    if not CAPS.can_build:
        pytest.skip(f"cannot build here: {CAPS.reason}")
    import netdef.progress
    from netdef.cli import run_app

    class CtrlC(netdef.progress.BuildProgress):
        def step_complete(self, phase_name, step):
            if self.steps == 1:
                os.kill(os.getpid(), signal.SIGINT)
            return super().step_complete(phase_name, step)

    monkeypatch.setattr(netdef.progress, "BuildProgress", CtrlC)
    out = tmp_path / "l.engine"
    monkeypatch.setattr(sys, "argv", ["netdef", "build", "lenet", "-w", str(lenet_weights), "-o", str(out)])
    with pytest.raises(SystemExit) as exit_info:
        run_app()
    assert exit_info.value.code == 130
    err = capsys.readouterr().err
    assert "cancelled: build of 'lenet' cancelled after 2 steps; no engine was written" in err
    assert "BuildCanceled" not in err and "Traceback" not in err
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_the_command_leaves_with_its_status_and_flushed_output(tmp_path):
    """main() skips the interpreter's teardown: statuses, piped output and exit handlers must survive it."""
    usage = netdef("build")
    assert usage.returncode == 2 and "Missing argument" in usage.stderr
    listed = netdef("list")
    assert listed.returncode == 0 and "resnet50" in listed.stdout and listed.stdout.endswith("\n")
    script = tmp_path / "leave.py"
    script.write_text(
        "import atexit, sys\n"
        "from netdef import cli\n"
        "atexit.register(lambda: print('exit handler ran', flush=True))\n"
        "sys.argv = ['netdef', '--help']\n"
        "cli.main()\n"
    )
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.rstrip().endswith("exit handler ran"), done.stderr

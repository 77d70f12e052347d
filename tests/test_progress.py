"""Build progress and cancellation, through real TensorRT(-RTX) builds of LeNet on the CPU."""

from __future__ import annotations

import io
import os
import signal
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from netdef.backend import capabilities
from netdef.errors import BuildCancelledError, BuildError
from netdef.progress import BuildProgress, build_with_progress, cancel_on_sigint, interactive_build

WEIGHTS = Path(__file__).resolve().parents[1] / "weights" / "lenet_digits.safetensors"

pytestmark = pytest.mark.skipif(not capabilities().can_build, reason=f"cannot build here: {capabilities().reason}")


def lenet():
    from architectures import get
    from netdef.weights import Checkpoint

    return get("lenet").build_network(Checkpoint.load(WEIGHTS), batch=1)


def test_monitor_sees_nested_phases_and_steps():
    monitor = BuildProgress()
    engine = build_with_progress(lenet(), monitor=monitor)
    assert len(engine.plan) > 0
    names = [p[0] for p in monitor.phases]
    assert names[0] == "Building engine" and monitor.phases[0][1] is None
    assert any(parent == "Building engine" for _, parent, _ in monitor.phases[1:])
    assert monitor.steps > 10
    assert not monitor.cancelled


@pytest.mark.parametrize("after", [1, 7])
def test_cancel_after_n_steps_raises_and_stops_early(after):
    full = BuildProgress()
    build_with_progress(lenet(), monitor=full)
    monitor = BuildProgress(cancel_after_steps=after)
    with pytest.raises(BuildCancelledError, match=f"cancelled after {after} steps") as info:
        build_with_progress(lenet(), monitor=monitor)
    assert isinstance(info.value, BuildError)
    assert monitor.cancelled and monitor.steps == after < full.steps


def test_display_draws_bars_and_a_broken_console_never_raises():
    shown = io.StringIO()
    console = Console(file=shown, force_terminal=True, width=100)
    build_with_progress(lenet(), monitor=BuildProgress(console))
    assert "Building engine" in shown.getvalue()

    class Broken(Console):
        def print(self, *args, **kwargs):
            raise OSError("terminal went away")

        def refresh(self, *args, **kwargs):
            raise OSError("terminal went away")

    monitor = BuildProgress(Broken(file=io.StringIO(), force_terminal=True))
    engine = build_with_progress(lenet(), monitor=monitor)  # the display turns itself off, the build goes on
    assert len(engine.plan) > 0 and monitor.steps > 10

    class FailsMidBuild(BuildProgress):
        def _display_step(self, name, step):
            raise ValueError("drawing failed")

    monitor = FailsMidBuild(Console(file=io.StringIO(), force_terminal=True))
    engine = build_with_progress(lenet(), monitor=monitor)
    assert len(engine.plan) > 0 and monitor.steps > 10 and monitor._progress is None


def test_sigint_during_build_cancels_through_the_handler():
    class KillsItself(BuildProgress):
        def step_complete(self, phase_name, step):
            if self.steps == 4:
                os.kill(os.getpid(), signal.SIGINT)  # a real Ctrl-C, delivered to the handler
            return super().step_complete(phase_name, step)

    monitor = KillsItself()
    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(BuildCancelledError), cancel_on_sigint(monitor):
        build_with_progress(lenet(), monitor=monitor)
    assert monitor.cancelled and 5 <= monitor.steps <= 6
    assert signal.getsignal(signal.SIGINT) is before


def test_quiet_and_non_terminal_show_nothing():
    plain = io.StringIO()
    engine = interactive_build(lenet(), console=Console(file=plain, force_terminal=False))
    assert len(engine.plan) > 0 and plain.getvalue() == ""


def test_cli_ctrl_c_writes_no_file(tmp_path, monkeypatch):
    import netdef.progress
    from netdef.cli.app import app

    class CtrlCAtStep3(BuildProgress):
        def step_complete(self, phase_name, step):
            if self.steps == 2:
                os.kill(os.getpid(), signal.SIGINT)
            return super().step_complete(phase_name, step)

    monkeypatch.setattr(netdef.progress, "BuildProgress", CtrlCAtStep3)
    out = tmp_path / "lenet.engine"
    result = CliRunner().invoke(app, ["build", "lenet", "-w", str(WEIGHTS), "-o", str(out)])
    assert isinstance(result.exception, BuildCancelledError), result.output
    assert "cancelled after 3 steps" in str(result.exception)
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_cli_quiet_build_writes_the_engine(tmp_path):
    from netdef.cli.app import app

    out = tmp_path / "lenet.engine"
    result = CliRunner().invoke(app, ["build", "lenet", "-w", str(WEIGHTS), "-o", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    assert out.stat().st_size > 1_000_000 and "Building engine" not in result.output

"""Build progress bars fed by TensorRT's ``IProgressMonitor``, and clean cancellation (Ctrl-C).

TensorRT reports a tree of phases ("Building engine" > "Optimizing graph" > ...), each with a
number of steps. :class:`BuildProgress` shows one rich bar per open phase and answers
``step_complete`` with False once cancellation was requested, which makes
``build_serialized_network`` stop and return None. :func:`build_with_progress` turns that into
:class:`~netdef.errors.BuildCancelledError`, so nothing is written.

TensorRT swallows exceptions raised in its callbacks, so no callback here ever raises: a display
problem turns the display off and the build goes on.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Iterator
from typing import Any

from netdef.backend import trt
from netdef.errors import BuildCancelledError, BuildError

log = logging.getLogger("netdef.progress")


class BuildProgress(trt.IProgressMonitor):
    """A TensorRT progress monitor that can show rich progress bars and cancel the build.

    ``console``: a ``rich.console.Console`` to draw on, or None for no display.
    ``cancel_after_steps``: request cancellation once this many steps completed (for tests and demos).
    ``phases`` and ``steps`` record what TensorRT reported.
    """

    def __init__(self, console: Any = None, *, cancel_after_steps: int | None = None) -> None:
        trt.IProgressMonitor.__init__(self)  # without it pybind11 raises TypeError at first use
        self.console = console
        self.cancel_after_steps = cancel_after_steps
        self.steps = 0
        self.phases: list[tuple[str, str | None, int]] = []
        """Every phase started: (name, parent name or None, number of steps)."""
        self._cancel = threading.Event()
        self._progress: Any = None
        self._tasks: dict[str, Any] = {}
        self._depth: dict[str, int] = {}

    # ------------------------------------------------------------------ cancellation

    def cancel(self) -> None:
        """Ask TensorRT to stop at the next step (safe from a signal handler or another thread)."""
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    # ------------------------------------------------------------------ display

    def __enter__(self) -> BuildProgress:
        if self.console is not None:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=self.console,
                transient=True,
            )
            self._display("begin")
        return self

    def __exit__(self, *exc: object) -> None:
        self._display("end")
        self._progress = None
        self._tasks.clear()

    def _display(self, action: str, *args: Any) -> None:
        if self._progress is None:
            return
        try:
            getattr(self, f"_display_{action}")(*args)
        except Exception:  # noqa: BLE001 - never let a display problem reach TensorRT
            log.debug("progress display failed; turning it off", exc_info=True)
            with contextlib.suppress(Exception):
                self._progress.stop()
            self._progress = None

    def _display_begin(self) -> None:
        self._progress.start()

    def _display_end(self) -> None:
        self._progress.stop()

    def _display_start(self, name: str, parent: str | None, num_steps: int) -> None:
        depth = self._depth.get(parent, -1) + 1 if parent else 0
        self._depth[name] = depth
        label = "  " * depth + name
        self._tasks[name] = self._progress.add_task(label, total=max(num_steps, 1))
        self._progress.refresh()  # draw each new phase at once, even in builds shorter than a refresh period

    def _display_step(self, name: str, step: int) -> None:
        task = self._tasks.get(name)
        if task is not None:
            self._progress.update(task, completed=step + 1)

    def _display_finish(self, name: str) -> None:
        task = self._tasks.pop(name, None)
        if task is not None:
            self._progress.remove_task(task)

    # ------------------------------------------------------------------ TensorRT callbacks

    def phase_start(self, phase_name: str, parent_phase: str | None, num_steps: int) -> None:
        try:
            self.phases.append((phase_name, parent_phase, num_steps))
            self._display("start", phase_name, parent_phase, num_steps)
        except Exception:  # noqa: BLE001
            pass

    def step_complete(self, phase_name: str, step: int) -> bool:
        try:
            self.steps += 1
            if self.cancel_after_steps is not None and self.steps >= self.cancel_after_steps:
                self.cancel()
            self._display("step", phase_name, step)
        except Exception:  # noqa: BLE001
            pass
        return not self._cancel.is_set()

    def phase_finish(self, phase_name: str) -> None:
        try:
            self._display("finish", phase_name)
        except Exception:  # noqa: BLE001
            pass


@contextlib.contextmanager
def cancel_on_sigint(monitor: BuildProgress, console: Any = None) -> Iterator[None]:
    """While inside, Ctrl-C (SIGINT) cancels the build through ``monitor`` instead of raising.

    TensorRT calls the monitor on the main thread, so the handler runs at the next step. Outside
    the main thread (where Python cannot install signal handlers) this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: Any) -> None:
        if not monitor.cancelled and console is not None:
            with contextlib.suppress(Exception):
                console.print("[yellow]cancelling the build (Ctrl-C)…[/]")
        monitor.cancel()

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


class _HideCancelMessage(logging.Filter):
    """Drops TensorRT's "BuildCanceled" error line: the cancellation was ours and is reported once."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "BuildCanceled" not in record.getMessage()


def build_with_progress(network: Any, config: Any = None, *, monitor: BuildProgress, **kwargs: Any) -> Any:
    """:func:`netdef.build.build` with ``monitor`` as the progress monitor.

    Raises :class:`BuildCancelledError` (a :class:`BuildError`) when the monitor cancelled the build.
    """
    import dataclasses

    from netdef.build import BuildConfig, build

    config = dataclasses.replace(config or BuildConfig(), progress_monitor=monitor)
    trt_log = logging.getLogger("netdef.trt")
    hide = _HideCancelMessage()
    trt_log.addFilter(hide)
    try:
        with monitor:
            return build(network, config, **kwargs)
    except BuildError as exc:
        if monitor.cancelled:
            raise BuildCancelledError(
                f"build of {getattr(network, 'name', 'the network')!r} cancelled after {monitor.steps} steps; "
                "no engine was written"
            ) from exc
        raise
    finally:
        trt_log.removeFilter(hide)


def interactive_build(network: Any, config: Any = None, *, console: Any = None, **kwargs: Any) -> Any:
    """Build as ``netdef build`` does: progress bars on ``console`` when it is a terminal, Ctrl-C cancels.

    ``console=None`` (``--quiet``) or a console that is not a terminal shows nothing; Ctrl-C still
    cancels cleanly. Raises :class:`BuildCancelledError` when cancelled.
    """
    shown = console if console is not None and console.is_terminal else None
    monitor = BuildProgress(shown)
    with cancel_on_sigint(monitor, console=shown):
        return build_with_progress(network, config, monitor=monitor, **kwargs)

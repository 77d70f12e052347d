"""The ``netdef`` Typer application, its global options and error handling."""

from __future__ import annotations

import logging
import sys
from typing import Annotated

import typer
from rich.console import Console

app = typer.Typer(
    name="netdef",
    help="Build TensorRT engines layer by layer from raw checkpoints; run, inspect and refit them.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console(highlight=False, soft_wrap=True)
err_console = Console(stderr=True, highlight=False)

_state: dict = {"debug": False, "handler": None}

# -v: TensorRT warnings, -vv: info, -vvv: verbose. Without -v only errors are shown.
_TRT_LEVELS = [logging.ERROR, logging.WARNING, logging.INFO, logging.DEBUG]


class _OncePerMessage(logging.Filter):
    """Show each distinct warning once per run (TensorRT repeats itself).

    With ``hold_trt_errors`` (no ``-v``), TensorRT's error lines are held back until the command
    ends, so that those the final error message already quotes are not printed twice.
    """

    def __init__(self, hold_trt_errors: bool = False) -> None:
        super().__init__()
        self.seen: set[str] = set()
        self.hold_trt_errors = hold_trt_errors
        self.held: list[logging.LogRecord] = []

    def filter(self, record: logging.LogRecord) -> bool:
        if self.hold_trt_errors and record.name == "netdef.trt" and record.levelno >= logging.ERROR:
            self.held.append(record)
            return False
        if record.levelno != logging.WARNING:
            return True
        message = record.getMessage()
        if message in self.seen:
            return False
        self.seen.add(message)
        return True


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is when a record arrives (test runners swap it)."""

    @property
    def stream(self):  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


def _release_held_errors(already_shown: str = "") -> None:
    """Print the TensorRT error lines held back, except those ``already_shown`` quotes."""
    handler = _state.get("handler")
    if handler is None:
        return
    for gate in handler.filters:
        if isinstance(gate, _OncePerMessage):
            held, gate.held = gate.held, []
            for record in held:
                if record.getMessage() not in already_shown:
                    handler.emit(record)  # not handle(): the filter would hold it again


@app.callback()
def main(
    verbose: Annotated[
        int, typer.Option("--verbose", "-v", count=True, help="More TensorRT logging (-v, -vv, -vvv).")
    ] = 0,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
) -> None:
    _state["debug"] = debug
    handler = _StderrHandler()
    handler.setFormatter(logging.Formatter("[%(name)s] %(levelname)s: %(message)s"))
    handler.addFilter(_OncePerMessage(hold_trt_errors=verbose == 0))
    _state["handler"] = handler
    trt_logger = logging.getLogger("netdef.trt")
    trt_logger.setLevel(_TRT_LEVELS[min(verbose, 3)])
    root = logging.getLogger("netdef")
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose >= 3 else logging.INFO if verbose else logging.WARNING)


def run_app() -> None:
    """Entry point: run the app; netdef's own errors become one red message, no traceback."""
    from netdef.errors import BuildCancelledError, NetdefError

    try:
        app()  # click handles its own usage errors and exits
    except BuildCancelledError as exc:
        _release_held_errors(str(exc))
        err_console.print("[yellow]cancelled:[/] ", end="")
        err_console.print(str(exc), markup=False, soft_wrap=True)
        sys.exit(130)
    except (NetdefError, ValueError, OSError) as exc:
        _release_held_errors(str(exc))
        if _state["debug"]:
            raise
        err_console.print("[bold red]error:[/] ", end="")
        err_console.print(str(exc), markup=False, soft_wrap=True)
        sys.exit(1)
    except KeyboardInterrupt:
        err_console.print("[red]interrupted[/]")
        sys.exit(130)
    finally:
        _release_held_errors()

"""The ``netdef`` Typer application, its global options and error handling."""

import logging
import sys
import threading
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

app = typer.Typer(
    name="netdef",
    help="Build TensorRT engines layer by layer from raw checkpoints; run, inspect and refit them.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
console = Console(highlight=False, soft_wrap=True, emoji=False)
err_console = Console(stderr=True, highlight=False, emoji=False)

if TYPE_CHECKING:
    from rich.table import Table


def new_table(*columns: str, **options: Any) -> "Table":
    """A rich table, imported only by the commands that print one (``rich.table`` costs 20 ms to import)."""
    from rich.table import Table

    return Table(*columns, **options)


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


def _log_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Python, NumPy and torch warnings go to netdef's log (shown with -vvv), never raw to the terminal."""
    logging.getLogger("netdef.python").debug("%s: %s", category.__name__, message)


def _interrupted(exc: BaseException | None) -> bool:
    """Whether ``exc`` (or what it was raised from) is a KeyboardInterrupt: the CLI framework turns
    Ctrl-C into a silent exit with status 130."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, KeyboardInterrupt):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


def run_app() -> None:
    """Entry point: run the app; netdef's own errors become one red message, no traceback.

    Ctrl-C exits with status 130 and SIGTERM with 143, each after one line, once every
    temporary file has been removed (writes go through :mod:`netdef.fileio`).
    """
    import warnings

    from netdef.errors import BuildCancelledError, NetdefError
    from netdef.fileio import Terminated, install_sigterm_handler

    if threading.current_thread() is threading.main_thread():
        install_sigterm_handler()
    previous_showwarning = warnings.showwarning
    warnings.showwarning = _log_warning
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
    except Terminated:
        err_console.print("[red]terminated[/]")
        sys.exit(143)
    except SystemExit as exc:
        if exc.code == 130 and _interrupted(exc):
            err_console.print("[red]interrupted[/]")
        raise
    finally:
        warnings.showwarning = previous_showwarning
        _release_held_errors()

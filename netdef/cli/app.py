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

_state = {"debug": False}

# -v: TensorRT warnings, -vv: info, -vvv: verbose. Without -v only errors are shown.
_TRT_LEVELS = [logging.ERROR, logging.WARNING, logging.INFO, logging.DEBUG]


class _OncePerMessage(logging.Filter):
    """Show each distinct warning once per run (TensorRT repeats itself)."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno != logging.WARNING:
            return True
        message = record.getMessage()
        if message in self.seen:
            return False
        self.seen.add(message)
        return True


@app.callback()
def main(
    verbose: Annotated[
        int, typer.Option("--verbose", "-v", count=True, help="More TensorRT logging (-v, -vv, -vvv).")
    ] = 0,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
) -> None:
    _state["debug"] = debug
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("[%(name)s] %(levelname)s: %(message)s"))
    handler.addFilter(_OncePerMessage())
    trt_logger = logging.getLogger("netdef.trt")
    trt_logger.setLevel(_TRT_LEVELS[min(verbose, 3)])
    root = logging.getLogger("netdef")
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose >= 3 else logging.INFO if verbose else logging.WARNING)


def run_app() -> None:
    """Entry point: run the app; netdef's own errors become one red message, no traceback."""
    from netdef.errors import NetdefError

    try:
        app()  # click handles its own usage errors and exits
    except (NetdefError, ValueError, FileNotFoundError) as exc:
        if _state["debug"]:
            raise
        err_console.print(f"[bold red]error:[/] {exc}", markup=True, soft_wrap=True)
        sys.exit(1)
    except KeyboardInterrupt:
        err_console.print("[red]interrupted[/]")
        sys.exit(130)

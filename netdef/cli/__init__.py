"""Command-line interface: ``netdef build | info | list | ...``.

Each command module registers its commands on :data:`netdef.cli.app.app`. Command modules keep their
annotations as objects (no ``from __future__ import annotations``): Typer reads every command's
signature at each start, and string annotations would be evaluated one by one (about 40 ms a command).
"""

import sys
from typing import NoReturn

try:
    import netdef.cli.cache_cmds  # noqa: F401  (registers commands)
    import netdef.cli.detect_cmds  # noqa: F401  (registers commands)
    import netdef.cli.inspect_cmds  # noqa: F401  (registers commands)
    import netdef.cli.int8_cmds  # noqa: F401  (registers commands)
    import netdef.cli.reference_cmds  # noqa: F401  (registers commands)
    import netdef.cli.refit_cmds  # noqa: F401  (registers commands)
    import netdef.cli.runtime_cmds  # noqa: F401  (registers commands)
    import netdef.cli.weights_cmds  # noqa: F401  (registers commands)
    from netdef.cli import build_cmds  # noqa: F401  (registers commands)
    from netdef.cli.app import app, run_app
except KeyboardInterrupt:  # Ctrl-C while the command starts: one line and status 130, as at any other stage
    sys.stderr.write("interrupted\n")
    raise SystemExit(130) from None


def main() -> None:
    """The ``netdef`` command: run it, then leave without tearing the interpreter down.

    Once the command is done (its files written and closed), freeing TensorRT's builder and hundreds
    of MB of arrays object by object only delays the exit; the operating system frees them at once.
    Exit handlers still run and the standard streams are flushed first.
    """
    try:
        run_app()
        status: object = 0
    except SystemExit as exc:
        status = exc.code
    _leave(status)


def _leave(status: object) -> NoReturn:
    import atexit
    import os

    if status is None:
        status = 0
    elif not isinstance(status, int):
        sys.stderr.write(f"{status}\n")  # what SystemExit("message") prints
        status = 1
    try:
        atexit._run_exitfuncs()  # logging's shutdown and any other handler registered
        sys.stdout.flush()
        sys.stderr.flush()
    except BaseException:  # a closed pipe, an interrupt: leave the normal way instead
        raise SystemExit(status) from None
    os._exit(status)


__all__ = ["app", "main"]

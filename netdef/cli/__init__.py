"""Command-line interface: ``netdef build | info | list | ...``.

Each command module registers its commands on :data:`netdef.cli.app.app`.
"""

import netdef.cli.detect_cmds  # noqa: F401  (registers commands)
import netdef.cli.inspect_cmds  # noqa: F401  (registers commands)
import netdef.cli.int8_cmds  # noqa: F401  (registers commands)
import netdef.cli.reference_cmds  # noqa: F401  (registers commands)
import netdef.cli.refit_cmds  # noqa: F401  (registers commands)
import netdef.cli.runtime_cmds  # noqa: F401  (registers commands)
import netdef.cli.weights_cmds  # noqa: F401  (registers commands)
from netdef.cli import build_cmds  # noqa: F401  (registers commands)
from netdef.cli.app import app, run_app


def main() -> None:
    run_app()


__all__ = ["app", "main"]

"""Command-line interface: ``netdef build | info | list | ...``.

Each command module registers its commands on :data:`netdef.cli.app.app`.
"""

import sys

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
    run_app()


__all__ = ["app", "main"]

"""Run the ``netdef`` command in the test's process, as the console script does."""

from __future__ import annotations

import sys

from netdef.cli import run_app


def netdef(monkeypatch, capsys, *args) -> tuple[int, str, str]:
    """Run the CLI with ``args``: (exit code, stdout, stderr)."""
    monkeypatch.setattr(sys, "argv", ["netdef", *map(str, args)])
    code = 0
    try:
        run_app()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err

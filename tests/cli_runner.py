"""Run the ``netdef`` command in the test's process, as the console script does."""

from __future__ import annotations

import sys

import pytest

from netdef import backend
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


def assert_clean_failure(code: int, err: str, *fragments: str) -> None:
    """Exit status 1, one ``error:`` message, no traceback, and every fragment in it (line wraps ignored)."""
    assert code == 1, err
    assert err.startswith("error: ") and "Traceback" not in err, err
    flat = " ".join(err.split())  # rich wraps long lines
    for fragment in fragments:
        assert fragment in flat, (fragment, err)


def needs_build() -> None:
    """Skip, with the reason, where the backend cannot build engines."""
    caps = backend.capabilities()
    if not caps.can_build:
        pytest.skip(f"engines cannot be built here: {caps.reason}")

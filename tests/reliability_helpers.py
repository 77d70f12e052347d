"""Helpers for the reliability tests: special files made under a temporary directory only.

Every destructive case works on files under pytest's ``tmp_path``; FIFOs are made with
``os.mkfifo`` there and device nodes with ``os.mknod`` there (root only, skipped otherwise).
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]


def make_fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


def make_null_device(path: Path) -> Path:
    """A character device with /dev/null's numbers (1, 3), made at ``path`` (root only)."""
    return _make_char_device(path, 1, 3)


def make_zero_device(path: Path) -> Path:
    """A character device with /dev/zero's numbers (1, 5), made at ``path`` (root only)."""
    return _make_char_device(path, 1, 5)


def _make_char_device(path: Path, major: int, minor: int) -> Path:
    if os.geteuid() != 0:
        pytest.skip("making a device node needs root (os.mknod); this test runs only as root")
    try:
        os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(major, minor))
    except PermissionError as exc:
        pytest.skip(f"os.mknod refused here ({exc}): device nodes cannot be made in this container")
    return path


def snapshot(path: Path) -> bytes:
    return path.read_bytes()


def leftovers(folder: Path, keep: set[str]) -> list[str]:
    """Names in ``folder`` other than ``keep`` (temporary files a write left behind)."""
    return sorted(p.name for p in folder.iterdir() if p.name not in keep)


def run_python(
    code: str, *, timeout: float = 60, env_extra: dict | None = None, **kwargs
) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter with this worktree first on the path."""
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.update(env_extra or {})
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout, env=env, cwd=REPO, **kwargs
    )


def lenet_tensors() -> dict[str, np.ndarray]:
    from netdef.weights import Checkpoint

    return {k: np.array(v) for k, v in Checkpoint.load(REPO / "weights" / "lenet_digits.safetensors").items()}

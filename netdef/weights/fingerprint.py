"""A checkpoint file's fingerprint: its size and BLAKE2b digest, remembered while the file is unchanged.

An engine records the fingerprint of the checkpoint it was built from; commands that reuse the
recorded path compare it with the file as it is now and refuse a file that has changed.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

ALGORITHM = "blake2b"
_CHUNK = 1 << 22
_MEMO: dict[tuple[str, int, int, int], dict[str, Any]] = {}


def fingerprint(path: str | Path) -> dict[str, Any]:
    """``{"size": bytes, "blake2b": hex digest}`` of the file at ``path``.

    Memoised by resolved path, size, modification time (ns) and inode: an unchanged file is
    read once per process.
    """
    resolved = Path(path).resolve()
    stat = os.stat(resolved)
    key = (str(resolved), stat.st_size, stat.st_mtime_ns, stat.st_ino)
    if key not in _MEMO:
        digest = hashlib.blake2b()
        with open(resolved, "rb") as f:
            while chunk := f.read(_CHUNK):
                digest.update(chunk)
        _MEMO[key] = {"size": stat.st_size, ALGORITHM: digest.hexdigest()}
    return dict(_MEMO[key])


def changed_since(path: str | Path, recorded: Mapping[str, Any] | None) -> str | None:
    """Why the file at ``path`` is not the one ``recorded`` describes (None when it is, or nothing was recorded)."""
    if not recorded:
        return None
    try:
        now = fingerprint(path)
    except OSError as exc:
        return f"{path} cannot be read: {exc.strerror or exc}"
    if now["size"] != recorded.get("size"):
        return (
            f"{path} has changed since the engine was built: "
            f"{now['size']} bytes, the engine recorded {recorded.get('size')}"
        )
    if now[ALGORITHM] != recorded.get(ALGORITHM):
        return f"{path} has changed since the engine was built: its BLAKE2b digest differs from the one recorded"
    return None

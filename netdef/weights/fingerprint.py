"""A checkpoint file's fingerprint: its size and XXH3-128 digest, remembered while the file is unchanged.

An engine records the fingerprint of the checkpoint it was built from; commands that reuse the
recorded path compare it with the file as it is now and refuse a file that has changed. XXH3 (the
``xxhash`` package) hashes a 100 MB checkpoint in about 0.02 s, against 0.17 s for BLAKE2b; it
guards against accidents (an edited or replaced file), not against an adversary. Engines built
before it record a BLAKE2b digest, which is still checked with BLAKE2b.
"""

from __future__ import annotations

import hashlib
import mmap
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import xxhash

ALGORITHM = "xxh3_128"
ALGORITHMS: dict[str, Callable[[], Any]] = {"xxh3_128": xxhash.xxh3_128, "blake2b": hashlib.blake2b}
"""Digest name (its key in a fingerprint) -> hash constructor; the first is what new fingerprints use."""

_MEMO: dict[tuple[str, int, int, int, str], dict[str, Any]] = {}


def fingerprint(path: str | Path, algorithm: str = ALGORITHM) -> dict[str, Any]:
    """``{"size": bytes, algorithm: hex digest}`` of the file at ``path``.

    Memoised by resolved path, size, modification time (ns) and inode: an unchanged file is
    read once per process.
    """
    resolved = Path(path).resolve()
    stat = os.stat(resolved)
    key = (str(resolved), stat.st_size, stat.st_mtime_ns, stat.st_ino, algorithm)
    if key not in _MEMO:
        _MEMO[key] = {"size": stat.st_size, algorithm: _digest(resolved, stat.st_size, ALGORITHMS[algorithm]())}
    return dict(_MEMO[key])


def _digest(path: Path, size: int, digest: Any) -> str:
    with open(path, "rb") as f:
        if size:
            with mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
                digest.update(mapped)  # one call over the mapped file: no copies through Python
    return digest.hexdigest()


def remember(path: str | Path, value: Mapping[str, Any]) -> None:
    """Take ``value`` as the fingerprint of ``path`` as it is now (from a memo kept across processes)."""
    resolved = Path(path).resolve()
    stat = os.stat(resolved)
    for algorithm in ALGORITHMS:
        if algorithm in value:
            _MEMO[(str(resolved), stat.st_size, stat.st_mtime_ns, stat.st_ino, algorithm)] = dict(value)


def recorded_algorithm(recorded: Mapping[str, Any]) -> str | None:
    """The digest a recorded fingerprint holds (the newest known one when several), or None."""
    return next((name for name in ALGORITHMS if name in recorded), None)


def changed_since(path: str | Path, recorded: Mapping[str, Any] | None) -> str | None:
    """Why the file at ``path`` is not the one ``recorded`` describes (None when it is, or nothing was recorded)."""
    if not recorded:
        return None
    algorithm = recorded_algorithm(recorded) or ALGORITHM
    try:
        now = fingerprint(path, algorithm)
    except OSError as exc:
        return f"{path} cannot be read: {exc.strerror or exc}"
    if now["size"] != recorded.get("size"):
        return (
            f"{path} has changed since the engine was built: "
            f"{now['size']} bytes, the engine recorded {recorded.get('size')}"
        )
    if now[algorithm] != recorded.get(algorithm):
        return (
            f"{path} has changed since the engine was built: "
            f"its {algorithm.upper()} digest differs from the one recorded"
        )
    return None

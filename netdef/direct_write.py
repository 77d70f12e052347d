"""Writing a large buffer straight to the disk, past the page cache (Linux ``O_DIRECT``).

An engine's plan (100 MB for ResNet-50) is written once and then made durable with ``fsync``. Through
the page cache that is two passes: a copy of every byte into freshly allocated cache pages, then their
writeback. With ``O_DIRECT`` the disk reads the plan where it already is, and the ``fsync`` has only
the edges and the file's metadata left to do (98 MB: 0.05-0.07 s, against 0.1-0.6 s through the page
cache on the machine of ``benchmarks/results/cli_paths.md``).

``O_DIRECT`` needs the memory address, the file offset and the length of a write to be multiples of
the device's block size. :func:`aligning_padding` says how many bytes to put before the buffer in the
file so that its memory and its place in the file line up; :func:`write_at` then writes the aligned
middle directly and the two unaligned edges through the page cache. Any refusal (a file system
without ``O_DIRECT``, such as tmpfs or a FUSE mount; another platform) falls back to an ordinary
write of the same bytes.
"""

from __future__ import annotations

import contextlib
import os
from typing import IO

import numpy as np

BLOCK = 4096
"""The alignment used: a multiple of every logical block size up to 4 KB."""
MINIMUM = 8 << 20
"""Buffers smaller than this are written through the page cache (the system calls would cost more)."""

_DIRECT = getattr(os, "O_DIRECT", 0)


def available() -> bool:
    """Whether this platform has ``O_DIRECT`` (Linux)."""
    return bool(_DIRECT)


def aligning_padding(data: bytes | memoryview, offset: int) -> int:
    """How many bytes to insert before ``data`` if it is to be written at ``offset`` so that its memory and
    its place in the file share an alignment (0 when it is too small to be written directly)."""
    if not _DIRECT or len(data) < MINIMUM:
        return 0
    return (_address(data) - offset) % BLOCK


def write_at(f: IO[bytes], data: bytes | memoryview, offset: int) -> None:
    """Write ``data`` at ``offset`` of the open file ``f``, its block-aligned middle past the page cache.

    ``f``'s position is left where it was; its buffer is flushed first. The middle goes directly only
    when ``offset`` lines up with ``data``'s memory (see :func:`aligning_padding`)."""
    view = memoryview(data).cast("B")
    f.flush()
    fd = f.fileno()
    start = (-_address(view)) % BLOCK  # the first byte whose address is aligned
    middle = (len(view) - start) // BLOCK * BLOCK
    direct = _DIRECT and len(view) >= MINIMUM and (offset + start) % BLOCK == 0 and middle > 0
    if not (direct and _write_direct(fd, view[start : start + middle], offset + start)):
        start, middle = 0, 0  # everything through the page cache
    _write_all(fd, view[:start], offset)
    _write_all(fd, view[start + middle :], offset + start + middle)


def _write_direct(fd: int, view: memoryview, offset: int) -> bool:
    """Write ``view`` with ``O_DIRECT`` set on ``fd`` for the duration; False when the file system refuses."""
    import fcntl

    flags = fcntl.fcntl(fd, fcntl.F_GETFL)
    try:
        fcntl.fcntl(fd, fcntl.F_SETFL, flags | _DIRECT)
    except OSError:
        return False
    try:
        _write_all(fd, view, offset)
    except OSError as exc:
        import errno

        if exc.errno != errno.EINVAL:  # a full disk or an I/O error is a real failure
            raise
        return False  # EINVAL: the file system does not take this alignment after all
    finally:
        with contextlib.suppress(OSError):
            fcntl.fcntl(fd, fcntl.F_SETFL, flags)
    return True


def _write_all(fd: int, view: memoryview, offset: int) -> None:
    while view:
        written = os.pwrite(fd, view, offset)
        view, offset = view[written:], offset + written


def _address(data: bytes | memoryview) -> int:
    return int(np.frombuffer(data, np.uint8).ctypes.data) if len(data) else 0

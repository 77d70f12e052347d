"""The one way netdef reads and writes files.

Reading: input files must be regular files. A FIFO, a device node, a socket or a directory is
refused with a message saying which, before anything is opened for reading (so a FIFO never
blocks and ``/dev/zero`` never fills memory), and :func:`read_regular_file` reads no more than
the file's own size.

Writing (:func:`atomic_write`, :func:`write_bytes`, :func:`write_text`, :func:`copy_file`):

- an output that is the same file as one of the command's inputs is refused (``os.path.samefile``,
  so hard links and symlinks count); commands call :func:`check_output` before any work starts;
- only a regular file is ever replaced: an existing FIFO, device node, socket or directory is
  refused;
- a **symlink is followed**: the file it points to is replaced (atomically, in that file's own
  folder) and the link itself is kept; a link to an input or to a non-regular file is refused
  like the file itself, and a dangling link creates the file it names;
- the data goes to a temporary file ``.<name>.<random>.tmp`` in the target's folder, is fsynced,
  then renamed over the target, so the target is either its old bytes or the complete new ones;
- the temporary file is removed on any error, on Ctrl-C and on SIGTERM (turned into
  :class:`Terminated` while a write is in progress, when no other handler is installed);
- a replaced file keeps its permission bits; a new file gets the mode ``open()`` would give it.

:func:`copy_file` moves the bytes from file to file inside the kernel where it can (a reflink where
the file system shares blocks, else ``copy_file_range``), not through Python buffers.
"""

from __future__ import annotations

import contextlib
import mmap
import os
import shutil
import signal
import stat
import tempfile
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

from netdef.errors import InputFileError, NetdefError, OutputPathError

PathLike = str | os.PathLike


class Terminated(BaseException):
    """SIGTERM arrived; raised like KeyboardInterrupt so that ``finally`` blocks clean up."""


def describe_kind(mode: int) -> str:
    """``"a FIFO (named pipe)"``, ``"a directory"``, ... for a non-regular ``st_mode``."""
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


# ---------------------------------------------------------------------------------------------- reading


def require_regular_file(path: PathLike, what: str = "file", error: type[NetdefError] = InputFileError) -> Path:
    """``path`` as a Path, or ``error`` saying it is missing or is a FIFO, device, socket or directory."""
    path = Path(path)
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise error(f"{path}: no such {what}") from None
    except OSError as exc:
        raise error(f"{path}: cannot read the {what}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(mode):
        raise error(f"{path}: is {describe_kind(mode)}, not a regular file; a {what} must be a regular file")
    return path


def open_regular_file(path: PathLike, what: str = "file", error: type[NetdefError] = InputFileError) -> IO[bytes]:
    """Open a regular file for reading in binary mode; anything else is refused without blocking."""
    path = require_regular_file(path, what, error)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise error(f"{path}: cannot open the {what}: {exc.strerror or exc}") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):  # replaced between the stat and the open
        os.close(fd)
        raise error(f"{path}: is {describe_kind(mode)}, not a regular file; a {what} must be a regular file")
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def map_read_only(f: IO[bytes]) -> mmap.mmap:
    """Map the open file ``f`` read-only (an empty file cannot be mapped: the caller checks its size).

    On Linux its pages are mapped in ahead (``MAP_POPULATE``): the checkpoint readers touch every byte
    anyway, and one populating call costs less than a page fault for every 4 KB (230 MB of ``.wts``)."""
    populate = getattr(mmap, "MAP_POPULATE", 0)
    if populate:
        with contextlib.suppress(OSError):
            return mmap.mmap(f.fileno(), 0, flags=mmap.MAP_SHARED | populate, prot=mmap.PROT_READ)
    return mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)


def read_regular_file(
    path: PathLike, what: str = "file", error: type[NetdefError] = InputFileError, limit: int | None = None
) -> bytes:
    """The bytes of a regular file, reading no more than its size (and refusing one above ``limit``)."""
    with open_regular_file(path, what, error) as f:
        size = os.fstat(f.fileno()).st_size
        if limit is not None and size > limit:
            raise error(f"{path}: {size} bytes, more than the {limit} a {what} may have")
        try:
            return f.read(size)
        except OSError as exc:
            raise error(f"{path}: cannot read the {what}: {exc.strerror or exc}") from None


# ---------------------------------------------------------------------------------------------- writing


def check_output(path: PathLike, inputs: Iterable[PathLike | None] = ()) -> Path:
    """Refuse ``path`` as an output when it is one of ``inputs`` or an existing non-regular file.

    Returns the path to write (symlinks resolved). Call it before any work starts; the writers
    below check again just before they write.
    """
    path = Path(path)
    target = Path(os.path.realpath(path))
    try:
        mode = os.stat(target).st_mode
    except FileNotFoundError:
        mode = None
    except OSError as exc:
        raise OutputPathError(f"{path}: cannot write here: {exc.strerror or exc}") from None
    if mode is not None and not stat.S_ISREG(mode):
        via = f" (a symlink to {target})" if target != path.absolute() else ""
        raise OutputPathError(
            f"{path}{via}: is {describe_kind(mode)}; netdef only replaces regular files, choose another output"
        )
    if mode is not None:
        for source in inputs:
            if source is not None and _same_file(target, source):
                raise OutputPathError(
                    f"{path}: is the same file as the input {source}; writing it would destroy the input, "
                    "choose another output"
                )
    return target


def _same_file(a: PathLike, b: PathLike) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


@contextlib.contextmanager
def atomic_write(path: PathLike, inputs: Iterable[PathLike | None] = ()) -> Iterator[IO[bytes]]:
    """A binary file whose content replaces ``path`` atomically when the block ends without error."""
    inputs = list(inputs)
    target = check_output(path, inputs)
    target.parent.mkdir(parents=True, exist_ok=True)
    with terminate_as_exception():
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        try:
            os.fchmod(fd, _mode_for(target))
            with os.fdopen(fd, "wb") as f:
                yield f
                f.flush()
                os.fsync(f.fileno())
            check_output(path, inputs)
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
    _fsync_folder(target.parent)


def write_bytes(path: PathLike, data: bytes | memoryview, inputs: Iterable[PathLike | None] = ()) -> Path:
    """Replace ``path`` with ``data`` atomically (see the module docstring); returns ``path``."""
    with atomic_write(path, inputs) as f:
        f.write(data)
    return Path(path)


def write_text(path: PathLike, text: str, inputs: Iterable[PathLike | None] = ()) -> Path:
    """Replace ``path`` with ``text`` (UTF-8) atomically; returns ``path``."""
    return write_bytes(path, text.encode("utf-8"), inputs)


def copy_file(source: PathLike, target: PathLike, inputs: Iterable[PathLike | None] = ()) -> Path:
    """Replace ``target`` with a copy of the regular file ``source``, atomically like :func:`atomic_write`
    (``source`` counts as an input); returns ``target``."""
    with open_regular_file(source) as src, atomic_write(target, [*inputs, source]) as dst:
        size = os.fstat(src.fileno()).st_size
        _copy_contents(src.fileno(), dst.fileno())
        copied = os.fstat(dst.fileno()).st_size
        if copied != size:
            raise InputFileError(f"{source}: changed while it was copied to {target} ({size} bytes, {copied} copied)")
    return Path(target)


_FICLONE = 0x40049409  # linux/fs.h: share the source's blocks (btrfs, XFS); copy nothing


def _copy_contents(src: int, dst: int) -> None:
    """Copy the file ``src`` into the empty file ``dst``: a reflink, else ``copy_file_range``, else by hand."""
    try:
        import fcntl

        fcntl.ioctl(dst, _FICLONE, src)
    except (ImportError, OSError):  # not Linux, or a file system without shared blocks (ext4, tmpfs)
        _copy_range(src, dst)


_CHUNK = 8 << 20


def _copy_range(src: int, dst: int) -> None:
    """Copy from the current offsets to the end of ``src``: in the kernel where it can, the rest by hand."""
    copy_range = getattr(os, "copy_file_range", None)  # Linux only
    offset = os.lseek(dst, 0, os.SEEK_CUR)
    with contextlib.suppress(OSError):  # not between these file systems (or kernels)
        while copy_range is not None and (copied := copy_range(src, dst, _CHUNK)):
            _start_writeback(dst, offset, copied)
            offset += copied
    with open(src, "rb", closefd=False) as reader, open(dst, "wb", closefd=False) as writer:
        shutil.copyfileobj(reader, writer, _CHUNK)  # whatever the kernel did not copy: nothing, or all


def _start_writeback(fd: int, offset: int, length: int) -> None:
    """Start writing a chunk just copied to disk while the next one is copied, so that the fsync after the
    copy has little left to wait for (a 98 MB copy and its fsync: 0.07 s instead of 0.105 s on ext4). On Linux
    ``POSIX_FADV_DONTNEED`` starts the writeback of dirty pages; chunks already on disk leave the page cache."""
    with contextlib.suppress(AttributeError, OSError):  # a hint: no posix_fadvise (macOS), or refused
        os.posix_fadvise(fd, offset, length, os.POSIX_FADV_DONTNEED)


def _mode_for(target: Path) -> int:
    """The existing file's permission bits, else what ``open()`` would give a new file."""
    try:
        return stat.S_IMODE(os.stat(target).st_mode)
    except FileNotFoundError:
        mask = os.umask(0)
        os.umask(mask)
        return 0o666 & ~mask


def _fsync_folder(folder: Path) -> None:
    """Make the rename durable (best effort: not every file system allows it)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _raise_terminated(signum, frame) -> None:
    raise Terminated(f"signal {signum}")


@contextlib.contextmanager
def terminate_as_exception() -> Iterator[None]:
    """Within the block, SIGTERM raises :class:`Terminated` (main thread, default handler only)."""
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGTERM) != signal.SIG_DFL:
        yield
        return
    signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def install_sigterm_handler() -> None:
    """SIGTERM raises :class:`Terminated` for the rest of the process (the ``netdef`` command does this)."""
    signal.signal(signal.SIGTERM, _raise_terminated)

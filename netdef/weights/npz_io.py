"""NumPy ``.npz`` archives and ``.npy`` files, read without pickle and without trusting their headers.

``np.load`` lets a damaged file escape as ``zlib.error``, ``TokenError``, ``EOFError`` or a
``MemoryError`` from a declared shape larger than the data. This reader parses the ``.npy``
header itself (``ast.literal_eval``, as NumPy does), checks the declared dtype and shape against
the bytes the member really holds *before* reading them, and turns every failure into one error
of the caller's class naming the file and the member, all members' problems listed at once.
Object arrays (which need pickle) are refused.
"""

from __future__ import annotations

import ast
import lzma
import math
import struct
import zipfile
import zlib
from pathlib import Path
from typing import Protocol

import numpy as np

from netdef.errors import CheckpointError, NetdefError
from netdef.weights.formats import register_reader

_MAGIC = b"\x93NUMPY"
_MAX_HEADER = 1 << 20
_MAX_DIMS = 32
_MAX_LISTED = 20
_ARCHIVE_ERRORS = (
    zipfile.BadZipFile,
    zlib.error,
    lzma.LZMAError,
    EOFError,
    OSError,
    ValueError,
    NotImplementedError,
    RuntimeError,
    struct.error,
    OverflowError,
    UnicodeDecodeError,
    IndexError,  # zipfile's parser of a member's extra field
    KeyError,
)


class _Stream(Protocol):
    """A binary file or zip member."""

    def read(self, size: int = -1, /) -> bytes: ...


class _MemberError(Exception):
    """One member of an archive (or a .npy file) cannot be read; the message says why."""


@register_reader(".npz")
def read_npz(path: Path) -> dict[str, np.ndarray]:
    """A checkpoint's arrays, frozen (read-only, and nobody else holds them): a worker thread may read them
    while a network is defined."""
    arrays = read_npz_arrays(path, CheckpointError)
    for array in arrays.values():
        array.flags.writeable = False
    return arrays


def read_npz_arrays(path: Path | str, error: type[NetdefError] = CheckpointError) -> dict[str, np.ndarray]:
    """Every array of the ``.npz`` archive ``path`` (name without ``.npy``), or one ``error``."""
    path = Path(path)
    try:
        archive = zipfile.ZipFile(path)
    except _ARCHIVE_ERRORS as exc:
        raise error(f"{path}: not a readable .npz archive: {_reason(exc)}") from None
    arrays: dict[str, np.ndarray] = {}
    problems = []
    with archive:
        try:
            members = [info for info in archive.infolist() if not info.is_dir()]
        except _ARCHIVE_ERRORS as exc:
            raise error(f"{path}: not a readable .npz archive: {_reason(exc)}") from None
        for info in members:
            name = info.filename.removesuffix(".npy")
            if name in arrays:
                problems.append(f"member {name!r}: appears twice in the archive")
                continue
            try:
                with archive.open(info) as member:
                    arrays[name] = _read_npy(member, info.file_size)
            except _MemberError as exc:
                problems.append(f"member {name!r}: {exc}")
            except _ARCHIVE_ERRORS as exc:
                problems.append(f"member {name!r}: damaged ({_reason(exc)})")
    if problems:
        raise error(f"{path}: not a readable .npz archive ({len(problems)} problem(s))", problems, limit=_MAX_LISTED)
    return arrays


def read_npy_file(path: Path | str, error: type[NetdefError] = CheckpointError) -> np.ndarray:
    """The array of the ``.npy`` file ``path`` (a regular file), or one ``error``."""
    from netdef.fileio import open_regular_file

    path = Path(path)
    with open_regular_file(path, ".npy file", error) as f:
        size = path.stat().st_size
        try:
            return _read_npy(f, size)
        except _MemberError as exc:
            raise error(f"{path}: not a readable .npy file: {exc}") from None
        except _ARCHIVE_ERRORS as exc:
            raise error(f"{path}: not a readable .npy file: {_reason(exc)}") from None


def _reason(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _read_exactly(stream: _Stream, count: int, what: str) -> bytes:
    data = stream.read(count)
    if len(data) != count:
        raise _MemberError(f"truncated: {what} needs {count} bytes, {len(data)} are there")
    return data


def _read_into(stream: _Stream, target: np.ndarray, what: str) -> None:
    """Fill ``target`` (bytes) from ``stream``, 1 MiB at a time (no second copy of the whole array)."""
    view, got = target.data.cast("B"), 0
    while got < len(view):
        chunk = stream.read(min(len(view) - got, 1 << 20))
        if not chunk:
            raise _MemberError(f"truncated: {what} needs {len(view)} bytes, {got} are there")
        view[got : got + len(chunk)] = chunk
        got += len(chunk)


def _read_npy(stream: _Stream, available: int) -> np.ndarray:
    """Parse one ``.npy`` stream of ``available`` bytes; the data is read only once its size is checked."""
    prefix = _read_exactly(stream, 8, "the .npy preamble")
    if prefix[:6] != _MAGIC:
        raise _MemberError(f"not a .npy array (starts with {prefix[:6]!r})")
    version = (prefix[6], prefix[7])
    if version == (1, 0):
        (header_len,) = struct.unpack("<H", _read_exactly(stream, 2, "the header length"))
        used = 10
    elif version in ((2, 0), (3, 0)):
        (header_len,) = struct.unpack("<I", _read_exactly(stream, 4, "the header length"))
        used = 12
    else:
        raise _MemberError(f".npy format version {version[0]}.{version[1]} is not one NumPy writes")
    if header_len > min(_MAX_HEADER, available - used):
        raise _MemberError(f"header length {header_len} exceeds the {available - used} bytes that follow")
    raw = _read_exactly(stream, header_len, "the header")
    dtype, shape, fortran = _parse_header(raw, "utf-8" if version == (3, 0) else "latin-1")
    count = math.prod(shape)
    nbytes = count * dtype.itemsize
    data_bytes = available - used - header_len
    if nbytes != data_bytes:
        raise _MemberError(
            f"header declares {dtype} of shape {shape} ({count} values, {nbytes} bytes), "
            f"the data holds {data_bytes} bytes"
        )
    array = np.empty(count, dtype)
    _read_into(stream, array.view(np.uint8), f"{dtype} of shape {shape}")
    stream.read(1)  # reaching the end makes zipfile check the member's CRC
    return array.reshape(shape[::-1]).transpose() if fortran else array.reshape(shape)


def _parse_header(raw: bytes, encoding: str) -> tuple[np.dtype, tuple[int, ...], bool]:
    try:
        header = ast.literal_eval(raw.decode(encoding))
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError, UnicodeDecodeError) as exc:
        raise _MemberError(f"corrupt .npy header ({type(exc).__name__})") from None
    if not isinstance(header, dict) or set(header) != {"descr", "fortran_order", "shape"}:
        raise _MemberError("corrupt .npy header: expected the keys descr, fortran_order and shape")
    shape, fortran = header["shape"], header["fortran_order"]
    if not isinstance(shape, tuple) or not all(
        isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
    ):
        raise _MemberError(f"corrupt .npy header: shape {str(shape)[:60]} is not a tuple of non-negative integers")
    if len(shape) > _MAX_DIMS:
        raise _MemberError(f"{len(shape)} dimensions, at most {_MAX_DIMS} are supported")
    if not isinstance(fortran, bool):
        raise _MemberError(f"corrupt .npy header: fortran_order {str(fortran)[:20]} is not True or False")
    try:
        dtype = np.lib.format.descr_to_dtype(header["descr"])
    except (TypeError, ValueError, KeyError, IndexError, SyntaxError, RecursionError, MemoryError) as exc:
        raise _MemberError(f"corrupt .npy header: dtype {str(header['descr'])[:60]} ({type(exc).__name__})") from None
    if dtype.hasobject:
        raise _MemberError("an object array, which cannot be read without pickle (netdef never unpickles .npz files)")
    if dtype.fields is not None or dtype.subdtype is not None or dtype.itemsize == 0:
        raise _MemberError(f"dtype {dtype} is not a plain array dtype")
    return dtype, shape, fortran

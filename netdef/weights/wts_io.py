"""tensorrtx ``.wts`` files: a text format of flat float32 tensors, one per line.

Layout (as tensorrtx's ``gen_wts.py`` writes it)::

    2
    conv1.weight 3  3f800000 40000000 40400000
    conv1.bias 1  3dcccccd

The first line is the tensor count; each further line is ``name count`` followed by ``count``
words of 8 hex digits, each the big-endian bytes of one float32. There are no shapes: the
architectures reshape the flat tensors (see ``Network.param``).

Reading is vectorised: a line in the canonical layout is checked with NumPy and decoded by one
``binascii.unhexlify`` call; other whitespace (tabs, runs of spaces, CRLF, blank lines) takes a
slower but still loop-free path. Every problem found is reported at once, by line number.
"""

from __future__ import annotations

import binascii
import contextlib
import mmap
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

from netdef.errors import CheckpointError
from netdef.fileio import atomic_write, map_read_only
from netdef.weights.formats import register_reader

_WHITESPACE = b" \t\r\f\v"
_HEAD = re.compile(rb"[ \t\r\f\v]*(\S+)(?:[ \t\r\f\v]+(\S+))?")
_MAX_LISTED = 20
_HEX_DIGITS = np.zeros(256, bool)
_HEX_DIGITS[np.frombuffer(b"0123456789abcdefABCDEF", np.uint8)] = True


@register_reader(".wts")
def read_wts(path: Path | str) -> dict[str, np.ndarray]:
    """Read a tensorrtx ``.wts`` file into ``{name: flat float32 array}`` (bit-exact)."""
    path = Path(path)
    data = _map(path)
    try:
        return _read_tensors(path, data)
    finally:  # the arrays are decoded copies: the 2.3 bytes of text per byte of weights need not stay mapped
        if isinstance(data, mmap.mmap):
            with contextlib.suppress(BufferError):
                data.close()


def _read_tensors(path: Path, data: bytes | mmap.mmap) -> dict[str, np.ndarray]:
    problems: list[str] = []
    tensors: dict[str, np.ndarray] = {}
    first_line: dict[str, int] = {}
    declared: int | None = None
    header_line = 0
    for number, start, end in _lines(data):
        head = _HEAD.match(data, start, end)
        if head is None:  # blank line
            continue
        if declared is None:
            header_line = number
            declared = _parse_header(data[start:end], number, problems)
            continue
        name = head.group(1).decode("utf-8", "replace")
        if name in first_line:
            problems.append(f"line {number}: tensor {name!r} repeats line {first_line[name]}")
        first_line.setdefault(name, number)
        array = _parse_values(data, head, end, number, name, problems)
        if array is not None:
            array.flags.writeable = False  # the reader's own array, frozen: a worker thread may read it meanwhile
            tensors[name] = array
    if declared is None:
        problems.append("line 1: empty file; expected the tensor count on the first line")
    elif declared >= 0 and declared != len(first_line):
        problems.insert(
            0,
            f"line {header_line}: header declares {declared} tensor(s), the file has {len(first_line)} tensor line(s)",
        )
    if problems:
        raise _error(path, problems)
    return tensors


def write_wts(tensors: Mapping[str, np.ndarray], path: Path | str, inputs: Iterable[Path | str | None] = ()) -> None:
    """Write ``tensors`` in exactly the layout of tensorrtx's ``gen_wts.py`` (float32 only).

    Float16/bfloat16 and integer tensors are widened to float32 when that is exact (float64 is
    rounded, as ``gen_wts.py`` does); names with whitespace and integers float32 cannot hold
    are refused, all problems at once.
    """
    problems = []
    arrays = {}
    for name, array in tensors.items():
        array = np.asarray(array)
        if not name or any(c.isspace() for c in name):
            problems.append(f"tensor {name!r}: a .wts name cannot be empty or contain whitespace")
            continue
        try:
            arrays[name] = _as_float32(array, name)
        except ValueError as exc:
            problems.append(str(exc))
    if problems:
        raise _error(Path(path), problems, verb="cannot write")
    with atomic_write(path, inputs) as f:
        f.write(f"{len(arrays)}\n".encode())
        for name, values in arrays.items():
            f.write(f"{name} {values.size} ".encode())
            f.write(_hex_words(values))
            f.write(b"\n")


# ---------------------------------------------------------------------------- reading


def _map(path: Path) -> bytes | mmap.mmap:
    """The file's bytes, memory-mapped (no copy of a file that can be hundreds of MB)."""
    with open(path, "rb") as f:
        if os.fstat(f.fileno()).st_size == 0:
            return b""
        return map_read_only(f)


def _lines(data: bytes | mmap.mmap):
    """(1-based line number, start, end) of every line, without the newline."""
    start, number = 0, 1
    while start < len(data):
        end = data.find(b"\n", start)
        if end < 0:
            end = len(data)
        yield number, start, end
        start, number = end + 1, number + 1


def _parse_header(line: bytes, number: int, problems: list[str]) -> int:
    text = line.strip().decode("utf-8", "replace")
    if not _is_count(text):
        shown = text if len(text) <= 60 else text[:57] + "..."
        problems.append(f"line {number}: expected the tensor count (a non-negative integer), got {shown!r}")
        return -1
    return int(text)


def _is_count(text: str) -> bool:
    return text.isascii() and text.isdigit()


def _parse_values(
    data: bytes | mmap.mmap, head: re.Match[bytes], end: int, number: int, name: str, problems: list[str]
) -> np.ndarray | None:
    where = f"line {number}: tensor {name!r}"
    if head.group(2) is None:
        problems.append(f"{where}: truncated line, expected 'name count hex...' and found only the name")
        return None
    count_text = head.group(2).decode("utf-8", "replace")
    if not _is_count(count_text):
        problems.append(f"{where}: value count {count_text!r} is not a non-negative integer")
        return None
    count = int(count_text)
    first, last = head.end(), end
    while first < last and data[first] in _WHITESPACE:
        first += 1
    while last > first and data[last - 1] in _WHITESPACE:
        last -= 1
    fast = _decode_canonical(data, first, last, count)
    if fast is not None:
        return fast
    return _decode_tolerant(data[first:last].decode("latin-1"), count, where, problems)


def _decode_canonical(data: bytes | mmap.mmap, first: int, last: int, count: int) -> np.ndarray | None:
    """Words of exactly 8 hex digits separated by single spaces: decoded with NumPy, or None."""
    if count == 0:
        return np.zeros(0, np.float32) if first == last else None
    if last - first != 9 * count - 1:
        return None
    layout = np.frombuffer(data, np.uint8, count=last - first, offset=first)
    if not (layout[8::9] == ord(" ")).all():
        return None
    words = np.ndarray((count,), dtype="<u8", buffer=data, offset=first, strides=(9,))
    try:
        raw = binascii.unhexlify(words.tobytes())
    except binascii.Error:
        return None  # the tolerant path names the bad words
    return np.frombuffer(raw, ">f4").astype(np.float32)


def _decode_tolerant(text: str, count: int, where: str, problems: list[str]) -> np.ndarray | None:
    """Any whitespace between words; every word checked, every problem recorded."""
    words = text.split()
    found = len(words)
    if found != count:
        hint = " (truncated line?)" if found < count else ""
        problems.append(f"{where}: declares {count} value(s), the line has {found} hex word(s){hint}")
        return None
    lengths = np.fromiter(map(len, words), dtype=np.int64, count=found)
    wrong = np.flatnonzero(lengths != 8)
    if wrong.size:
        problems.append(f"{where}: {wrong.size} word(s) are not 8 hex digits: {_show_words(words, wrong)}")
        return None
    joined = "".join(words)
    digits = _HEX_DIGITS[np.frombuffer(joined.encode("latin-1"), np.uint8)]
    if not digits.all():
        bad = np.unique(np.flatnonzero(~digits) // 8)
        problems.append(f"{where}: {bad.size} word(s) are not hexadecimal: {_show_words(words, bad)}")
        return None
    return np.frombuffer(bytes.fromhex(joined), ">f4").astype(np.float32)


def _show_words(words: list[str], indices: np.ndarray) -> str:
    shown = ", ".join(f"word {i + 1} {words[i][:16]!r}" for i in indices[:5])
    return shown + (f" and {indices.size - 5} more" if indices.size > 5 else "")


def _error(path: Path, problems: list[str], verb: str = "not a valid") -> CheckpointError:
    what = "tensorrtx .wts file" if verb == "not a valid" else "it as a tensorrtx .wts file"
    return CheckpointError(f"{path}: {verb} {what} ({len(problems)} problem(s))", problems, limit=_MAX_LISTED)


# ---------------------------------------------------------------------------- writing


def _as_float32(array: np.ndarray, name: str) -> np.ndarray:
    if array.dtype == np.float32:
        return array.reshape(-1)
    if array.dtype.kind not in "biuf" and array.dtype.name != "bfloat16":
        raise ValueError(f"tensor {name!r}: dtype {array.dtype} cannot be stored as float32")
    widened = array.astype(np.float32).reshape(-1)
    if array.dtype.kind in "biu" and not np.array_equal(widened.astype(array.dtype), array.reshape(-1)):
        raise ValueError(f"tensor {name!r}: {array.dtype} values beyond float32's exact integer range")
    return widened


def _hex_words(values: np.ndarray) -> bytes:
    """`` xxxxxxxx`` per value: the big-endian float32 bytes in lowercase hex, each after a space."""
    digits = np.frombuffer(values.astype(">f4").tobytes().hex().encode(), np.uint8).reshape(-1, 8)
    words = np.empty((values.size, 9), np.uint8)
    words[:, 0] = ord(" ")
    words[:, 1:] = digits
    return words.tobytes()

"""``.safetensors`` read zero-copy: the file is memory-mapped and every tensor is a view of it.

(``safetensors.numpy.load_file`` copies every tensor; for a large checkpoint that doubles the
memory and the time. The format is simple enough to map directly: an 8-byte little-endian
header length, a JSON header ``{name: {dtype, shape, data_offsets}}``, then the raw data.)
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from netdef import dtypes
from netdef.errors import CheckpointError
from netdef.fileio import atomic_write, map_read_only
from netdef.weights.formats import register_reader

_HEADER_LIMIT = 100 * 1024 * 1024
_MAX_DIMS = 32


@register_reader(".safetensors")
def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    with open(path, "rb") as f:
        size = path.stat().st_size
        if size < 8:
            raise CheckpointError(f"{path}: too short to be a safetensors file ({size} bytes)")
        buffer = map_read_only(f)
    (header_len,) = struct.unpack("<Q", buffer[:8])
    if header_len > min(size - 8, _HEADER_LIMIT):
        raise CheckpointError(f"{path}: corrupt safetensors header length {header_len} (file has {size} bytes)")
    try:
        header = json.loads(bytes(buffer[8 : 8 + header_len]))
    except RecursionError:
        raise CheckpointError(f"{path}: corrupt safetensors header: JSON nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
        raise CheckpointError(f"{path}: corrupt safetensors header: {exc}") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{path}: corrupt safetensors header: a JSON {type(header).__name__}, not an object")
    header.pop("__metadata__", None)
    data_start = 8 + header_len
    tensors, problems = {}, []
    for name, info in header.items():
        try:
            dtype, shape, begin = _entry(name, info, size - data_start)
        except CheckpointError as exc:
            problems.append(str(exc))
            continue
        count = math.prod(shape)
        tensors[name] = np.frombuffer(buffer, dtype=dtype, count=count, offset=data_start + begin).reshape(shape)
    if problems:
        raise CheckpointError(f"{path}: corrupt safetensors header", problems)
    return tensors


def _entry(name: str, info: object, data_bytes: int) -> tuple[np.dtype, tuple[int, ...], int]:
    """The dtype, shape and data offset of header entry ``name``, checked against the file."""
    if not isinstance(info, dict) or not {"dtype", "shape", "data_offsets"} <= info.keys():
        raise CheckpointError(f"tensor {name!r}: entry {_shown(info)} lacks dtype, shape or data_offsets")
    shape, offsets = info["shape"], info["data_offsets"]

    def naturals(values: Any, n: int | None = None) -> bool:
        ok = isinstance(values, list) and (n is None or len(values) == n)
        return ok and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in values)

    if not naturals(shape):
        raise CheckpointError(f"tensor {name!r}: shape {_shown(shape)} is not a list of non-negative integers")
    if len(shape) > _MAX_DIMS:
        raise CheckpointError(f"tensor {name!r}: {len(shape)} dimensions, at most {_MAX_DIMS} are supported")
    if math.prod(d for d in shape if d) >= 2**63:  # NumPy's limit, even for an empty array
        raise CheckpointError(f"tensor {name!r}: shape {_shown(shape)} has more elements than an array can hold")
    if not naturals(offsets, 2) or offsets[0] > offsets[1]:
        raise CheckpointError(f"tensor {name!r}: data_offsets {_shown(offsets)} are not [begin, end] with begin <= end")
    if not isinstance(info["dtype"], str):
        raise CheckpointError(f"tensor {name!r}: dtype {_shown(info['dtype'])} is not a string")
    dtype = dtypes.from_safetensors(info["dtype"])
    if dtype is None:
        raise CheckpointError(f"tensor {name!r}: unsupported safetensors dtype {_shown(info['dtype'])}")
    begin, end = offsets
    count = math.prod(shape)  # Python ints: no wrap-around
    expected = count * dtype.itemsize
    if end - begin != expected or end > data_bytes:
        raise CheckpointError(
            f"tensor {name!r} of shape {tuple(shape)} {info['dtype']} needs {expected} bytes, "
            f"the header gives {end - begin} at offset {begin} ({count} values; the file has {data_bytes} data bytes)"
        )
    return dtype, tuple(shape), begin


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def write_safetensors(
    tensors: Mapping[str, np.ndarray],
    path: Path | str,
    metadata: dict[str, str] | None = None,
    inputs: Iterable[Path | str | None] = (),
) -> None:
    """Write ``tensors`` as ``.safetensors`` (any dtype netdef reads, bfloat16 and float8 included),
    atomically and never over one of ``inputs`` (:mod:`netdef.fileio`)."""
    header: dict[str, object] = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    offset = 0
    arrays = []
    for name, array in tensors.items():
        array = np.asarray(array, order="C")  # (np.ascontiguousarray would store a 0-d array as shape [1])
        code = dtypes.safetensors_code(array.dtype)
        if code is None:
            raise CheckpointError(f"tensor {name!r}: dtype {array.dtype} cannot be stored in safetensors")
        header[name] = {
            "dtype": code,
            "shape": list(array.shape),
            "data_offsets": [offset, offset + array.nbytes],
        }
        offset += array.nbytes
        arrays.append(array)
    encoded = json.dumps(header, separators=(",", ":")).encode()
    encoded += b" " * (-len(encoded) % 8)  # align the data to 8 bytes
    with atomic_write(path, inputs) as f:
        f.write(struct.pack("<Q", len(encoded)))
        f.write(encoded)
        for array in arrays:
            f.write(array.reshape(-1).view(np.uint8).data)

"""``.safetensors`` read zero-copy: the file is memory-mapped and every tensor is a view of it.

(``safetensors.numpy.load_file`` copies every tensor; for a large checkpoint that doubles the
memory and the time. The format is simple enough to map directly: an 8-byte little-endian
header length, a JSON header ``{name: {dtype, shape, data_offsets}}``, then the raw data.)
"""

from __future__ import annotations

import json
import mmap
import struct
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from netdef.errors import CheckpointError
from netdef.weights.checkpoint import register_reader
from netdef.weights.dtypes import numpy_dtype_for_safetensors, safetensors_dtype_name

_HEADER_LIMIT = 100 * 1024 * 1024


@register_reader(".safetensors")
def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    with open(path, "rb") as f:
        size = path.stat().st_size
        if size < 8:
            raise CheckpointError(f"{path}: too short to be a safetensors file ({size} bytes)")
        buffer = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    (header_len,) = struct.unpack("<Q", buffer[:8])
    if header_len > min(size - 8, _HEADER_LIMIT):
        raise CheckpointError(f"{path}: corrupt safetensors header length {header_len} (file has {size} bytes)")
    try:
        header = json.loads(bytes(buffer[8 : 8 + header_len]))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{path}: corrupt safetensors header: {exc}") from None
    header.pop("__metadata__", None)
    data_start = 8 + header_len
    tensors = {}
    for name, info in header.items():
        dtype = numpy_dtype_for_safetensors(info["dtype"], f"{path}: tensor {name!r}")
        shape = tuple(info["shape"])
        begin, end = info["data_offsets"]
        expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        if end - begin != expected or data_start + end > size:
            raise CheckpointError(
                f"{path}: tensor {name!r} of shape {shape} {info['dtype']} needs {expected} bytes, "
                f"the header gives {end - begin} at offset {begin} (file has {size - data_start} data bytes)"
            )
        count = expected // dtype.itemsize
        tensors[name] = np.frombuffer(buffer, dtype=dtype, count=count, offset=data_start + begin).reshape(shape)
    return tensors


def write_safetensors(
    tensors: Mapping[str, np.ndarray], path: Path | str, metadata: dict[str, str] | None = None
) -> None:
    """Write ``tensors`` as ``.safetensors`` (any dtype netdef reads, bfloat16 and float8 included)."""
    header: dict[str, object] = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    offset = 0
    arrays = []
    for name, array in tensors.items():
        array = np.ascontiguousarray(array)
        header[name] = {
            "dtype": safetensors_dtype_name(array.dtype, name),
            "shape": list(array.shape),
            "data_offsets": [offset, offset + array.nbytes],
        }
        offset += array.nbytes
        arrays.append(array)
    encoded = json.dumps(header, separators=(",", ":")).encode()
    encoded += b" " * (-len(encoded) % 8)  # align the data to 8 bytes
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(encoded)))
        f.write(encoded)
        for array in arrays:
            f.write(memoryview(array.reshape(-1).view(np.uint8)))

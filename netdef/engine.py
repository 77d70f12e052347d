"""Engine files: a serialized TensorRT plan with the metadata needed to use it safely.

Layout (all integers little-endian)::

    offset  size  field
    0       8     magic b"NETDEF\\x89\\n"
    8       4     format version (uint32)
    12      4     metadata length M (uint32)
    16      32    SHA-256 of the metadata bytes
    48      M     metadata, UTF-8 JSON (includes the plan's length and SHA-256)
    48+M    ...   the plan, exactly as TensorRT serialized it

Loading verifies magic, version, both hashes and the plan's length before anything else, so
a truncated, corrupted or foreign file is refused with a message saying which.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from netdef.errors import EngineFileError

MAGIC = b"NETDEF\x89\n"
FORMAT_VERSION = 2
"""Version 2: the metadata's ``definition`` is a full :class:`netdef.definition.DefinitionRecord`."""
READABLE_VERSIONS = (1, 2)
_HEADER = struct.Struct("<8sII32s")


@dataclass
class Engine:
    """A serialized plan plus metadata (backend and version, precision, I/O, profile, weights)."""

    plan: bytes
    metadata: dict[str, Any] = field(default_factory=dict)

    # ------------------------------------------------------------------ metadata views

    @property
    def inputs(self) -> list[dict[str, Any]]:
        return [t for t in self.metadata.get("io", []) if t["mode"] == "input"]

    @property
    def outputs(self) -> list[dict[str, Any]]:
        return [t for t in self.metadata.get("io", []) if t["mode"] == "output"]

    @property
    def weight_names(self) -> list[str]:
        return list(self.metadata.get("weights", {}))

    @property
    def refittable(self) -> bool:
        return bool(self.metadata.get("refit"))

    @property
    def stripped(self) -> bool:
        return bool(self.metadata.get("strip_weights"))

    @property
    def precision(self) -> str:
        return str(self.metadata.get("precision", "?"))

    @property
    def backend(self) -> tuple[str, str]:
        return self.metadata.get("backend", "?"), self.metadata.get("backend_version", "?")

    # ------------------------------------------------------------------ files

    def to_bytes(self) -> bytes:
        metadata = dict(self.metadata)
        metadata["plan_bytes"] = len(self.plan)
        metadata["plan_sha256"] = hashlib.sha256(self.plan).hexdigest()
        encoded = json.dumps(metadata, indent=1, sort_keys=True).encode()
        header = _HEADER.pack(MAGIC, FORMAT_VERSION, len(encoded), hashlib.sha256(encoded).digest())
        return header + encoded + self.plan

    def save(self, path: Path | str) -> Path:
        """Write atomically: a failed or interrupted save leaves no partial file behind."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        try:
            if hasattr(os, "fchmod"):  # mkstemp makes 0600 files; give the mode open() would
                os.fchmod(fd, 0o666 & ~_umask())
            with os.fdopen(fd, "wb") as f:
                f.write(self.to_bytes())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path

    @classmethod
    def load(cls, path: Path | str) -> Engine:
        path = Path(path)
        if not path.is_file():
            raise EngineFileError(f"{path}: no such engine file")
        return cls.from_bytes(path.read_bytes(), source=str(path))

    @classmethod
    def from_bytes(cls, data: bytes, source: str = "<bytes>") -> Engine:
        if len(data) < _HEADER.size:
            if MAGIC.startswith(data[:8]) and data:
                raise EngineFileError(f"{source}: truncated: {len(data)} bytes, the header alone is {_HEADER.size}")
            raise EngineFileError(f"{source}: not a netdef engine file ({len(data)} bytes, no netdef header)")
        magic, version, meta_len, meta_hash = _HEADER.unpack_from(data)
        if magic != MAGIC:
            raise EngineFileError(
                f"{source}: not a netdef engine file (starts with {data[:8]!r}, expected {MAGIC!r}); "
                "a bare TensorRT plan can be wrapped with netdef.Engine(plan, metadata)"
            )
        if version not in READABLE_VERSIONS:
            raise EngineFileError(
                f"{source}: engine file format version {version}, this netdef reads version {FORMAT_VERSION} "
                f"(and {', '.join(map(str, READABLE_VERSIONS[:-1]))})"
            )
        meta_end = _HEADER.size + meta_len
        if len(data) < meta_end:
            raise EngineFileError(
                f"{source}: truncated (or a corrupted header): the metadata needs {meta_end} bytes, "
                f"the file has {len(data)}"
            )
        encoded = data[_HEADER.size : meta_end]
        if hashlib.sha256(encoded).digest() != meta_hash:
            raise EngineFileError(f"{source}: corrupted: the metadata does not match its SHA-256")
        metadata = json.loads(encoded)
        plan = data[meta_end:]
        expected = metadata.get("plan_bytes")
        if len(plan) != expected:
            raise EngineFileError(f"{source}: truncated or padded: plan has {len(plan)} bytes, expected {expected}")
        if hashlib.sha256(plan).hexdigest() != metadata.get("plan_sha256"):
            raise EngineFileError(f"{source}: corrupted: the plan does not match its SHA-256")
        return cls(plan, metadata)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask

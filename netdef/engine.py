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
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from netdef.engine_schema import validate_metadata
from netdef.errors import EngineFileError
from netdef.fileio import atomic_write, open_regular_file, read_regular_file

MAGIC = b"NETDEF\x89\n"
FORMAT_VERSION = 2
"""Version 2: the metadata's ``definition`` is a full :class:`netdef.definition.DefinitionRecord`."""
READABLE_VERSIONS = (1, 2)
_HEADER = struct.Struct("<8sII32s")
_OVERLAP_BYTES = 1 << 22
"""Plans at least this large are hashed in a second thread while they are written."""


@dataclass
class Engine:
    """A serialized plan plus metadata (backend and version, precision, I/O, profile, weights)."""

    plan: bytes | memoryview
    """The serialized TensorRT plan: bytes, or a read-only byte view of TensorRT's memory after a build."""
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

    def head(self, plan_sha256: str | None = None, padding: int = 0) -> bytes:
        """The header and metadata that precede the plan in the file (``plan_sha256``: the plan's digest,
        when already known; ``padding``: spaces after the metadata's JSON, covered by its SHA-256)."""
        metadata = dict(self.metadata)
        metadata["plan_bytes"] = len(self.plan)
        metadata["plan_sha256"] = plan_sha256 or hashlib.sha256(self.plan).hexdigest()
        encoded = json.dumps(metadata, indent=1, sort_keys=True).encode() + b" " * padding
        return _HEADER.pack(MAGIC, FORMAT_VERSION, len(encoded), hashlib.sha256(encoded).digest()) + encoded

    def to_bytes(self) -> bytes:
        return self.head() + self.plan

    def write_to(self, f: IO[bytes]) -> None:
        """Write the file's bytes to ``f`` without joining them (no second copy of a large plan).

        To a seekable file the plan is written first, after room for the header, while a second thread
        computes its SHA-256 (both release the GIL); the header follows at the start. The header's length
        does not depend on the digest's value (64 hex digits either way). A large plan goes straight to
        the disk (:mod:`netdef.direct_write`): the metadata's JSON is padded with up to 4095 spaces so that
        the plan's place in the file lines up with its place in memory."""
        if len(self.plan) < _OVERLAP_BYTES or not f.seekable():
            f.write(self.head())
            f.write(self.plan)
            return
        from concurrent.futures import ThreadPoolExecutor  # 13 ms to import: only when a large plan is written

        from netdef import direct_write

        start = f.tell()
        plan_at = start + len(self.head(plan_sha256="0" * 64))
        padding = direct_write.aligning_padding(self.plan, plan_at)
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="netdef-sha256") as pool:
            digest = pool.submit(lambda: hashlib.sha256(self.plan).hexdigest())
            direct_write.write_at(f, self.plan, plan_at + padding)
            f.seek(start)
            f.write(self.head(plan_sha256=digest.result(), padding=padding))
            f.seek(plan_at + padding + len(self.plan))

    def save(self, path: Path | str, inputs: Iterable[Path | str | None] = ()) -> Path:
        """Write atomically (see :mod:`netdef.fileio`): a failed or interrupted save leaves the old
        file, if any, as it was and no partial file behind; ``inputs`` may not be overwritten."""
        with atomic_write(path, inputs) as f:
            self.write_to(f)
        return Path(path)

    @classmethod
    def load(cls, path: Path | str) -> Engine:
        path = Path(path)
        return cls.from_bytes(read_regular_file(path, "engine file", EngineFileError), source=str(path))

    @classmethod
    def read_metadata(cls, path: Path | str, *, verify_plan: bool = False) -> dict[str, Any]:
        """The metadata of the engine file at ``path``, checked like :meth:`load`, without loading the plan.

        ``verify_plan``: also check the plan's length and SHA-256, streaming it from the file (``netdef
        info``: a 100 MB engine is verified without holding it in memory).
        """
        path = Path(path)
        with open_regular_file(path, "engine file", EngineFileError) as f:
            head = f.read(_HEADER.size)
            if len(head) == _HEADER.size:
                head += f.read(_HEADER.unpack_from(head)[2])
            metadata, _ = _parse_head(head, str(path))
            if verify_plan:
                digest = hashlib.sha256()
                while chunk := f.read(1 << 22):
                    digest.update(chunk)
                _check_plan(f.tell() - len(head), digest.hexdigest(), metadata, str(path))
            else:  # the plan's length costs nothing to check: a truncated or padded file is caught here too
                _check_plan_size(os.fstat(f.fileno()).st_size - len(head), metadata, str(path))
        return metadata

    @classmethod
    def from_bytes(cls, data: bytes, source: str = "<bytes>") -> Engine:
        metadata, meta_end = _parse_head(data, source)
        plan = data[meta_end:]
        _check_plan(len(plan), hashlib.sha256(plan).hexdigest(), metadata, source)
        return cls(plan, metadata)


def _parse_head(data: bytes, source: str) -> tuple[dict[str, Any], int]:
    """The header and metadata at the start of ``data``, verified: (metadata, where the plan starts)."""
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
    try:
        metadata = json.loads(encoded)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise EngineFileError(f"{source}: the metadata is not valid JSON: {exc}") from None
    validate_metadata(metadata, source)
    return metadata, meta_end


def _check_plan_size(size: int, metadata: dict[str, Any], source: str) -> None:
    expected = metadata.get("plan_bytes")
    if size != expected:
        raise EngineFileError(f"{source}: truncated or padded: plan has {size} bytes, expected {expected}")


def _check_plan(size: int, sha256: str, metadata: dict[str, Any], source: str) -> None:
    _check_plan_size(size, metadata, source)
    if sha256 != metadata.get("plan_sha256"):
        raise EngineFileError(f"{source}: corrupted: the plan does not match its SHA-256")

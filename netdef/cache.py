"""An engine cache: skip the build when the same network, weights and build settings were built before.

An entry is one netdef engine file named after its key, a SHA-256 over everything that decides
the plan: the definition record (architecture, options, input shapes, precision, I/O dtype,
calibration), a fingerprint of the weights, the build configuration, the backend and its version,
and the target (the GPU's name and compute capability, or TensorRT-RTX's CPU target).

- A lookup needs no checkpoint read and no network definition: the weights' fingerprint is an
  XXH3-128 of the file, memoised in the cache directory by path, size, mtime and inode, so an
  unchanged 100 MB checkpoint is not read again.
- Entries are verified on the way out by the engine file's own hashes, streamed from the file; a
  corrupt entry is removed and reported, and the caller builds again. A verified entry's (size,
  mtime, inode) is remembered in the cache directory, so a hit on an unchanged entry reads nothing
  of it but its metadata, and the command copies it to its output inside the kernel
  (:func:`netdef.fileio.copy_file`). A change that keeps size, mtime and inode (a bit flipped on
  disk) is not seen by a hit; loading the engine (``netdef info``, ``run``) still checks its hashes.
- Writes are atomic (a temporary file in the cache directory, then ``os.replace``), so two
  processes building the same key at once both succeed and leave one valid entry.
- ``netdef cache list`` and ``netdef cache prune --max-size 5G`` (oldest use first) manage it.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import os
import stat
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from netdef.engine import Engine
from netdef.errors import EngineFileError
from netdef.fileio import copy_file, write_text

log = logging.getLogger("netdef.cache")

ENV_VAR = "NETDEF_CACHE"
SUFFIX = ".engine"
_FINGERPRINTS = "fingerprints.json"
_VERIFIED = "verified.json"
_BACKDATE_NS = 3 * 10**9


def cache_dir(option: Path | str | None = None) -> Path | None:
    """The cache directory: ``option`` (``--cache``), else ``$NETDEF_CACHE``, else None (no cache)."""
    chosen = option if option is not None else os.environ.get(ENV_VAR) or None
    return Path(chosen).expanduser() if chosen is not None else None


def cache_key(parts: Mapping[str, Any]) -> str:
    """SHA-256 of ``parts`` as canonical JSON (sorted keys), the name of an entry."""
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class CacheEntry:
    key: str
    path: Path
    size: int
    last_used: float
    metadata: dict[str, Any]

    @property
    def label(self) -> str:
        definition = self.metadata.get("definition") or {}
        return str(definition.get("architecture") or self.metadata.get("name") or "?")


class EngineCache:
    """Engines stored by key in one directory (see the module docstring)."""

    def __init__(self, root: Path | str):
        self.root = Path(root)

    # ------------------------------------------------------------------ entries

    def path(self, key: str) -> Path:
        return self.root / f"{key}{SUFFIX}"

    def lookup(self, key: str) -> Path | None:
        """The entry stored under ``key``, verified, or None when absent or corrupt (a corrupt entry is removed).

        The plan is read (and hashed) only when the entry's (size, mtime, inode) differs from when it was
        last verified; otherwise only its stat is read.
        """
        path = self.path(key)
        try:
            found = path.stat()
        except OSError:
            return None
        if not stat.S_ISREG(found.st_mode):
            return None
        verified = self._read_memo(_VERIFIED)
        if verified.get(path.name) != _stamp(found):
            try:
                Engine.read_metadata(path, verify_plan=True)  # streams the plan through SHA-256
            except EngineFileError as exc:
                self._discard(path, exc)
                return None
        self._used(path, verified)
        return path

    def get(self, key: str) -> Engine | None:
        """The engine stored under ``key``, loaded (and so verified), or None when absent or corrupt."""
        path = self.path(key)
        if not path.is_file():
            return None
        try:
            engine = Engine.load(path)
        except EngineFileError as exc:
            self._discard(path, exc)
            return None
        self._used(path, self._read_memo(_VERIFIED))
        return engine

    def put(self, key: str, engine: Engine) -> Path:
        """Store ``engine`` under ``key`` (an atomic write: a concurrent writer of the same key is harmless)."""
        path = engine.save(self.path(key))
        self._used(path, self._read_memo(_VERIFIED))  # verified: its hashes were computed from ``engine``
        return path

    def _discard(self, path: Path, problem: Exception) -> None:
        log.warning("cache entry %s is corrupt (%s); removing it and building again", path.name, problem)
        path.unlink(missing_ok=True)

    def _used(self, path: Path, verified: dict[str, Any]) -> None:
        """Record a use of the verified entry ``path`` and remember its stamp as verified.

        The mtime is the last use (for prune), set :data:`_BACKDATE_NS` in the past so that any later write
        changes it, even one within the same tick of a file system's coarse clock (a few ms on ext4, 2 s
        on FAT): a stamp taken now and a write a moment later would otherwise look the same.
        """
        now = time.time_ns()
        with contextlib.suppress(OSError):
            os.utime(path, ns=(now, now - _BACKDATE_NS))
        try:
            verified[path.name] = _stamp(path.stat())
        except OSError:  # removed meanwhile (prune)
            return
        self._write_memo(_VERIFIED, {name: s for name, s in verified.items() if (self.root / name).exists()})

    def entries(self) -> list[CacheEntry]:
        """Every readable entry, most recently used first (unreadable ones are skipped with a warning)."""
        found = []
        for path in self.root.glob(f"*{SUFFIX}") if self.root.is_dir() else ():
            try:
                status = path.stat()
                metadata = Engine.read_metadata(path)
            except (OSError, EngineFileError, ValueError) as exc:
                log.warning("skipping unreadable cache entry %s: %s", path.name, exc)
                continue
            found.append(CacheEntry(path.stem, path, status.st_size, status.st_mtime, metadata))
        return sorted(found, key=lambda e: e.last_used, reverse=True)

    def prune(self, max_bytes: int) -> list[CacheEntry]:
        """Remove the least recently used entries until the cache holds at most ``max_bytes``; returns them."""
        removed, total = [], 0
        for entry in self.entries():
            total += entry.size
            if total > max_bytes:
                entry.path.unlink(missing_ok=True)
                removed.append(entry)
        for stale in self.root.glob(".*.tmp") if self.root.is_dir() else ():
            if time.time() - stale.stat().st_mtime > 3600:  # left by a killed writer
                stale.unlink(missing_ok=True)
        return removed

    def find_refittable(self, structure_key: str) -> CacheEntry | None:
        """A refittable entry built from the same structure (everything but the weights), if any."""
        for entry in self.entries():
            if entry.metadata.get("cache", {}).get("structure_key") == structure_key and entry.metadata.get("refit"):
                return entry
        return None

    # ------------------------------------------------------------------ weight fingerprints

    def fingerprint(self, path: Path | str) -> dict[str, Any]:
        """:func:`netdef.weights.fingerprint.fingerprint` of ``path``, memoised across processes in the cache
        directory by (path, size, mtime, inode), so an unchanged checkpoint is not read again."""
        from netdef.weights import fingerprint as fp

        path = Path(path).resolve()
        stamp = _stamp(path.stat())
        memo = self._read_memo(_FINGERPRINTS)
        known = memo.get(str(path))
        recorded = known.get("fingerprint") if isinstance(known, dict) and known.get("stamp") == stamp else None
        if isinstance(recorded, dict) and fp.ALGORITHM in recorded:
            value = dict(recorded)
            fp.remember(path, value)  # the engine's record reuses it instead of reading the file again
            return value
        value = fp.fingerprint(path)
        memo[str(path)] = {"stamp": stamp, "fingerprint": value}
        self._write_memo(_FINGERPRINTS, memo)
        return value

    # ------------------------------------------------------------------ memo files

    def _read_memo(self, name: str) -> dict[str, Any]:
        try:
            memo = json.loads((self.root / name).read_text())
        except (OSError, ValueError):
            return {}
        return memo if isinstance(memo, dict) else {}

    def _write_memo(self, name: str, memo: dict[str, Any]) -> None:
        """Best effort: a memo only saves work, so a cache directory that cannot be written still serves."""
        try:
            write_text(self.root / name, json.dumps(memo))
        except OSError as exc:
            log.debug("cannot update %s: %s", self.root / name, exc)


def _stamp(found: os.stat_result) -> list[int]:
    """What changes when a file is rewritten, truncated or edited in place: size, mtime (ns) and inode."""
    return [found.st_size, found.st_mtime_ns, found.st_ino]


# --------------------------------------------------------------------------- building through the cache


def target() -> dict[str, Any]:
    """What the plan is built for: the backend, its version, and the GPU (or TensorRT-RTX's CPU target)."""
    from netdef import backend

    caps = backend.capabilities()
    gpu = {"name": caps.gpu.name, "compute_capability": list(caps.gpu.compute_capability)} if caps.gpu else None
    return {"backend": backend.BACKEND, "version": backend.VERSION, "gpu": gpu}


def definition_key_parts(
    cache: EngineCache,
    architecture: Any,
    options: Mapping[str, Any],
    weights: Path | str,
    *,
    precision: str,
    batch: str | None,
    calibration: Path | str | None,
    config: Any,
) -> dict[str, Any]:
    """The key parts of building ``architecture`` (a :class:`~netdef.definition.Architecture`) on ``weights``.

    The definition is keyed by its name, function, options, input shape and the source of the files it
    comes from (its module's file, and the other ``.py`` files of that module's package folder), so an
    edited definition misses; the weights and calibration cache by their fingerprints.
    """
    from netdef import __version__
    from netdef.weights.fingerprint import fingerprint

    definition = {
        "architecture": architecture.name,
        "function": getattr(architecture.define, "__qualname__", str(architecture.define)),
        "options": dict(options),
        "input_shape": list(architecture.input_shape),
        "precision": precision,
        "batch": batch,
        "sources": _source_digests(architecture.define),
        "netdef": __version__,
        "calibration": fingerprint(calibration) if calibration is not None else None,
    }
    return build_key_parts(definition, cache.fingerprint(weights), config)


def _source_digests(function: Any) -> dict[str, str]:
    """The digest of the file defining ``function`` and of the other ``.py`` files in its package's folder."""
    import inspect

    from netdef.weights.fingerprint import ALGORITHM, fingerprint

    try:
        source = Path(inspect.getsourcefile(function) or "")
    except TypeError:
        return {}
    if not source.is_file():
        return {}
    files = [source]
    if (source.parent / "__init__.py").is_file():
        files = sorted(source.parent.glob("*.py"))
    return {f.name: fingerprint(f)[ALGORITHM] for f in files}


def build_key_parts(definition: Mapping[str, Any], weights: Any, config: Any) -> dict[str, Any]:
    """Everything that decides a plan: definition, weights, build configuration and target."""
    settings = {
        "batch": list(config.batch) if config.batch else None,
        "shapes": {k: [list(s) for s in v] for k, v in sorted(config.shapes.items())},
        "workspace": config.workspace,
        "refit": bool(config.refit),
        "strip_weights": bool(config.strip_weights),
        "optimization_level": config.optimization_level,
    }
    return {"definition": dict(definition), "weights": weights, "build": settings, "target": target()}


@dataclass
class CachedBuild:
    """The engine for a key and how it was obtained. On a hit it stays in its cache entry until asked for:
    :meth:`save` copies the file and :attr:`metadata` reads only the metadata."""

    source: str
    """``"cache"`` (a hit), ``"refit"`` (a cached refittable engine refit with the new weights) or ``"build"``."""
    key: str
    entry: Path
    """The cache entry holding the engine."""
    built: Engine | None = None
    """The engine in memory when it was built or refit (None on a hit until :attr:`engine` loads it)."""

    @property
    def engine(self) -> Engine:
        """The engine (on a hit, loaded from the entry and verified by its hashes)."""
        if self.built is None:
            self.built = Engine.load(self.entry)
        return self.built

    @functools.cached_property
    def metadata(self) -> dict[str, Any]:
        """The engine's metadata, with the plan's size as ``plan_bytes``."""
        if self.built is not None:
            return {**self.built.metadata, "plan_bytes": len(self.built.plan)}
        return Engine.read_metadata(self.entry)

    def save(self, path: Path | str, inputs: Iterable[Path | str | None] = ()) -> Path:
        """Write the engine to ``path`` atomically (see :mod:`netdef.fileio`) by copying the entry's file
        (hashed once, when it was stored); an entry pruned meanwhile is written from memory instead."""
        if self.built is not None and not self.entry.is_file():
            return self.built.save(path, inputs)
        return copy_file(self.entry, path, inputs)


def build_through_cache(
    cache: EngineCache,
    parts: Mapping[str, Any],
    build: Any,
    *,
    checkpoint: Any = None,
) -> CachedBuild:
    """The engine for ``parts``: from ``cache`` when present, else refit from a cached refittable engine of
    the same structure (GPU only), else ``build()`` and store it.

    ``build`` is a function of no arguments returning an :class:`Engine`; ``checkpoint`` (a path or
    Checkpoint) is what a refit-from-cache would use.
    """
    key = cache_key(parts)
    structure_key = cache_key({k: v for k, v in parts.items() if k != "weights"})
    hit = cache.lookup(key)
    if hit is not None:
        return CachedBuild("cache", key, hit)
    engine = _refit_from_cache(cache, structure_key, checkpoint)
    source = "refit"
    if engine is None:
        engine, source = build(), "build"
    engine.metadata["cache"] = {"key": key, "structure_key": structure_key}
    return CachedBuild(source, key, cache.put(key, engine), engine)


def _refit_from_cache(cache: EngineCache, structure_key: str, checkpoint: Any) -> Engine | None:
    """Refit a cached refittable engine of the same structure with ``checkpoint`` (needs a supported GPU)."""
    if checkpoint is None:
        return None
    entry = cache.find_refittable(structure_key)
    if entry is None:
        return None
    from netdef import backend

    if not backend.capabilities().can_run:
        log.info("a refittable cached engine exists, but refitting needs a supported GPU: building instead")
        return None
    from netdef.refit import refit_engine

    source = cache.get(entry.key)
    if source is None:
        return None
    refitted, _ = refit_engine(source, checkpoint, source=str(entry.path))
    return refitted

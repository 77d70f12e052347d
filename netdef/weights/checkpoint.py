"""The :class:`Checkpoint` mapping and the table of readers by file suffix."""

from __future__ import annotations

import contextlib
import difflib
import importlib
import mmap
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

import numpy as np

from netdef.errors import CheckpointError, NetdefError
from netdef.weights.formats import _READERS, BUILTIN_MODULES, Reader


def supported_suffixes() -> list[str]:
    _load_builtin_readers()
    return sorted(_READERS)


def reader_for(path: Path) -> Reader:
    suffix = path.suffix.lower()
    if suffix not in _READERS and suffix in BUILTIN_MODULES:
        importlib.import_module(f"netdef.weights.{BUILTIN_MODULES[suffix]}")  # only the reader this file needs
    try:
        return _READERS[suffix]
    except KeyError:
        raise CheckpointError(
            f"{path}: unknown checkpoint format {suffix!r}; netdef reads {', '.join(supported_suffixes())}"
        ) from None


def _load_builtin_readers() -> None:
    # Imported for their registration side effect; kept lazy so `import netdef` stays light.
    for module in sorted(set(BUILTIN_MODULES.values())):
        importlib.import_module(f"netdef.weights.{module}")


class Checkpoint(Mapping[str, np.ndarray]):
    """A read-only mapping ``name -> np.ndarray`` loaded from a checkpoint file.

    Arrays are read-only (zero-copy views of the file where the format allows). Looking up
    several names with :meth:`require` reports every missing name at once, each with the
    closest names the checkpoint does have.
    """

    def __init__(self, tensors: Mapping[str, np.ndarray], path: Path | str | None = None):
        self._tensors = {name: _read_only_view(array) for name, array in tensors.items()}
        self.path = Path(path) if path is not None else None

    @classmethod
    def load(cls, path: Path | str) -> Checkpoint:
        """Read ``.safetensors``, ``.pth``/``.pt``, ``.npz`` or ``.wts`` (chosen by suffix)."""
        from netdef.fileio import require_regular_file

        path = require_regular_file(path, "checkpoint file", CheckpointError)
        reader = reader_for(path)
        try:
            tensors = reader(path)
        except (NetdefError, KeyboardInterrupt):
            raise
        except MemoryError:
            raise CheckpointError(f"{path}: not enough memory to read this checkpoint") from None
        except Exception as exc:  # noqa: BLE001 - a reader's last line of defence: always a netdef error
            raise CheckpointError(f"{path}: cannot be read ({type(exc).__name__}: {exc})") from None
        return cls(tensors, path)

    @property
    def source(self) -> str:
        return str(self.path) if self.path is not None else "<in-memory checkpoint>"

    def __getitem__(self, name: str) -> np.ndarray:
        try:
            return self._tensors[name]
        except KeyError:
            raise self.missing_error([name]) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._tensors)

    def __len__(self) -> int:
        return len(self._tensors)

    def __repr__(self) -> str:
        return f"Checkpoint({self.source!r}, {len(self)} tensors, {self.num_parameters:,} parameters)"

    @property
    def num_parameters(self) -> int:
        return sum(int(a.size) for a in self._tensors.values())

    @property
    def nbytes(self) -> int:
        return sum(int(a.nbytes) for a in self._tensors.values())

    def release_pages(self) -> int:
        """Let the operating system take back the pages of the files this checkpoint maps; returns how many
        bytes of mappings were released.

        The arrays stay valid: a page read again comes back from the page cache. A build calls this once
        every weight is in the network's own memory, so the checkpoint does not stay resident while
        TensorRT builds (about 100 MB for ResNet-50).
        """
        released = 0
        for mapping in {id(m): m for m in map(_mapping_of, self._tensors.values()) if m is not None}.values():
            with contextlib.suppress(ValueError, OSError):  # closed, or madvise refused: nothing to give back
                mapping.madvise(mmap.MADV_DONTNEED)
                released += len(mapping)
        return released

    def require(self, names: Iterable[str]) -> dict[str, np.ndarray]:
        """Return the named arrays, or raise one error listing every missing name."""
        names = list(names)
        missing = [n for n in names if n not in self._tensors]
        if missing:
            raise self.missing_error(missing)
        return {n: self._tensors[n] for n in names}

    def closest(self, name: str, n: int = 3) -> list[str]:
        return difflib.get_close_matches(name, list(self._tensors), n=n, cutoff=0.5)

    def missing_error(self, missing: Iterable[str]) -> CheckpointError:
        missing = list(missing)
        problems = []
        for name in missing:
            near = self.closest(name)
            problems.append(name + (f" (closest: {', '.join(near)})" if near else ""))
        return CheckpointError(f"{self.source}: missing {len(missing)} weight(s)", problems)


def _read_only_view(array: np.ndarray) -> np.ndarray:
    view = np.asarray(array).view()
    view.flags.writeable = False
    return view


def _mapping_of(array: np.ndarray) -> mmap.mmap | None:
    """The memory-mapped file ``array`` views, if any (following NumPy's chain of bases)."""
    base: object = array
    while isinstance(base, np.ndarray | memoryview):
        base = base.base if isinstance(base, np.ndarray) else base.obj
    return base if isinstance(base, mmap.mmap) else None


def load_checkpoint(path: Path | str) -> Checkpoint:
    """Shorthand for :meth:`Checkpoint.load`."""
    return Checkpoint.load(path)

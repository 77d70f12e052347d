"""The :class:`Checkpoint` mapping and the table of readers by file suffix."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

import numpy as np

from netdef.errors import CheckpointError
from netdef.weights.formats import _READERS, Reader


def supported_suffixes() -> list[str]:
    _load_builtin_readers()
    return sorted(_READERS)


def reader_for(path: Path) -> Reader:
    _load_builtin_readers()
    suffix = path.suffix.lower()
    try:
        return _READERS[suffix]
    except KeyError:
        raise CheckpointError(
            f"{path}: unknown checkpoint format {suffix!r}; netdef reads {', '.join(supported_suffixes())}"
        ) from None


def _load_builtin_readers() -> None:
    # Imported for their registration side effect; kept lazy so `import netdef` stays light.
    from netdef.weights import npz_io, safetensors_io, torch_io  # noqa: F401

    try:
        from netdef.weights import wts_io  # noqa: F401
    except ImportError:
        pass


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
        path = Path(path)
        if not path.is_file():
            raise CheckpointError(f"{path}: no such checkpoint file")
        return cls(reader_for(path)(path), path)

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


def load_checkpoint(path: Path | str) -> Checkpoint:
    """Shorthand for :meth:`Checkpoint.load`."""
    return Checkpoint.load(path)

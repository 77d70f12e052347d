"""Arrays from ``.npy`` / ``.npz`` files, for commands that take inputs or calibration samples."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from netdef.errors import NetdefError


def load_arrays(path: Path, error: type[NetdefError], what: str = "input") -> np.ndarray | dict[str, np.ndarray]:
    """An ``.npy`` file as one array, an ``.npz`` file as name -> array (no pickle); ``error`` otherwise.

    Only regular files are read (:mod:`netdef.fileio`); damaged files raise ``error`` naming the file.
    """
    from netdef.fileio import require_regular_file
    from netdef.weights.npz_io import read_npy_file, read_npz_arrays

    if path.suffix not in (".npy", ".npz"):
        raise error(f"{path}: {what}s are read from .npy (one array) or .npz (name -> array) files")
    require_regular_file(path, f"{what} file", error)
    if path.suffix == ".npy":
        return read_npy_file(path, error)
    return read_npz_arrays(path, error)

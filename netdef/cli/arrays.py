"""Arrays from ``.npy`` / ``.npz`` files, for commands that take inputs or calibration samples."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def load_arrays(path: Path, error: type[Exception], what: str = "input") -> np.ndarray | dict[str, np.ndarray]:
    """An ``.npy`` file as one array, an ``.npz`` file as name -> array (no pickle); ``error`` otherwise."""
    if path.suffix not in (".npy", ".npz"):
        raise error(f"{path}: {what}s are read from .npy (one array) or .npz (name -> array) files")
    if not path.is_file():
        raise error(f"{path}: no such {what} file")
    try:
        loaded = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise error(f"{path}: not a readable {path.suffix} file: {exc}") from None
    if isinstance(loaded, np.ndarray):
        return loaded
    with loaded:
        return {name: loaded[name] for name in loaded.files}

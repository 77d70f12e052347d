"""NumPy ``.npz`` archives (read without pickle)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from netdef.errors import CheckpointError
from netdef.weights.formats import register_reader


@register_reader(".npz")
def read_npz(path: Path) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {name: archive[name] for name in archive.files}
    except (ValueError, zipfile.BadZipFile, OSError) as exc:
        raise CheckpointError(f"{path}: not a readable .npz archive without pickle: {exc}") from None

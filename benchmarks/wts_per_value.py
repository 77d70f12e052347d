"""The classic ``.wts`` reader tensorrtx users write: one ``struct.unpack`` per value.

The baseline of ``benchmarks/build_paths.py`` (path B) and the ground truth ``tests/test_wts.py``
checks netdef's vectorised reader against.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np


def read_wts_per_value(path: Path | str) -> dict[str, np.ndarray]:
    """``{name: float32 array}`` read line by line, one value at a time."""
    tensors = {}
    with open(path) as f:
        count = int(f.readline())
        for _ in range(count):
            words = f.readline().split()
            name, size = words[0], int(words[1])
            values = [struct.unpack(">f", bytes.fromhex(w))[0] for w in words[2 : 2 + size]]
            tensors[name] = np.array(values, dtype=np.float32)
    return tensors

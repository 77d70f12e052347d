"""Write ``architectures/parameters.json``: every zoo architecture's parameter count with its default options.

``netdef list`` reads the counts from there instead of defining every network in TensorRT.
Run after adding or changing an architecture (``tests/test_parameter_table.py`` fails until you do)::

    python -m architectures.parameters
"""

from __future__ import annotations

import gc
import json
import sys

from architectures.registry import PARAMETERS, load_all
from netdef.definition import registered


def count_all(names: list[str] | None = None) -> dict[str, int]:
    """Parameter counts through the definitions themselves (TensorRT network definitions, no checkpoint)."""
    load_all()
    counts = {}
    for arch in registered():
        if arch.define.__module__.startswith("architectures.") and (names is None or arch.name in names):
            counts[arch.name] = arch.num_parameters(declared=False)
            gc.collect()
            print(f"{arch.name}: {counts[arch.name]:,}", file=sys.stderr, flush=True)
    return counts


def main() -> None:
    counts = count_all()
    PARAMETERS.write_text(json.dumps(dict(sorted(counts.items())), indent=1) + "\n")
    print(f"wrote {PARAMETERS} ({len(counts)} architectures)")


if __name__ == "__main__":
    main()

"""Write ``architectures/parameters.json``, the zoo's index: every architecture's module and its parameter
count with its default options.

``netdef list`` reads the counts from there instead of defining every network in TensorRT, and a command
naming one architecture imports only its module.
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


def modules() -> dict[str, str]:
    """Each zoo architecture's module within :mod:`architectures`."""
    load_all()
    return {
        a.name: a.define.__module__.removeprefix("architectures.")
        for a in registered()
        if a.define.__module__.startswith("architectures.")
    }


def main() -> None:
    counts, where = count_all(), modules()
    index = {name: {"module": where[name], "parameters": counts[name]} for name in sorted(counts)}
    PARAMETERS.write_text(json.dumps(index, indent=1) + "\n")
    print(f"wrote {PARAMETERS} ({len(index)} architectures)")


if __name__ == "__main__":
    main()

"""Stage marks for benchmarks: with ``NETDEF_STAGES=FILE`` a command records when each stage ended.

``benchmarks/cli_paths.py`` reads the file (JSON, stage -> epoch seconds) to show where a ``netdef
build`` process spends its time. Without the variable, :func:`mark` does nothing.
"""

from __future__ import annotations

import json
import os
import time

_marks: dict[str, float] = {}


def mark(stage: str) -> None:
    """Record that ``stage`` ended now (only when ``NETDEF_STAGES`` names a file)."""
    path = os.environ.get("NETDEF_STAGES")
    if path:
        _marks[stage] = time.time()
        with open(path, "w") as f:
            json.dump(_marks, f)

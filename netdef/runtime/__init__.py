"""Run engines from Python: load and verify, execute with NumPy or torch buffers, benchmark.

Submodules, lightest first:

- :mod:`netdef.runtime.iospec`, :mod:`~netdef.runtime.pool`, :mod:`~netdef.runtime.tensors`,
  :mod:`~netdef.runtime.preprocess`, :mod:`~netdef.runtime.bench`: pure Python and NumPy.
- :mod:`netdef.runtime.cuda`: CUDA memory, streams, events and graphs through cuda-python (no TensorRT).
- :mod:`netdef.compat` (:func:`load_engine`) and :mod:`netdef.runtime.runner` (:class:`Runner`,
  :func:`run_engine_file`): TensorRT.

Names are imported lazily, so ``import netdef.runtime.cuda`` works without TensorRT installed.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_LAZY = {
    "Runner": "netdef.runtime.runner",
    "run_engine_file": "netdef.runtime.runner",
    "load_engine": "netdef.compat",
    "EngineIO": "netdef.runtime.iospec",
    "TensorSpec": "netdef.runtime.iospec",
    "ContextPool": "netdef.runtime.pool",
    "BenchResult": "netdef.runtime.bench",
    "bench_runner": "netdef.runtime.bench",
    "preprocess_image": "netdef.runtime.preprocess",
    "softmax": "netdef.runtime.preprocess",
    "top_k": "netdef.runtime.preprocess",
}

if TYPE_CHECKING:
    from netdef.compat import load_engine
    from netdef.runtime.bench import BenchResult, bench_runner
    from netdef.runtime.iospec import EngineIO, TensorSpec
    from netdef.runtime.pool import ContextPool
    from netdef.runtime.preprocess import preprocess_image, softmax, top_k
    from netdef.runtime.runner import Runner, run_engine_file


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'netdef.runtime' has no attribute {name!r}")


__all__ = [
    "BenchResult",
    "ContextPool",
    "EngineIO",
    "Runner",
    "TensorSpec",
    "bench_runner",
    "load_engine",
    "preprocess_image",
    "run_engine_file",
    "softmax",
    "top_k",
]

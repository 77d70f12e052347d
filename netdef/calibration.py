"""INT8 calibration on the CPU: activation ranges measured with the NumPy reference executor.

TensorRT's entropy calibration (``IInt8EntropyCalibrator2``) and its calibration cache, on TensorRT 11's
explicit quantization: the fp32 network runs over a calibration set in :mod:`netdef.reference`, every
activation that feeds a convolution or linear layer (:attr:`Network.quantization_points`) is measured,
and a range ``amax`` is chosen per tensor; the int8 network quantizes that tensor with scale ``amax / 127``.

Methods (all on ``|x|``):

- ``max``: the largest ``|x|`` seen.
- ``percentile``: the ``percentile`` (default 99.99) of ``|x|``, read from a histogram: the upper edge of
  the first bin where the cumulative count reaches it (at most one bin width above the exact value).
- ``entropy``: TensorRT's entropy calibration (Migacz, "8-bit Inference with TensorRT", GTC 2017): a
  2048-bin histogram of ``|x|`` over ``[0, max]``; for each candidate ``i`` of 128..2048 bins, ``P`` is the
  first ``i`` bins with everything beyond added to bin ``i-1``; ``Q`` merges the first ``i`` bins into 128
  levels and spreads each level's count evenly over its bins where ``P`` is non-zero; the ``i`` with the
  least ``KL(P || Q)`` gives ``amax = (i + 0.5) * bin width``. A bin where ``P`` has counts and ``Q`` none
  (the outlier bin of an empty last level) counts as holding ``1e-4`` in ``Q`` (MXNet's smoothing of the
  same algorithm), so that isolated outliers are clipped rather than making every clipped candidate infinite.

Histogram methods take two passes (the first finds each tensor's maximum, which fixes the bins).

The result is a :class:`Calibration` (:mod:`netdef.calibration_cache`), saved as a JSON cache keyed by
tensor name and reused (:func:`load_or_calibrate`): delete the file, or calibrate again, to regenerate it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from netdef.calibration_cache import (
    CACHE_FORMAT,
    CACHE_VERSION,
    DEFAULT_BINS,
    DEFAULT_PERCENTILE,
    LEVELS,
    METHODS,
    Calibration,
    weights_fingerprint,
)
from netdef.errors import CalibrationError
from netdef.tensorspec import match_inputs

__all__ = [
    "CACHE_FORMAT",
    "CACHE_VERSION",
    "DEFAULT_BINS",
    "DEFAULT_PERCENTILE",
    "LEVELS",
    "METHODS",
    "Calibration",
    "calibrate",
    "entropy_amax",
    "histogram",
    "load_or_calibrate",
    "percentile_amax",
    "weights_fingerprint",
]


# --------------------------------------------------------------------------- statistics (pure NumPy)


def histogram(values: np.ndarray, top: float, bins: int = DEFAULT_BINS) -> np.ndarray:
    """Counts of ``|values|`` in ``bins`` equal bins over ``[0, top]`` (``top`` itself in the last bin)."""
    a = np.abs(np.asarray(values, dtype=np.float32)).ravel()
    if top <= 0:
        counts = np.zeros(bins, np.int64)
        counts[0] = a.size
        return counts
    index = np.minimum((a.astype(np.float64) * (bins / top)).astype(np.int64), bins - 1)
    return np.bincount(index, minlength=bins).astype(np.int64)


def percentile_amax(counts: np.ndarray, top: float, percentile: float = DEFAULT_PERCENTILE) -> float:
    """Upper edge of the first bin where the cumulative share of ``counts`` reaches ``percentile`` %."""
    if not 0 < percentile <= 100:
        raise CalibrationError(f"percentile must be in (0, 100], got {percentile}")
    counts = np.asarray(counts, dtype=np.float64)
    total = counts.sum()
    if total == 0 or top <= 0:
        return 0.0
    cdf = np.cumsum(counts) / total
    index = int(np.searchsorted(cdf, percentile / 100.0 - 1e-12))
    return float((min(index, counts.size - 1) + 1) * top / counts.size)


def entropy_divergences(counts: np.ndarray, levels: int = LEVELS) -> np.ndarray:
    """``KL(P_i || Q_i)`` for every candidate ``i`` = ``levels`` .. ``len(counts)`` bins (see the module doc)."""
    hist = np.asarray(counts, dtype=np.float64)
    n = hist.size
    if n < levels:
        raise CalibrationError(f"entropy calibration needs at least {levels} histogram bins, got {n}")
    suffix = np.concatenate([np.cumsum(hist[::-1])[::-1], [0.0]])  # suffix[i] = hist[i:].sum()
    divergences = np.empty(n - levels + 1)
    for k, i in enumerate(range(levels, n + 1)):
        p = hist[:i].copy()
        p[i - 1] += suffix[i]
        width = i // levels
        starts = np.arange(levels) * width
        lengths = np.append(np.full(levels - 1, width), i - (levels - 1) * width)
        nonzero = p != 0
        totals = np.add.reduceat(hist[:i], starts)
        spread = np.add.reduceat(nonzero.astype(np.float64), starts)
        per_bin = np.divide(totals, spread, out=np.zeros(levels), where=spread > 0)
        q = np.repeat(per_bin, lengths) * nonzero
        divergences[k] = _kl(p, q)
    return divergences


SMOOTHING = 1e-4
"""Count given to a bin of ``Q`` that is empty where ``P`` is not (keeps ``KL(P || Q)`` finite)."""


def _kl(p: np.ndarray, q: np.ndarray) -> float:
    """``KL(P || Q)`` of two count vectors, each normalized to sum 1, over the bins where ``P > 0``."""
    support = p > 0
    if not support.any():
        return 0.0
    q = np.where(support & (q == 0), SMOOTHING, q)
    p, q = p[support] / p.sum(), q[support] / q.sum()
    return float(np.sum(p * np.log(p / q)))


def entropy_amax(counts: np.ndarray, top: float, levels: int = LEVELS) -> float:
    """TensorRT's entropy threshold: ``(i + 0.5) * bin width`` for the ``i`` of least divergence (first on ties)."""
    counts = np.asarray(counts)
    if top <= 0 or counts.sum() == 0:
        return 0.0
    divergences = entropy_divergences(counts, levels)
    best = levels + int(np.argmin(divergences))
    return float(min((best + 0.5) * top / counts.size, top))


# --------------------------------------------------------------------------- running the network


def _batches(data: Mapping[str, np.ndarray], batch_size: int) -> Iterator[dict[str, np.ndarray]]:
    n = len(next(iter(data.values())))
    for start in range(0, n, batch_size):
        yield {name: array[start : start + batch_size] for name, array in data.items()}


def calibrate(
    network: Any,
    data: np.ndarray | Mapping[str, np.ndarray],
    method: str = "entropy",
    *,
    percentile: float = DEFAULT_PERCENTILE,
    bins: int = DEFAULT_BINS,
    batch_size: int = 64,
    architecture: str | None = None,
    checkpoint: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Calibration:
    """Measure the activations of an fp32 ``network`` over ``data`` and choose each one's INT8 range.

    ``network``: a :class:`~netdef.Network` defined in fp32 (not int8) with a dynamic or matching batch.
    ``data``: ``(N, ...)`` samples for its one input, or input name -> array. ``progress(done, total)`` is
    called after each batch (twice through the data for histogram methods).
    """
    from netdef.reference import ReferenceExecutor

    if method not in METHODS:
        raise CalibrationError(f"unknown calibration method {method!r}: expected one of {', '.join(METHODS)}")
    if getattr(network, "quantized", False):
        raise CalibrationError("calibrate the fp32 definition: an int8 network's activations are already quantized")
    if bins < LEVELS:
        raise CalibrationError(f"bins must be at least {LEVELS}, got {bins}")
    tensors = network.quantization_tensors()
    if not tensors:
        raise CalibrationError(f"network {network.name!r} has no convolution or linear layer to quantize")
    executor = ReferenceExecutor(network.trt_network)
    arrays = match_inputs(
        executor.inputs, data, source="calibration data", casting="float", samples=True, error=CalibrationError
    )
    samples = len(next(iter(arrays.values())))
    started = time.perf_counter()
    passes = 1 if method == "max" else 2
    total_steps = passes * math.ceil(samples / batch_size)
    step = 0

    def measured() -> Iterator[dict[str, np.ndarray]]:
        nonlocal step
        for batch in _batches(arrays, batch_size):
            result = executor.run(batch, capture=True)
            step += 1
            if progress is not None:
                progress(step, total_steps)
            yield {key: result.tensors[tensor.name] for key, tensor in tensors.items()}

    top = dict.fromkeys(tensors, 0.0)
    for values in measured():
        for key, array in values.items():
            top[key] = max(top[key], float(np.max(np.abs(array))) if array.size else 0.0)
    bad = [f"tensor {k!r}: {v}" for k, v in top.items() if not math.isfinite(v)]
    if bad:
        raise CalibrationError("activations are not finite on the calibration set", bad)
    if method == "max":
        amax = top
    else:
        counts = {key: np.zeros(bins, np.int64) for key in tensors}
        for values in measured():
            for key, array in values.items():
                counts[key] += histogram(array, top[key], bins)
        if method == "percentile":
            amax = {key: percentile_amax(counts[key], top[key], percentile) for key in tensors}
        else:
            amax = {key: entropy_amax(counts[key], top[key]) for key in tensors}
    return Calibration(
        amax={key: float(value) for key, value in amax.items()},
        method=method,
        architecture=architecture if architecture is not None else network.name,
        percentile=percentile if method == "percentile" else None,
        bins=None if method == "max" else bins,
        samples=samples,
        consumers={key: list(network.quantization_points.get(key, [])) for key in tensors},
        checkpoint=checkpoint,
        weights_sha256=network.weight_table.fingerprint(),
        seconds=round(time.perf_counter() - started, 3),
    )


def load_or_calibrate(
    architecture: str,
    checkpoint: Any,
    data: np.ndarray | Mapping[str, np.ndarray] | None,
    *,
    cache: str | Path,
    method: str = "entropy",
    **kwargs: Any,
) -> Calibration:
    """Reuse ``cache`` when it exists (and fits), else calibrate on ``data`` and write it.

    ``architecture``: a registered name, ``file.py:function`` or ``module:function``
    (:func:`netdef.definition.resolve`). ``checkpoint``: a :class:`~netdef.Checkpoint` or a path. A cache
    made for another architecture or
    method raises :class:`CalibrationError` (delete it to regenerate); ``data`` may be None when the
    cache is known to exist.
    """
    from netdef.definition import resolve
    from netdef.weights import Checkpoint

    arch = resolve(architecture)
    cache = Path(cache)
    if cache.exists():
        calibration = Calibration.load(cache)
        problems = calibration.problems_for(arch.name, method)
        if problems:
            raise CalibrationError(
                f"calibration cache {str(cache)!r} does not fit: {'; '.join(problems)} (delete it to calibrate again)"
            )
        return calibration
    if data is None:
        raise CalibrationError(f"calibration cache {str(cache)!r} does not exist and no calibration data was given")
    source = str(checkpoint) if not isinstance(checkpoint, Mapping) else getattr(checkpoint, "source", None)
    ckpt = checkpoint if isinstance(checkpoint, Mapping) else Checkpoint.load(checkpoint)
    network = arch.build_network(ckpt, precision="fp32", batch=-1)
    calibration = calibrate(network, data, method, architecture=arch.name, checkpoint=source, **kwargs)
    calibration.save(cache)
    return calibration

"""Small summaries of arrays for the page: min/max/mean/std, a coarse histogram, a downsampled heat map.

Only these summaries reach the page, never the values, so a ResNet-50 page stays small.
"""

from __future__ import annotations

import base64
import math

import numpy as np

HISTOGRAM_BINS = 24
HISTOGRAM_SAMPLE = 1 << 18
"""Histograms of larger arrays count every k-th value (the statistics use every value)."""
HEATMAP_SIDE = 32
"""A heat map is at most this many cells on a side (larger maps are averaged over blocks)."""


def _round(value: float) -> float | None:
    """A float with 4 significant digits for JSON; None for NaN/Inf (JSON has neither)."""
    return float(f"{value:.4g}") if math.isfinite(value) else None


def summary(array: np.ndarray) -> dict:
    """``{"min", "max", "mean", "std", "hist": [counts], "range": [lo, hi], "step": k, "nonfinite": n}``
    of the finite values: exact statistics (the mean summed in float64), and a histogram over
    ``[min, max]`` of every ``step``-th value (1 up to :data:`HISTOGRAM_SAMPLE` values)."""
    values = np.asarray(array).astype(np.float32, copy=False).ravel()
    finite_mask = np.isfinite(values)
    nonfinite = int(values.size - np.count_nonzero(finite_mask))
    if nonfinite:
        values = values[finite_mask]
    if values.size == 0:
        empty = {"min": None, "max": None, "mean": None, "std": None, "hist": [], "range": [0, 0], "step": 1}
        return {**empty, "nonfinite": nonfinite}
    low, high = float(values.min()), float(values.max())
    step = math.ceil(values.size / HISTOGRAM_SAMPLE)
    span = (low, high) if high > low else (low - 0.5, low + 0.5)
    counts, _ = np.histogram(values[::step], bins=HISTOGRAM_BINS, range=span)
    return {
        "min": _round(low),
        "max": _round(high),
        "mean": _round(float(values.mean(dtype=np.float64))),
        "std": _round(float(values.std())),
        "hist": counts.tolist(),
        "range": [_round(low), _round(high)],
        "step": step,
        "nonfinite": nonfinite,
    }


def heatmap(activation: np.ndarray) -> dict | None:
    """One channel of a 4-D activation (first sample) as a small grey-level map.

    The channel shown is the one with the largest spread (std), the most informative to look at.
    Returns ``{"channel", "channels", "height", "width", "rows", "cols", "min", "max", "cells"}``,
    ``cells`` being base64 bytes (0 = min, 255 = max, row-major); None for other ranks.
    """
    array = np.asarray(activation)
    if array.ndim != 4 or array.shape[1] == 0 or array.shape[2] * array.shape[3] == 0:
        return None
    sample = np.nan_to_num(array[0].astype(np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    channel = int(np.argmax(sample.reshape(sample.shape[0], -1).std(axis=1)))
    plane = sample[channel]
    height, width = plane.shape
    plane = _block_mean(plane, math.ceil(height / HEATMAP_SIDE), math.ceil(width / HEATMAP_SIDE))
    low, high = float(plane.min()), float(plane.max())
    scaled = np.zeros(plane.shape, np.uint8) if high <= low else np.round((plane - low) / (high - low) * 255)
    return {
        "channel": channel,
        "channels": int(array.shape[1]),
        "height": int(height),
        "width": int(width),
        "rows": int(plane.shape[0]),
        "cols": int(plane.shape[1]),
        "min": _round(low),
        "max": _round(high),
        "cells": base64.b64encode(scaled.astype(np.uint8).tobytes()).decode("ascii"),
    }


def _block_mean(plane: np.ndarray, block_h: int, block_w: int) -> np.ndarray:
    """Average over ``block_h x block_w`` blocks (edges padded with the edge values)."""
    if block_h == 1 and block_w == 1:
        return plane
    height, width = plane.shape
    padded = np.pad(plane, ((0, -height % block_h), (0, -width % block_w)), mode="edge")
    rows, cols = padded.shape[0] // block_h, padded.shape[1] // block_w
    return padded.reshape(rows, block_h, cols, block_w).mean(axis=(1, 3))

"""Elementwise math NumPy lacks: the Gauss error function."""

from __future__ import annotations

import math

import numpy as np

try:
    from scipy.special import erf as _scipy_erf  # type: ignore[import-untyped]
except ImportError:  # scipy is optional
    _scipy_erf = None

_math_erf = np.frompyfunc(math.erf, 1, 1)


def erf(x: np.ndarray) -> np.ndarray:
    """erf(x) in the dtype of ``x`` (scipy's when installed, else the C library's ``erf`` per element)."""
    if _scipy_erf is not None:
        return _scipy_erf(x).astype(x.dtype, copy=False)
    return np.asarray(_math_erf(x.astype(np.float64)), dtype=np.float64).astype(x.dtype)

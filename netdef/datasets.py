"""Small, real data sets for checking engine accuracy on the CPU, without downloads.

Only numpy is needed at import time; scikit-learn is imported when a data set is
requested.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

DIGITS_SIZE = 28
"""Side of the upscaled digits images (LeNet's MNIST input size)."""


class DigitsSplit(NamedTuple):
    """A train/test split of the scikit-learn digits, as LeNet-ready arrays.

    ``x_*`` are float32 ``(N, 1, 28, 28)`` in ``[0, 1]``; ``y_*`` are int64 labels 0..9.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def bilinear_matrix(n_in: int, n_out: int) -> np.ndarray:
    """The ``(n_out, n_in)`` float64 matrix of 1-D linear interpolation, ``align_corners=False``.

    Output sample ``i`` reads source coordinate ``s = max((i + 0.5) * n_in / n_out - 0.5, 0)``
    (half-pixel centres, clamped at the low edge) and mixes pixels ``i0 = floor(s)`` and
    ``i1 = min(i0 + 1, n_in - 1)`` with weights ``1 - (s - i0)`` and ``s - i0``. This is the
    rule of ``torch.nn.functional.interpolate(mode="bilinear", align_corners=False)``.
    """
    scale = n_in / n_out
    src = np.maximum((np.arange(n_out, dtype=np.float64) + 0.5) * scale - 0.5, 0.0)
    i0 = np.minimum(np.floor(src).astype(np.int64), n_in - 1)
    i1 = np.minimum(i0 + 1, n_in - 1)
    frac = src - i0
    mat = np.zeros((n_out, n_in), dtype=np.float64)
    rows = np.arange(n_out)
    np.add.at(mat, (rows, i0), 1.0 - frac)
    np.add.at(mat, (rows, i1), frac)
    return mat


def upscale_bilinear(images: np.ndarray, size: int) -> np.ndarray:
    """Resize ``(N, H, W)`` images to ``(N, size, size)`` bilinearly (see :func:`bilinear_matrix`).

    Separable: rows then columns, computed in float64 and returned as float32.
    """
    _, h, w = images.shape
    rows = bilinear_matrix(h, size)
    cols = bilinear_matrix(w, size)
    out = np.einsum("ih,nhw,jw->nij", rows, images.astype(np.float64), cols)
    return out.astype(np.float32)


def digits_split(seed: int = 0, test_fraction: float = 0.2) -> DigitsSplit:
    """scikit-learn's digits (1,797 scanned 8x8 images), preprocessed for LeNet and split.

    Exact preprocessing:

    1. ``sklearn.datasets.load_digits()``: pixel values are integers 0..16.
    2. Divide by 16 to get ``[0, 1]`` (float64).
    3. Upscale each 8x8 image to 28x28 with separable bilinear interpolation,
       ``align_corners=False`` (half-pixel centres, edge clamping, no antialiasing) -- the
       same result as ``torch.nn.functional.interpolate(x, size=(28, 28), mode="bilinear",
       align_corners=False)`` -- computed in float64 and cast to float32. Values stay in
       ``[0, 1]``. No mean/std normalisation.
    4. Shape ``(N, 1, 28, 28)`` (NCHW); labels as int64.
    5. ``sklearn.model_selection.train_test_split(x, y, test_size=test_fraction,
       stratify=y, random_state=seed)``.

    With the defaults that is 1,437 training and 360 test images.
    """
    try:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("netdef.datasets.digits_split needs scikit-learn: pip install scikit-learn") from exc

    digits = load_digits()
    images = np.asarray(digits.images, dtype=np.float64) / 16.0
    x = upscale_bilinear(images, DIGITS_SIZE)[:, None, :, :]
    y = np.asarray(digits.target, dtype=np.int64)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=test_fraction, stratify=y, random_state=seed)
    return DigitsSplit(
        np.ascontiguousarray(x_train),
        np.ascontiguousarray(y_train),
        np.ascontiguousarray(x_test),
        np.ascontiguousarray(y_test),
    )

"""Images in, NCHW tensors out; probabilities in, top-k predictions out. NumPy only.

Resizing is bilinear with half-pixel centres and no antialiasing, the rule of
``torch.nn.functional.interpolate(mode="bilinear", align_corners=False)``; ``resize_shorter`` and
``center_crop`` follow torchvision's ``Resize(int)`` and ``CenterCrop``. PIL images are accepted
when Pillow is installed (converted with ``np.asarray``); Pillow is never required.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from netdef.datasets import bilinear_matrix

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def as_hwc(image: Any) -> np.ndarray:
    """An ``(H, W, C)`` or ``(N, H, W, C)`` array from a NumPy array or a PIL image (``HW`` gets ``C = 1``)."""
    array = np.asarray(image)
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim not in (3, 4):
        raise ValueError(f"expected an HW, HWC or NHWC image, got an array of shape {array.shape}")
    if array.shape[-1] not in (1, 3, 4):
        raise ValueError(
            f"image of shape {array.shape}: the last axis must be channels (1, 3 or 4); "
            "transpose CHW images to HWC first"
        )
    return array


def resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of an ``(..., H, W, C)`` array to ``size = (height, width)``, in float64."""
    height, width = size
    if height < 1 or width < 1:
        raise ValueError(f"resize: size must be positive, got {size}")
    h, w = image.shape[-3], image.shape[-2]
    rows, cols = bilinear_matrix(h, height), bilinear_matrix(w, width)
    return np.einsum("ih,...hwc,jw->...ijc", rows, image.astype(np.float64), cols, optimize=True)  # two products


def shorter_side_size(h: int, w: int, shorter: int) -> tuple[int, int]:
    """torchvision's ``Resize(shorter)`` output size: the shorter side becomes ``shorter``, aspect kept."""
    if h <= w:
        return shorter, int(shorter * w / h)
    return int(shorter * h / w), shorter


def center_crop(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """The centre ``(height, width)`` of an ``(..., H, W, C)`` array (torchvision's rounding)."""
    height, width = size
    h, w = image.shape[-3], image.shape[-2]
    if height > h or width > w:
        raise ValueError(f"center_crop: crop {size} is larger than the image ({h}, {w})")
    top, left = int(round((h - height) / 2.0)), int(round((w - width) / 2.0))
    return image[..., top : top + height, left : left + width, :]


def _pair(size: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(size, int):
        return size, size
    height, width = size
    return int(height), int(width)


def preprocess_image(
    image: Any,
    size: int | Sequence[int] | None = None,
    *,
    resize_shorter: int | None = None,
    crop: int | Sequence[int] | None = None,
    mean: Sequence[float] | None = IMAGENET_MEAN,
    std: Sequence[float] | None = IMAGENET_STD,
    scale: float | None = None,
    dtype: Any = np.float32,
) -> np.ndarray:
    """An HWC (or NHWC) image -> a normalized ``(N, C, H, W)`` tensor.

    Steps, in order: drop an alpha channel; ``resize_shorter`` (keep aspect) or resize to ``size``;
    ``crop`` at the centre; multiply by ``scale`` (default ``1/255`` for integer images, ``1`` for
    float ones); ``(x - mean) / std`` per channel (ImageNet's by default, ``mean=None`` skips it);
    transpose to NCHW. ImageNet classifiers: ``preprocess_image(img, resize_shorter=256, crop=224)``.
    """
    array = as_hwc(image)
    if array.shape[-1] == 4:
        array = array[..., :3]
    integer = np.issubdtype(array.dtype, np.integer) or array.dtype == np.bool_
    x = array.astype(np.float64)
    if resize_shorter is not None:
        x = resize(x, shorter_side_size(x.shape[-3], x.shape[-2], resize_shorter))
    elif size is not None:
        x = resize(x, _pair(size))
    if crop is not None:
        x = center_crop(x, _pair(crop))
    x = x * (scale if scale is not None else (1 / 255 if integer else 1.0))
    channels = x.shape[-1]
    if mean is not None or std is not None:
        mean_arr = np.asarray(mean if mean is not None else [0.0] * channels, dtype=np.float64)
        std_arr = np.asarray(std if std is not None else [1.0] * channels, dtype=np.float64)
        if mean_arr.shape != (channels,) or std_arr.shape != (channels,):
            raise ValueError(
                f"image has {channels} channel(s) but mean has {mean_arr.size} and std {std_arr.size} values"
            )
        if np.any(std_arr == 0):
            raise ValueError(f"std must not contain zeros, got {tuple(std_arr)}")
        x = (x - mean_arr) / std_arr
    if x.ndim == 3:
        x = x[None]
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2), dtype=dtype)


def softmax(logits: Any, axis: int = -1) -> np.ndarray:
    """Numerically stable softmax (float64 internally, returned in the input's float dtype)."""
    x = np.asarray(logits)
    out_dtype = x.dtype if np.issubdtype(x.dtype, np.floating) else np.float64
    shifted = x.astype(np.float64) - np.max(x, axis=axis, keepdims=True)
    e = np.exp(shifted)
    return (e / e.sum(axis=axis, keepdims=True)).astype(out_dtype)


class Prediction(NamedTuple):
    index: int  # type: ignore[assignment]  # the field shadows tuple.index; the public name stays
    score: float
    label: str | None = None


def top_k(probs: Any, k: int = 5, labels: Sequence[str] | None = None) -> list:
    """The ``k`` highest scores, best first (ties: lower index first).

    ``probs`` of shape ``(C,)`` gives a list of :class:`Prediction`; ``(N, C)`` gives one list per row.
    """
    scores = np.asarray(probs.detach().cpu().numpy() if hasattr(probs, "detach") else probs)
    if scores.ndim not in (1, 2):
        raise ValueError(f"top_k: expected scores of shape (C,) or (N, C), got {scores.shape}")
    classes = scores.shape[-1]
    if not 1 <= k <= classes:
        raise ValueError(f"top_k: k must be between 1 and the number of classes {classes}, got {k}")
    if labels is not None and len(labels) != classes:
        raise ValueError(f"top_k: {len(labels)} labels given for {classes} classes")
    rows = scores[None] if scores.ndim == 1 else scores
    order = np.argsort(-rows.astype(np.float64), axis=-1, kind="stable")[:, :k]
    result = [
        [Prediction(int(i), float(row[i]), labels[i] if labels is not None else None) for i in idx]
        for row, idx in zip(rows, order, strict=True)
    ]
    return result[0] if scores.ndim == 1 else result


def load_labels(path: Any) -> list[str]:
    """Class labels, one per line (blank lines at the end ignored)."""
    from pathlib import Path

    lines = Path(path).read_text(encoding="utf-8").splitlines()
    while lines and not lines[-1].strip():
        lines.pop()
    return [line.strip() for line in lines]

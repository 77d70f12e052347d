"""Detection pre- and post-processing: letterbox images in, boxes on the original images out. NumPy only.

:func:`letterbox` resizes an image to fit ``size`` x ``size`` with its aspect ratio kept and
pads the rest with grey 114, centred, as Ultralytics' ``LetterBox`` does (its rounding of the
resized size and of the padding included); resizing is bilinear with half-pixel centres.
:func:`detections` turns an engine's fixed-size NMS outputs (``num_dets``, ``boxes``, ``scores``,
``classes``) back into boxes on each original image. :func:`draw` draws them with Pillow.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from netdef.runtime.preprocess import as_hwc, resize

PAD_VALUE = 114


class Letterboxed(NamedTuple):
    """A letterboxed image and how to map its coordinates back to the original."""

    image: np.ndarray
    """``(size, size, C)`` uint8."""
    gain: tuple[float, float]
    """Resized / original, per axis (height, width)."""
    pad: tuple[int, int]
    """Padding on the left and on the top, in pixels."""
    original_shape: tuple[int, int]
    """The original image's (height, width)."""


def letterbox(image: Any, size: int = 640, *, scaleup: bool = True, pad_value: int = PAD_VALUE) -> Letterboxed:
    """``image`` (HWC uint8, or a PIL image) resized to fit ``size`` x ``size`` and padded, centred."""
    array = as_hwc(image)
    if array.ndim != 3:
        raise ValueError(f"letterbox takes one HWC image, got an array of shape {array.shape}")
    h, w = array.shape[:2]
    r = min(size / h, size / w)
    if not scaleup:
        r = min(r, 1.0)
    new_w, new_h = max(round(w * r), 1), max(round(h * r), 1)
    dw, dh = (size - new_w) / 2, (size - new_h) / 2
    top, bottom = round(dh - 0.1), round(dh + 0.1)
    left, right = round(dw - 0.1), round(dw + 0.1)
    if (new_h, new_w) != (h, w):
        resized = np.clip(np.rint(resize(array, (new_h, new_w))), 0, 255).astype(np.uint8)
    else:
        resized = np.asarray(array, np.uint8)
    padded = np.full((new_h + top + bottom, new_w + left + right, array.shape[2]), pad_value, np.uint8)
    padded[top : top + new_h, left : left + new_w] = resized
    return Letterboxed(padded, (new_h / h, new_w / w), (left, top), (h, w))


def to_input(letterboxed: Sequence[Letterboxed]) -> np.ndarray:
    """A batch ``(N, 3, size, size)`` float32 in [0, 1], RGB, from letterboxed images."""
    return np.stack([np.ascontiguousarray(item.image[:, :, :3].transpose(2, 0, 1)) for item in letterboxed]).astype(
        np.float32
    ) / np.float32(255)


def scale_boxes(boxes: np.ndarray, letterboxed: Letterboxed) -> np.ndarray:
    """xyxy boxes on the letterboxed image -> on the original image, clipped to it."""
    left, top = letterboxed.pad
    gain_y, gain_x = letterboxed.gain
    h, w = letterboxed.original_shape
    out = np.array(boxes, np.float32, copy=True).reshape(-1, 4)
    out[:, [0, 2]] = np.clip((out[:, [0, 2]] - left) / gain_x, 0, w)
    out[:, [1, 3]] = np.clip((out[:, [1, 3]] - top) / gain_y, 0, h)
    return out


@dataclass(frozen=True)
class Detection:
    box: tuple[float, float, float, float]
    """x1, y1, x2, y2 in original-image pixels."""
    score: float
    class_id: int
    label: str


def detections(
    outputs: Mapping[str, np.ndarray], letterboxed: Sequence[Letterboxed], names: Mapping[int, str] | None = None
) -> list[list[Detection]]:
    """Each image's detections from the engine's ``num_dets``, ``boxes``, ``scores`` and ``classes``."""
    missing = [k for k in ("num_dets", "boxes", "scores", "classes") if k not in outputs]
    if missing:
        raise ValueError(f"detection outputs missing: {missing} (have {sorted(outputs)}); build with nms=True")
    names = names or {}
    found = []
    for i, item in enumerate(letterboxed):
        n = int(np.asarray(outputs["num_dets"])[i].reshape(-1)[0])
        boxes = scale_boxes(np.asarray(outputs["boxes"])[i, :n], item)
        scores, classes = np.asarray(outputs["scores"])[i, :n], np.asarray(outputs["classes"])[i, :n]
        found.append(
            [
                Detection(
                    (float(x1), float(y1), float(x2), float(y2)), float(s), int(c), names.get(int(c), str(int(c)))
                )
                for (x1, y1, x2, y2), s, c in zip(boxes, scores, classes, strict=True)
            ]
        )
    return found


_PALETTE = [(255, 56, 56), (255, 157, 151), (255, 112, 31), (255, 178, 29), (207, 210, 49), (72, 249, 10),
            (146, 204, 23), (61, 219, 134), (26, 147, 52), (0, 212, 187), (44, 153, 168), (0, 194, 255),
            (52, 69, 147), (100, 115, 255), (0, 24, 236), (132, 56, 255), (82, 0, 133), (203, 56, 255)]  # fmt: skip


def draw(image: Any, found: Sequence[Detection], path: Path | str) -> None:
    """Write ``image`` with each detection's box, label and score drawn, as a PNG (needs Pillow)."""
    try:
        from PIL import Image, ImageDraw, ImageFont
    except ImportError:
        raise ImportError("drawing detections needs Pillow: pip install pillow") from None
    canvas = Image.fromarray(np.asarray(as_hwc(image)[:, :, :3], np.uint8)).convert("RGB")
    pen = ImageDraw.Draw(canvas)
    font = ImageFont.load_default()
    width = max(1, round(max(canvas.size) / 300))
    for d in found:
        colour = _PALETTE[d.class_id % len(_PALETTE)]
        pen.rectangle(d.box, outline=colour, width=width)
        text = f"{d.label} {d.score:.2f}"
        left, top, right, bottom = pen.textbbox((0, 0), text, font=font)
        x, y = d.box[0], max(0.0, d.box[1] - (bottom - top) - 2)
        pen.rectangle((x, y, x + right - left + 2, y + bottom - top + 2), fill=colour)
        pen.text((x + 1, y), text, fill=(255, 255, 255), font=font)
    canvas.save(path, format="PNG")

"""Non-maximum suppression (``INMSLayer``): the boxes that survive, per batch item and class."""

from __future__ import annotations

import numpy as np

from netdef.backend import trt
from netdef.reference import costs
from netdef.reference.dtypes import FLOAT32, compute
from netdef.reference.registry import register


def corners(boxes: np.ndarray, box_format) -> np.ndarray:
    """Boxes [..., 4] as (low0, low1, high0, high1) corners, from CORNER_PAIRS or CENTER_SIZES.

    CORNER_PAIRS holds any two opposite corners (x1, y1, x2, y2) in either order; CENTER_SIZES holds
    (x_center, y_center, width, height).
    """
    boxes = boxes.astype(FLOAT32)
    if box_format == trt.BoundingBoxFormat.CENTER_SIZES:
        centre, half = boxes[..., :2], boxes[..., 2:] / 2
        return np.concatenate([centre - half, centre + half], axis=-1)
    return np.concatenate(
        [np.minimum(boxes[..., :2], boxes[..., 2:]), np.maximum(boxes[..., :2], boxes[..., 2:])], axis=-1
    )


def iou(box: np.ndarray, others: np.ndarray) -> np.ndarray:
    """Intersection over union of one corner box with each of ``others`` (0 where the union is empty)."""
    low = np.maximum(box[:2], others[:, :2])
    high = np.minimum(box[2:], others[:, 2:])
    intersection = np.prod(np.clip(high - low, 0, None), axis=-1)
    area = np.prod(box[2:] - box[:2])
    areas = np.prod(others[:, 2:] - others[:, :2], axis=-1)
    union = area + areas - intersection
    return np.divide(intersection, union, out=np.zeros_like(intersection), where=union > 0)


def suppress(boxes: np.ndarray, scores: np.ndarray, max_boxes: int, iou_threshold: float, score_threshold: float,
             limit: int) -> list[int]:  # fmt: skip
    """Greedy NMS of one class: indices of the kept boxes, highest score first.

    Boxes scoring above ``score_threshold`` are visited by decreasing score (ties by index), at most
    ``limit`` of them; a box is kept when its IoU with every kept box is at most ``iou_threshold``.
    """
    candidates = np.flatnonzero(scores > score_threshold)
    order = candidates[np.argsort(-scores[candidates], kind="stable")][:limit]
    kept: list[int] = []
    for index in order:
        if len(kept) >= max_boxes:
            break
        if not kept or np.all(iou(boxes[index], boxes[kept]) <= iou_threshold):
            kept.append(int(index))
    return kept


def _scalar(inputs, index: int, default: float) -> float:
    if len(inputs) > index and inputs[index] is not None:
        return float(np.asarray(inputs[index]).reshape(()))
    return default


@register(
    "NMS",
    "INMSLayer",
    ("bounding_box_format", "topk_box_limit", "indices_type"),
    family="detection",
    flops=costs.data_dependent,
)
def nms(node, inputs):
    """Non-maximum suppression per batch item and class: outputs the kept (batch, class, box) rows and their count.

    Inputs: boxes [B, N, 4] (shared by all classes) or [B, N, C, 4]; scores [B, N, C];
    max_output_boxes_per_class (0-d int32); optional iou_threshold (input 3, default 0) and
    score_threshold (input 4, default 0). Per (batch, class): greedy suppression of the boxes whose
    score exceeds score_threshold (at most ``topk_box_limit`` of them, best first), keeping a box when
    its IoU with every kept box is <= iou_threshold, at most max_output_boxes_per_class boxes.
    Output 0 is [K, 3] (``indices_type``) sorted by batch, then by decreasing score; equal scores
    are ordered by class, then box index (TensorRT leaves that order unspecified). Output 1 is K
    (0-d int32). K depends on the data: TensorRT infers output 0 as [-1, 3].
    """
    raw_boxes, scores = compute(inputs[0]), compute(inputs[1])
    max_boxes = int(np.asarray(inputs[2]).reshape(()))
    iou_threshold = _scalar(inputs, 3, 0.0)
    score_threshold = _scalar(inputs, 4, 0.0)
    limit = int(node.attr("topk_box_limit"))
    boxes = corners(raw_boxes, node.attr("bounding_box_format"))
    batch, _, classes = scores.shape
    rows = []
    for b in range(batch):
        selected = []
        for c in range(classes):
            class_boxes = boxes[b, :, c] if boxes.ndim == 4 else boxes[b]
            for index in suppress(class_boxes, scores[b, :, c], max_boxes, iou_threshold, score_threshold, limit):
                selected.append((-scores[b, index, c], c, index))
        rows.extend((b, c, index) for _, c, index in sorted(selected))
    selected_indices = np.asarray(rows, dtype=node.output_dtypes[0]).reshape(-1, 3)
    return [selected_indices, np.asarray(len(rows), dtype=node.output_dtypes[1])]

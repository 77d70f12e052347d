"""Ops for object detection: resizing, splits, top-k, batched gathers, comparisons and an in-engine NMS.

:meth:`DetectionOps.greedy_nms` is greedy, class-aware NMS built from static-shape
layers only (no ``INMSLayer``, no ``NonZero``: TensorRT-RTX builds neither), so the engine's
outputs have fixed shapes any runtime can bind:

1. the ``candidates`` best-scoring boxes (TopK), valid where their score is above ``conf``;
2. their pairwise IoU, computed as Ultralytics and torchvision compute it (class-aware NMS by
   shifting each box by ``class * 7680`` pixels, unless ``agnostic``);
3. the greedy result as the fixed point of ``keep[i] = valid[i] and no kept j before i overlaps
   i``, iterated in an ``ILoop`` until nothing changes. Each iteration fixes at least one more
   candidate, in score order, and the fixed point is unique, so the loop ends with exactly the
   boxes that greedy NMS keeps;
4. the first ``max_det`` kept boxes in score order (a second TopK over ``keep * (K - index)``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from netdef.backend import trt
from netdef.errors import NetworkDefinitionError
from netdef.network.core import Tensor
from netdef.network.native import NativeOps

MAX_WH = 7680
"""Pixels each class's boxes are shifted by for class-aware NMS (Ultralytics' ``max_wh``)."""


class DetectionOps(NativeOps):
    # ------------------------------------------------------------------ shape and indexing

    def upsample(self, x: Tensor, scale_factor: int, mode: str = "nearest", *, name: str | None = None) -> Tensor:
        """``nn.Upsample(scale_factor=s, mode="nearest")`` on the last two axes: pixel ``(i, j)`` of the output
        is input pixel ``(i // s, j // s)``."""
        if mode != "nearest":
            raise NetworkDefinitionError(f"upsample: mode {mode!r} is not supported (only 'nearest')")
        layer = self.trt_network.add_resize(x)
        rank = len(self.shape_of(x))
        layer.scales = [1.0] * (rank - 2) + [float(scale_factor)] * 2
        layer.resize_mode = trt.InterpolationMode.NEAREST
        layer.coordinate_transformation = trt.ResizeCoordinateTransformation.ASYMMETRIC
        layer.nearest_rounding = trt.ResizeRoundMode.FLOOR
        return self._named(layer, "upsample", name).get_output(0)

    def split(self, x: Tensor, sizes: Sequence[int], dim: int, *, name: str | None = None) -> list[Tensor]:
        """``torch.split(x, sizes, dim)``: consecutive pieces of ``x`` along ``dim`` (constant-index gathers, so a
        dynamic batch needs no shape arithmetic)."""
        base = self.names.local("split", name)
        rank = len(self.shape_of(x))
        axis = dim % rank
        pieces, start = [], 0
        for i, size in enumerate(sizes):
            index = self._fixed(f"{base}.{i}.indices", np.arange(start, start + size, dtype=np.int32))
            layer = self.trt_network.add_gather(x, index, axis)
            pieces.append(self._named(layer, "split", f"{base}.{i}").get_output(0))
            start += size
        return pieces

    def topk(self, x: Tensor, k: int, dim: int = -1, *, name: str | None = None) -> tuple[Tensor, Tensor]:
        """``torch.topk(x, k, dim)``: the ``k`` largest values along ``dim``, in decreasing order, and their
        int32 indices."""
        rank = len(self.shape_of(x))
        layer = self.trt_network.add_topk(x, trt.TopKOperation.MAX, int(k), 1 << (dim % rank))
        layer = self._named(layer, "topk", name)
        return layer.get_output(0), layer.get_output(1)

    def take_along_rows(self, x: Tensor, index: Tensor, *, name: str | None = None) -> Tensor:
        """Rows ``index[b]`` of each ``x[b]``: ``x`` (B, N, ...) and int32 ``index`` (B, K) give (B, K, ...)."""
        layer = self.trt_network.add_gather(x, index, 1)
        layer.num_elementwise_dims = 1
        return self._named(layer, "take_along_rows", name).get_output(0)

    # ------------------------------------------------------------------ element-wise maths and logic

    def _binary(self, a: Tensor, b: Tensor, op: Any, kind: str, name: str | None) -> Tensor:
        a, b = self._same_rank(a, b)
        return self._named(self.trt_network.add_elementwise(a, b, op), kind, name).get_output(0)

    def div(self, a: Tensor, b: Tensor, *, name: str | None = None) -> Tensor:
        """``a / b`` with broadcasting."""
        return self._binary(a, b, trt.ElementWiseOperation.DIV, "div", name)

    def minimum(self, a: Tensor, b: Tensor, *, name: str | None = None) -> Tensor:
        """``torch.minimum(a, b)``."""
        return self._binary(a, b, trt.ElementWiseOperation.MIN, "minimum", name)

    def maximum(self, a: Tensor, b: Tensor, *, name: str | None = None) -> Tensor:
        """``torch.maximum(a, b)``."""
        return self._binary(a, b, trt.ElementWiseOperation.MAX, "maximum", name)

    def greater(self, a: Tensor, b: Tensor, *, name: str | None = None) -> Tensor:
        """``a > b`` (bool)."""
        return self._binary(a, b, trt.ElementWiseOperation.GREATER, "greater", name)

    def logical_and(self, a: Tensor, b: Tensor, *, name: str | None = None) -> Tensor:
        """``a & b`` on bool tensors."""
        return self._binary(a, b, trt.ElementWiseOperation.AND, "and", name)

    def reduce(
        self, x: Tensor, op: str, dim: int | Sequence[int], *, keepdim: bool = False, name: str | None = None
    ) -> Tensor:
        """``x.sum/amax/amin(dim, keepdim)``: ``op`` is ``"sum"``, ``"max"`` or ``"min"``."""
        rank = len(self.shape_of(x))
        dims = [dim] if isinstance(dim, int) else list(dim)
        mask = sum(1 << (d % rank) for d in dims)
        kind = {"sum": trt.ReduceOperation.SUM, "max": trt.ReduceOperation.MAX, "min": trt.ReduceOperation.MIN}[op]
        return self._named(self.trt_network.add_reduce(x, kind, mask, keepdim), op, name).get_output(0)

    def float_scalar(self, value: float, rank: int, name: str) -> Tensor:
        """A float32 constant ``value`` of rank ``rank`` (all dimensions 1), in any network precision."""
        return self._fixed(name, np.full((1,) * rank, value, np.float32))

    # ------------------------------------------------------------------ box decoding

    def dfl(self, x: Tensor, name: str, reg_max: int = 16) -> Tensor:
        """Distribution focal loss integral (Ultralytics' ``DFL``): each box side's distance is the softmax-weighted
        sum of its ``reg_max`` bins, weighted by ``{name}.conv.weight`` (1, reg_max, 1, 1), in float32:
        (B, 4 * reg_max, A) -> (B, 4, A)."""
        weight = self._param(f"{name}.conv.weight", (1, reg_max, 1, 1)).reshape(1, 1, reg_max, 1)
        x = self.cast(x, trt.float32, name=f"{name}.float")
        bins = self.softmax(self.reshape(x, (0, 4, reg_max, -1), name=f"{name}.bins"), 2, name=f"{name}.softmax")
        weighted = self.mul(bins, self._fixed(f"{name}.conv.weight", np.ascontiguousarray(weight, np.float32)),
                            name=f"{name}.weighted")  # fmt: skip
        return self.reduce(weighted, "sum", 2, name=name)

    def decode_anchors(
        self, distances: Tensor, feature_sizes: Sequence[Sequence[int]], strides: Sequence[int], *, name: str
    ) -> Tensor:
        """Left/top/right/bottom distances (B, 4, A) around every cell centre of the feature maps (row-major, level
        after level) -> xywh boxes in input pixels (Ultralytics' ``dist2bbox`` times the stride), float32."""
        grid, stride = anchor_grid(feature_sizes, strides)
        lt, rb = self.split(distances, [2, 2], 1, name=f"{name}.ltrb")
        points = self._fixed(f"{name}.anchors", grid)
        x1y1 = self.sub(points, lt, name=f"{name}.x1y1")
        x2y2 = self.add(points, rb, name=f"{name}.x2y2")
        corners = self.add(x1y1, x2y2, name=f"{name}.corner_sum")
        centre = self.div(corners, self.float_scalar(2.0, 3, f"{name}.two"), name=f"{name}.centre")
        size = self.sub(x2y2, x1y1, name=f"{name}.size")
        xywh = self.concat([centre, size], 1, name=f"{name}.xywh_grid")
        return self.mul(xywh, self._fixed(f"{name}.strides", stride), name=name)

    # ------------------------------------------------------------------ non-maximum suppression

    def greedy_nms(
        self,
        prediction: Tensor,
        num_classes: int,
        *,
        conf: float = 0.25,
        iou: float = 0.7,
        max_det: int = 300,
        agnostic: bool = False,
        candidates: int = 1000,
    ) -> dict[str, Tensor]:
        """Greedy NMS of ``prediction`` (B, 4 + nc, anchors): xywh boxes and class scores, float32.

        Returns ``num_dets`` (B, 1) int32, ``boxes`` (B, max_det, 4) xyxy float32, ``scores``
        (B, max_det) float32 and ``classes`` (B, max_det) int32; rows past ``num_dets`` are zero.
        The same boxes as Ultralytics' ``non_max_suppression`` (best class per box, score > ``conf``,
        IoU > ``iou`` suppresses) whenever at most ``candidates`` boxes score above ``conf``.
        """
        anchors = self.shape_of(prediction)[2]
        k = min(int(candidates), anchors)
        if not 0 < max_det <= k:
            raise NetworkDefinitionError(f"non_max_suppression: max_det {max_det} must be in 1..{k} (candidates)")
        with self.scope("nms"):
            boxes_xywh, class_scores = self.split(prediction, [4, num_classes], 1, name="split")
            best, best_class = self.topk(class_scores, 1, 1, name="best_class")  # (B, 1, A): max and argmax
            best = self.reshape(best, (0, anchors), name="best_score")
            best_class = self.cast(self.reshape(best_class, (0, anchors), name="best_class_flat"), trt.float32)
            score, index = self.topk(best, k, 1, name="candidates")  # (B, K), decreasing
            boxes = self._xyxy(self.take_along_rows(self.permute(boxes_xywh, (0, 2, 1)), index, name="boxes"))
            cls = self.take_along_rows(best_class, index, name="classes")  # (B, K)
            valid = self.greater(score, self.float_scalar(conf, 2, "conf"), name="valid")
            suppresses = self._suppression_matrix(boxes, cls, k, iou, agnostic)
            keep = self._greedy_keep(self.cast(valid, trt.float32, name="valid_f"), suppresses, k)
            return self._first_kept(keep, boxes, score, cls, k, max_det)

    def _xyxy(self, xywh: Tensor) -> Tensor:
        """(B, K, 4) centre-size boxes -> corners, as Ultralytics' ``xywh2xyxy`` computes them."""
        centre, size = self.split(xywh, [2, 2], 2, name="xywh")
        half = self.div(size, self.float_scalar(2.0, 3, "two"), name="half_size")
        return self.concat([self.sub(centre, half, name="x1y1"), self.add(centre, half, name="x2y2")], 2, name="xyxy")

    def _suppression_matrix(self, boxes: Tensor, cls: Tensor, k: int, iou: float, agnostic: bool) -> Tensor:
        """(B, K, K) float32: 1 where candidate j (row) comes before i (column) and their IoU exceeds ``iou``."""
        shifted = boxes
        if not agnostic:
            offset = self.mul(cls, self.float_scalar(float(MAX_WH), 2, "max_wh"), name="class_offset")
            shifted = self.add(boxes, self.reshape(offset, (0, k, 1), name="class_offset_col"), name="shifted")
        x1, y1, x2, y2 = self.split(shifted, [1, 1, 1, 1], 2, name="corner")  # (B, K, 1) each

        def row(t: Tensor, label: str) -> Tensor:  # (B, K, 1) -> (B, 1, K)
            return self.reshape(t, (0, 1, k), name=f"{label}_row")

        area = self.mul(self.sub(x2, x1, name="width"), self.sub(y2, y1, name="height"), name="area")
        zero = self.float_scalar(0.0, 3, "zero")
        inter_w = self.maximum(
            self.sub(self.minimum(x2, row(x2, "x2")), self.maximum(x1, row(x1, "x1")), name="overlap_w"),
            zero,
            name="inter_w",
        )
        inter_h = self.maximum(
            self.sub(self.minimum(y2, row(y2, "y2")), self.maximum(y1, row(y1, "y1")), name="overlap_h"),
            zero,
            name="inter_h",
        )
        inter = self.mul(inter_w, inter_h, name="inter")
        union = self.sub(self.add(area, row(area, "area"), name="area_sum"), inter, name="union")
        overlaps = self.greater(self.div(inter, union, name="iou"), self.float_scalar(iou, 3, "iou_threshold"))
        earlier = self._fixed("earlier", np.triu(np.ones((k, k), bool), 1)[None])  # j < i
        return self.cast(self.logical_and(overlaps, earlier, name="suppresses_b"), trt.float32, name="suppresses")

    def _greedy_keep(self, valid: Tensor, suppresses: Tensor, k: int) -> Tensor:
        """(B, K) float32 0/1: the fixed point of ``keep = valid * (keep @ suppresses == 0)``, by an ILoop.

        ``changed`` (shape (1,): TensorRT cannot infer the type of a 0-d reduction inside a loop) says
        whether the last iteration changed ``keep``; the loop runs while it did. The loop's output is
        the ``keep`` recurrence's last value (TensorRT takes LAST_VALUE only from a recurrence): the
        iteration that found no change started from the fixed point.
        """
        loop = self.loop(name="greedy")
        keep = loop.carry(valid, name="greedy.keep")
        changed = loop.carry(self.float_scalar(1.0, 1, "greedy.start"), name="greedy.changed")
        go = self.greater(changed, self.float_scalar(0.5, 1, "greedy.half"), name="greedy.go")
        loop.while_(self.reshape(go, (), name="greedy.go_scalar"), name="greedy.while")
        row = self.reshape(keep, (0, 1, k), name="greedy.keep_row")
        hits = self.reshape(self.matmul(row, suppresses, name="greedy.hits"), (0, k), name="greedy.hits_flat")
        free = self.cast(self.greater(self.float_scalar(0.5, 2, "greedy.half2"), hits, name="greedy.free_b"),
                         trt.float32, name="greedy.free")  # fmt: skip
        new_keep = self.mul(valid, free, name="greedy.new_keep")
        difference = self._abs(self.sub(new_keep, keep, name="greedy.diff"))
        changes = self.reduce(difference, "max", [0, 1], keepdim=True, name="greedy.changes")  # (1, 1)
        loop.update(keep, new_keep)
        loop.update(changed, self.reshape(changes, (1,), name="greedy.changes_flat"))
        return loop.last(keep, name="greedy.keep_final")

    def _abs(self, x: Tensor) -> Tensor:
        layer = self.trt_network.add_unary(x, trt.UnaryOperation.ABS)
        return self._named(layer, "abs", None).get_output(0)

    def _first_kept(self, keep: Tensor, boxes: Tensor, score: Tensor, cls: Tensor, k: int, max_det: int):
        """The first ``max_det`` kept candidates (score order) as the four fixed-size outputs."""
        rank_key = self.mul(keep, self._fixed("rank", np.arange(k, 0, -1, dtype=np.float32)[None]), name="key")
        order_key, order = self.topk(rank_key, max_det, 1, name="kept")  # (B, max_det): earliest kept first
        present = self.cast(self.greater(order_key, self.float_scalar(0.5, 2, "half")), trt.float32, name="present")
        out_boxes = self.mul(self.take_along_rows(boxes, order, name="kept_boxes"),
                             self.reshape(present, (0, max_det, 1), name="present_col"), name="boxes_out")  # fmt: skip
        out_scores = self.mul(self.take_along_rows(score, order, name="kept_scores"), present, name="scores_out")
        out_classes = self.cast(
            self.mul(self.take_along_rows(cls, order, name="kept_classes"), present, name="classes_f"),
            trt.int32,
            name="classes_out",
        )
        count = self.reduce(present, "sum", 1, keepdim=True, name="count")
        return {
            "num_dets": self.cast(count, trt.int32, name="num_dets_i"),
            "boxes": out_boxes,
            "scores": out_scores,
            "classes": out_classes,
        }


def anchor_grid(sizes: Sequence[Sequence[int]], strides: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Cell centres ``(x + 0.5, y + 0.5)`` of every level, row-major, as (1, 2, A), and each one's stride (1, 1, A)."""
    points, stride = [], []
    for (h, w), s in zip(sizes, strides, strict=True):
        ys, xs = np.meshgrid(np.arange(h, dtype=np.float32) + 0.5, np.arange(w, dtype=np.float32) + 0.5, indexing="ij")
        points.append(np.stack([xs.ravel(), ys.ravel()]))
        stride.append(np.full((1, h * w), s, np.float32))
    return np.concatenate(points, 1)[None], np.concatenate(stride, 1)[None]

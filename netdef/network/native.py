"""TensorRT's own layers for what PyTorch writes as Python control flow or fused kernels.

Loops (a GRU over a sequence), native attention, grid sampling (spatial transformers), non-maximum
suppression and one-hot encoding. Each method names its layers in the current scope and reads
weights the way PyTorch's module stores them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from netdef.backend import trt
from netdef.errors import NetworkDefinitionError
from netdef.network.layers import LayersMixin

Tensor = Any  # trt.ITensor

_INTERPOLATION = {
    "nearest": trt.InterpolationMode.NEAREST,
    "bilinear": trt.InterpolationMode.LINEAR,
    "bicubic": trt.InterpolationMode.CUBIC,
}
_PADDING = {"zeros": trt.SampleMode.FILL, "border": trt.SampleMode.CLAMP, "reflection": trt.SampleMode.REFLECT}
_BOX_FORMATS = {"xyxy": trt.BoundingBoxFormat.CORNER_PAIRS, "cxcywh": trt.BoundingBoxFormat.CENTER_SIZES}


class Loop:
    """A TensorRT loop under construction: iterate over tensors, carry values, collect results.

    >>> loop = net.loop(count=steps, name="rnn")          # doctest: +SKIP
    >>> x_t = loop.iterate(x, dim=1)                      # one time step per iteration
    >>> h = loop.carry(h0)                                # h0 in the first iteration
    >>> loop.update(h, net.tanh(net.add(x_t, h)))         # the value of h in the next iteration
    >>> h_last, every_h = loop.last(h), loop.stack(h_next, dim=1)
    """

    def __init__(self, net: NativeOps, name: str, count: int | Tensor | None):
        self.net = net
        self.name = name
        self.trt_loop = net.trt_network.add_loop()
        self.trt_loop.name = net.names.qualified(name)
        self._carried: dict[str, Any] = {}
        self._count = None if count is None else self._scalar(count)
        if self._count is not None:
            layer = self.trt_loop.add_trip_limit(self._count, trt.TripLimit.COUNT)
            net._named(layer, f"{name}.count")

    def _scalar(self, value: int | Tensor) -> Tensor:
        if isinstance(value, (int, np.integer)):
            return self.net._fixed(f"{self.name}.trips", np.array(int(value), np.int32))
        return value

    def iterate(self, x: Tensor, dim: int = 0, *, reverse: bool = False, name: str | None = None) -> Tensor:
        """The slice of ``x`` along ``dim`` for the current iteration (last slice first with ``reverse``)."""
        dim %= len(self.net.shape_of(x))
        layer = self.trt_loop.add_iterator(x, dim, reverse)
        return self.net._named(layer, f"{self.name}.iterate", name).get_output(0)

    def carry(self, initial: Tensor, *, name: str | None = None) -> Tensor:
        """A loop-carried value: ``initial`` in the first iteration; set the next value with :meth:`update`."""
        layer = self.trt_loop.add_recurrence(initial)
        out = self.net._named(layer, f"{self.name}.carry", name).get_output(0)
        self._carried[out.name] = layer
        return out

    def update(self, carried: Tensor, next_value: Tensor) -> None:
        """Give a carried value (from :meth:`carry`) its value for the next iteration."""
        layer = self._carried.get(carried.name)
        if layer is None:
            raise NetworkDefinitionError(f"loop {self.name!r}: {carried.name!r} is not a value carried by this loop")
        layer.set_input(1, next_value)

    def while_(self, condition: Tensor, *, name: str | None = None) -> None:
        """Keep iterating while the 0-d bool ``condition`` (computed from carried values) is true."""
        layer = self.trt_loop.add_trip_limit(condition, trt.TripLimit.WHILE)
        self.net._named(layer, f"{self.name}.while", name)

    def last(self, carried: Tensor, *, name: str | None = None) -> Tensor:
        """The final value of a carried value, after the last iteration."""
        layer = self.trt_loop.add_loop_output(carried, trt.LoopOutput.LAST_VALUE, 0)
        return self.net._named(layer, f"{self.name}.last", name).get_output(0)

    def stack(self, value: Tensor, dim: int = 0, *, reverse: bool = False, name: str | None = None) -> Tensor:
        """Every iteration's ``value`` stacked along a new axis ``dim`` (last iteration first with ``reverse``)."""
        if self._count is None:
            raise NetworkDefinitionError(f"loop {self.name!r}: stacking outputs needs a count (net.loop(count=...))")
        kind = trt.LoopOutput.REVERSE if reverse else trt.LoopOutput.CONCATENATE
        layer = self.trt_loop.add_loop_output(value, kind, dim % (len(self.net.shape_of(value)) + 1))
        layer.set_input(1, self._count)
        return self.net._named(layer, f"{self.name}.stack", name).get_output(0)


class Conditional:
    """A TensorRT if/else under construction: bring tensors in, pick each output from one branch.

    >>> branch = net.conditional(flag, name="branch")   # doctest: +SKIP
    >>> x_in = branch.input(x)
    >>> y = branch.output(net.relu(x_in), net.neg(x_in))  # only the chosen branch runs
    """

    def __init__(self, net: NativeOps, name: str, condition: Tensor):
        self.net = net
        self.name = name
        self.trt_conditional = net.trt_network.add_if_conditional()
        self.trt_conditional.name = net.names.qualified(name)
        net._named(self.trt_conditional.set_condition(condition), "condition", f"{name}.condition")

    def input(self, x: Tensor, *, name: str | None = None) -> Tensor:
        """``x`` as seen inside the branches."""
        layer = self.trt_conditional.add_input(x)
        return self.net._named(layer, f"{self.name}.input", name).get_output(0)

    def output(self, then_value: Tensor, else_value: Tensor, *, name: str | None = None) -> Tensor:
        """``then_value`` when the condition holds, else ``else_value``."""
        layer = self.trt_conditional.add_output(then_value, else_value)
        return self.net._named(layer, f"{self.name}.output", name).get_output(0)


class NativeOps(LayersMixin):
    """Loops, native attention, grid sampling, NMS and one-hot, as :class:`~netdef.network.Network` methods."""

    # ------------------------------------------------------------------ loops

    def loop(self, count: int | Tensor | None = None, *, name: str | None = None) -> Loop:
        """A new loop running ``count`` times (an int or a 0-d int32 tensor); see :class:`Loop`."""
        return Loop(self, self.names.local("loop", name), count)

    def gru(self, x: Tensor, name: str, hidden_size: int, h0: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """One-layer batch-first ``torch.nn.GRU`` over x [N, T, I]: returns (every h [N, T, H], the last h [N, H]).

        Reads ``{name}.weight_ih_l0`` [3H, I], ``weight_hh_l0`` [3H, H], ``bias_ih_l0``, ``bias_hh_l0`` (gates
        r, z, n in PyTorch's order). The input projections of all steps are one matrix product before
        the loop; each iteration computes r = σ(xr + hr), z = σ(xz + hz), n = tanh(xn + r * hn),
        h' = (1 - z) * n + z * h.
        """
        n, steps, features = self.shape_of(x)
        if steps == -1:
            raise NetworkDefinitionError(f"gru {self.names.qualified(name)!r}: the sequence length must be static")
        size = hidden_size
        w_ih = self._param(f"{name}.weight_ih_l0", (3 * size, features))
        w_hh = self._param(f"{name}.weight_hh_l0", (3 * size, size))
        b_ih = self._param(f"{name}.bias_ih_l0", (3 * size,))
        b_hh = self._param(f"{name}.bias_hh_l0", (3 * size,))
        with self.scope(name):
            projected = self._linear_constant(x, "weight_ih_l0", w_ih[None], b_ih, "input_projection")
            if h0 is None:
                h0 = self._zeros_like_batch(x, size, "h0")
            loop = self.loop(steps, name="steps")
            x_t = loop.iterate(projected, dim=1)
            h = loop.carry(h0, name="h")
            hh = self._linear_constant(h, "weight_hh_l0", w_hh, b_hh, "hidden_projection")
            xr, xz, xn = (self._columns(x_t, i * size, size, f"x_{gate}") for i, gate in enumerate("rzn"))
            hr, hz, hn = (self._columns(hh, i * size, size, f"hh_{gate}") for i, gate in enumerate("rzn"))
            r = self.sigmoid(self.add(xr, hr, name="r_sum"), name="r")
            z = self.sigmoid(self.add(xz, hz, name="z_sum"), name="z")
            candidate = self.tanh(self.add(xn, self.mul(r, hn, name="r_hn"), name="n_sum"), name="n")
            # h' = n + z * (h - n)
            h_next = self.add(
                candidate, self.mul(z, self.sub(h, candidate, name="h_minus_n"), name="z_h"), name="h_next"
            )
            loop.update(h, h_next)
            return loop.stack(h_next, dim=1, name="output"), loop.last(h, name="h_n")

    def _linear_constant(self, x: Tensor, weight_name: str, weight: np.ndarray, bias: np.ndarray, name: str) -> Tensor:
        """x @ weight.T + bias, the weight kept in the checkpoint's layout (named after its key, so refit finds it)."""
        w = self._constant(weight_name, weight)
        layer = self.trt_network.add_matrix_multiply(x, trt.MatrixOperation.NONE, w, trt.MatrixOperation.TRANSPOSE)
        y = self._named(layer, name).get_output(0)
        rank = len(self.shape_of(y))
        b = self._constant(weight_name.replace("weight", "bias"), bias.reshape((1,) * (rank - 1) + (-1,)))
        return self.add(y, b, name=f"{name}.bias_add")

    def _fixed(self, name: str, array: np.ndarray) -> Tensor:
        """A constant of the architecture (counts, thresholds, grids) that keeps ``array``'s own dtype."""
        full = self.names.qualified(name)
        entry = self.weight_table.add(full, array, role="fixed", dtype=array.dtype)
        layer = self.trt_network.add_constant(entry.array.shape, entry.trt)
        return self._named(layer, "constant", name).get_output(0)

    def _columns(self, x: Tensor, start: int, size: int, name: str) -> Tensor:
        """Columns start .. start + size - 1 of a [N, C] tensor (a gather, so the batch may be dynamic)."""
        indices = self._fixed(f"{name}.columns", np.arange(start, start + size, dtype=np.int32))
        return self._named(self.trt_network.add_gather(x, indices, 1), "gather", name).get_output(0)

    def _zeros_like_batch(self, x: Tensor, size: int, name: str) -> Tensor:
        """Zeros [N, size] for x's batch N: a constant for a static batch, else a FILL of the run's batch."""
        n = self.shape_of(x)[0]
        if n != -1:
            return self._constant(name, np.zeros((n, size), np.float32), role="fixed")
        batch = self.trt_network.add_slice(self._named(self.trt_network.add_shape(x), "shape", f"{name}.shape")
                                           .get_output(0), (0,), (1,), (1,))  # fmt: skip
        dims = self.trt_network.add_concatenation(
            [self._named(batch, "slice", f"{name}.batch").get_output(0), self._fixed(f"{name}.size", np.array([size]))]
        )
        fill = self.trt_network.add_fill((0, 0), trt.FillOperation.LINSPACE, trt.float32)
        fill.set_input(0, self._named(dims, "concat", f"{name}.dims").get_output(0))
        fill.set_input(1, self._fixed(f"{name}.zero", np.array(0.0, np.float32)))
        fill.set_input(2, self._fixed(f"{name}.steps", np.zeros(2, np.float32)))
        zeros = self._named(fill, "fill", name).get_output(0)
        return self.cast(zeros, self.precision.trt, name=f"{name}.cast")

    # ------------------------------------------------------------------ attention

    def native_attention(
        self,
        query: Tensor,
        key: Tensor,
        value: Tensor,
        attn_mask: Tensor | None = None,
        *,
        is_causal: bool = False,
        scale: float | None = None,
        name: str | None = None,
    ) -> Tensor:
        """``torch.nn.functional.scaled_dot_product_attention`` as one TensorRT attention layer (IAttention).

        q [N, Hq, L, E], k and v [N, Hkv, S, E] (grouped-query attention when Hq is a multiple of Hkv).
        ``scale`` (default 1/sqrt(E)) multiplies q before the layer, which does not scale. A bool mask
        marks the positions allowed to attend; a float mask is added to the scores. ``is_causal``
        is PyTorch's top-left aligned causal mask. The attention is marked decomposable, so TensorRT
        may split it where no fused kernel fits.
        """
        full = self.names.local("attention", name)
        depth = self.shape_of(query)[-1]
        factor = 1 / math.sqrt(depth) if scale is None else scale
        if factor != 1:
            query = self.mul(query, self.scalar(factor, query, name=f"{full}.scale"), name=f"{full}.scaled_query")
        causal = trt.CausalMaskKind.UPPER_LEFT if is_causal else trt.CausalMaskKind.NONE
        attention = self.trt_network.add_attention_v2(query, key, value, trt.AttentionNormalizationOp.SOFTMAX, causal)
        if attention is None:
            raise NetworkDefinitionError(f"TensorRT refused attention {self.names.qualified(full)!r} (see its log)")
        if attn_mask is not None:
            attention.mask = attn_mask
        attention.decomposable = True
        attention.name = self.names.qualified(full)
        network = self.trt_network  # name the ATTENTION_INPUT and ATTENTION_OUTPUT layers it just added
        self._named(network.get_layer(network.num_layers - 2), f"{full}.input")
        self._named(network.get_layer(network.num_layers - 1), full, full)
        return attention.get_output(0)

    # ------------------------------------------------------------------ sampling

    def grid_sample(
        self,
        x: Tensor,
        grid: Tensor,
        mode: str = "bilinear",
        padding_mode: str = "zeros",
        align_corners: bool = False,
        *,
        name: str | None = None,
    ) -> Tensor:
        """``torch.nn.functional.grid_sample``: x [N, C, H, W] read at grid [N, Ho, Wo, 2] (x, y in [-1, 1])."""
        layer = self.trt_network.add_grid_sample(x, grid)
        layer.interpolation_mode = _choice(_INTERPOLATION, mode, "grid_sample mode")
        layer.sample_mode = _choice(_PADDING, padding_mode, "grid_sample padding_mode")
        layer.align_corners = bool(align_corners)
        return self._named(layer, "grid_sample", name).get_output(0)

    def affine_grid(
        self, theta: Tensor, size: Sequence[int], align_corners: bool = False, *, name: str | None = None
    ) -> Tensor:
        """``torch.nn.functional.affine_grid``: theta [N, 2, 3] and size (N, C, H, W) -> grid [N, H, W, 2].

        grid[n, i, j] = theta[n] @ (x_j, y_i, 1), with x_j and y_i the normalized pixel centres (pixel
        corners' centres with ``align_corners``): a constant base grid times theta transposed.
        """
        full = self.names.local("affine_grid", name)
        _, _, height, width = size
        xs, ys = (_normalized_positions(n, align_corners) for n in (width, height))
        base = np.stack([np.tile(xs, height), np.repeat(ys, width), np.ones(height * width)], axis=-1)
        points = self._constant(f"{full}.base", base.astype(np.float32)[None], role="fixed")  # [1, H*W, 3]
        layer = self.trt_network.add_matrix_multiply(
            points, trt.MatrixOperation.NONE, theta, trt.MatrixOperation.TRANSPOSE
        )
        grid = self._named(layer, f"{full}.transform").get_output(0)  # [N, H*W, 2]
        return self.reshape(grid, (0, height, width, 2), name=full)

    # ------------------------------------------------------------------ detection

    def non_max_suppression(
        self,
        boxes: Tensor,
        scores: Tensor,
        max_output_boxes_per_class: int,
        iou_threshold: float,
        score_threshold: float = 0.0,
        *,
        box_format: str = "xyxy",
        name: str | None = None,
    ) -> tuple[Tensor, Tensor]:
        """TensorRT's NMS per batch item and class: returns (selected [K, 3] of (batch, class, box), K).

        boxes [N, B, 4] (``xyxy`` corners or ``cxcywh``), scores [N, B, C]. A box is kept when its score
        exceeds ``score_threshold`` and its IoU with every kept box of its class is at most ``iou_threshold``.
        K depends on the data. TensorRT-RTX cannot build this layer on the CPU.
        """
        full = self.names.local("nms", name)
        limit = self._fixed(f"{full}.max_boxes", np.array(max_output_boxes_per_class, np.int32))
        layer = self.trt_network.add_nms(boxes, scores, limit)
        layer.set_input(3, self._fixed(f"{full}.iou_threshold", np.array(iou_threshold, np.float32)))
        layer.set_input(4, self._fixed(f"{full}.score_threshold", np.array(score_threshold, np.float32)))
        layer.bounding_box_format = _choice(_BOX_FORMATS, box_format, "box_format")
        self._named(layer, "nms", full)
        return layer.get_output(0), layer.get_output(1)

    def one_hot(self, indices: Tensor, num_classes: int, *, name: str | None = None) -> Tensor:
        """``torch.nn.functional.one_hot`` as float: a new last axis of length ``num_classes``, 1 at the index."""
        full = self.names.local("one_hot", name)
        values = self._constant(f"{full}.values", np.array([0.0, 1.0], np.float32), role="fixed")
        depth = self._fixed(f"{full}.depth", np.array(num_classes, np.int32))
        layer = self.trt_network.add_one_hot(indices, values, depth, -1)
        return self._named(layer, "one_hot", full).get_output(0)

    # ------------------------------------------------------------------ conditionals, generators, transformers

    def conditional(self, condition: Tensor, *, name: str | None = None) -> Conditional:
        """A new if/else on the 0-d bool ``condition``; see :class:`Conditional`."""
        return Conditional(self, self.names.local("if", name), condition)

    def arange(self, end: int, *, dtype: str = "int32", name: str | None = None) -> Tensor:
        """``torch.arange(end)``: 0, 1, ..., end - 1 (a FILL layer, LINSPACE), int32, int64 or float32."""
        kinds = {"int32": trt.int32, "int64": trt.int64, "float32": trt.float32}
        layer = self.trt_network.add_fill((int(end),), trt.FillOperation.LINSPACE, _choice(kinds, dtype, "dtype"))
        layer.alpha, layer.beta = 0, 1
        return self._named(layer, "arange", name).get_output(0)

    def local_response_norm(
        self, x: Tensor, size: int, alpha: float = 1e-4, beta: float = 0.75, k: float = 1.0, *, name: str | None = None
    ) -> Tensor:
        """``torch.nn.functional.local_response_norm`` across channels (TensorRT's LRN; odd ``size``)."""
        layer = self.trt_network.add_lrn(x, size, alpha, beta, k)
        return self._named(layer, "lrn", name).get_output(0)

    def rotary_embedding(
        self, x: Tensor, cos: Tensor, sin: Tensor, *, interleaved: bool = False, rotary_dim: int = 0,
        position_ids: Tensor | None = None, name: str | None = None,
    ) -> Tensor:  # fmt: skip
        """Rotary position embedding of x [N, H, S, D] by cos/sin [N, S, R/2] (or [P, R/2] with position ids)."""
        layer = self.trt_network.add_rotary_embedding(x, cos, sin, interleaved, rotary_dim)
        if position_ids is not None:
            layer.set_input(3, position_ids)
        return self._named(layer, "rotary_embedding", name).get_output(0)

    def scatter(self, x: Tensor, dim: int, index: Tensor, src: Tensor, *, name: str | None = None) -> Tensor:
        """``torch.Tensor.scatter(dim, index, src)`` (TensorRT's ELEMENT scatter)."""
        layer = self.trt_network.add_scatter(x, index, src, trt.ScatterMode.ELEMENT)
        layer.axis = self._dim(dim, len(self.shape_of(x)), "scatter")
        return self._named(layer, "scatter", name).get_output(0)

    def nonzero(self, x: Tensor, *, name: str | None = None) -> Tensor:
        """``torch.nonzero(x).T``: the coordinates of the non-zero elements, [rank, count] int64."""
        layer = self.trt_network.add_non_zero(x, trt.int64)
        return self._named(layer, "nonzero", name).get_output(0)


def _choice(table: dict, key: str, what: str) -> Any:
    if key not in table:
        raise NetworkDefinitionError(f"{what} {key!r}: expected one of {sorted(table)}")
    return table[key]


def _normalized_positions(length: int, align_corners: bool) -> np.ndarray:
    """Pixel centres in [-1, 1]: the corner pixels' centres are -1 and 1 with align_corners, else the edges are."""
    if align_corners:
        return np.linspace(-1, 1, length) if length > 1 else np.zeros(1)
    return (2 * np.arange(length) + 1) / length - 1

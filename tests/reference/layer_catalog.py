"""One small network per TensorRT layer type, for the tests that check every registry consumer on every type."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from refhelpers import Net

from netdef.backend import trt

E = trt.ElementWiseOperation


def _x(net: Net, *shape, name="x"):
    return net.input(name, np.random.default_rng(len(shape)).standard_normal(shape).astype(np.float32))


def _loop(net: Net):
    x = _x(net, 3, 2)
    loop = net.network.add_loop()
    count = net.constant(np.array(3, np.int32))
    loop.add_trip_limit(count, trt.TripLimit.COUNT)
    it = loop.add_iterator(x, 0, False)
    state = loop.add_recurrence(net.constant(np.zeros(2, np.float32)))
    step = net.network.add_elementwise(state.get_output(0), it.get_output(0), E.SUM)
    state.set_input(1, step.get_output(0))
    net.output(loop.add_loop_output(state.get_output(0), trt.LoopOutput.LAST_VALUE, 0))
    scan = loop.add_loop_output(step.get_output(0), trt.LoopOutput.CONCATENATE, 0)
    scan.set_input(1, count)
    net.output(scan)


def _conditional(net: Net):
    cond = net.network.add_if_conditional()
    cond.set_condition(net.input("flag", np.array(True)))
    inside = cond.add_input(_x(net, 2))
    net.output(cond.add_output(net.network.add_unary(inside.get_output(0), trt.UnaryOperation.ABS).get_output(0),
                               inside.get_output(0)))  # fmt: skip


def _attention(net: Net):
    q = _x(net, 1, 2, 3, 4)
    attention = net.network.add_attention_v2(q, q, q, trt.AttentionNormalizationOp.SOFTMAX, trt.CausalMaskKind.NONE)
    net.output(attention)


def _moe(net: Net):
    layer = net.network.add_moe(_x(net, 1, 2, 4), net.constant(np.array([[[0], [1]]], np.int32)),
                                net.constant(np.ones((1, 2, 1), np.float32)))  # fmt: skip
    layer.set_gated_weights(*(net.constant(np.ones(s, np.float32)) for s in ((2, 4, 3), (2, 4, 3), (2, 3, 4))),
                            trt.MoEActType.SILU)  # fmt: skip
    return layer


def _nms(net: Net):
    boxes = net.constant(np.array([[[0, 0, 1, 1], [0, 0, 1, 0.9]]], np.float32))
    return net.network.add_nms(boxes, net.constant(np.array([[[0.9], [0.8]]], np.float32)),
                               net.constant(np.array(2, np.int32)))  # fmt: skip


def _fill(net: Net):
    layer = net.network.add_fill((4,), trt.FillOperation.LINSPACE, trt.float32)
    layer.alpha, layer.beta = 0.0, 1.0
    return layer


def _dynamic_quantize(net: Net):
    layer = net.network.add_dynamic_quantize(_x(net, 2, 16), 1, 16, trt.fp4, trt.fp8)
    layer.set_input(1, net.constant(np.array(1.0, np.float32)))
    net.output(layer, 1)
    return layer


def _assertion(net: Net):
    x = _x(net, 2)
    net.network.add_assertion(net.constant(np.array([True, True])), "always holds")
    net.output(net.network.add_identity(x))


def _weights(net: Net, *shape):
    return net.keep(np.full(shape, 0.1, np.float32))


BUILDERS: dict[str, Callable[[Net], object]] = {
    "CONVOLUTION": lambda n: n.network.add_convolution_nd(_x(n, 1, 2, 5, 5), 3, (3, 3), _weights(n, 3, 2, 3, 3)),
    "DECONVOLUTION": lambda n: n.network.add_deconvolution_nd(_x(n, 1, 2, 3, 3), 3, (2, 2), _weights(n, 2, 3, 2, 2)),
    "GRID_SAMPLE": lambda n: n.network.add_grid_sample(_x(n, 1, 1, 3, 3), _x(n, 1, 2, 2, 2, name="g")),
    "NMS": _nms,
    "ACTIVATION": lambda n: n.network.add_activation(_x(n, 2, 3), trt.ActivationType.RELU),
    "POOLING": lambda n: n.network.add_pooling_nd(_x(n, 1, 1, 4, 4), trt.PoolingType.MAX, (2, 2)),
    "LRN": lambda n: n.network.add_lrn(_x(n, 1, 3, 2, 2), 3, 1e-2, 0.75, 1.0),
    "SCALE": lambda n: n.network.add_scale(_x(n, 1, 2, 2, 2), trt.ScaleMode.CHANNEL, _weights(n, 2), _weights(n, 2)),
    "SOFTMAX": lambda n: n.network.add_softmax(_x(n, 2, 3)),
    "CONCATENATION": lambda n: n.network.add_concatenation([_x(n, 2, 3), _x(n, 2, 3, name="y")]),
    "ELEMENTWISE": lambda n: n.network.add_elementwise(_x(n, 2, 3), _x(n, 2, 3, name="y"), E.SUM),
    "UNARY": lambda n: n.network.add_unary(_x(n, 2, 3), trt.UnaryOperation.EXP),
    "PADDING": lambda n: n.network.add_padding_nd(_x(n, 1, 1, 2, 2), (1, 1), (0, 1)),
    "SHUFFLE": lambda n: n.network.add_shuffle(_x(n, 2, 3)),
    "REDUCE": lambda n: n.network.add_reduce(_x(n, 2, 3), trt.ReduceOperation.SUM, 2, False),
    "TOPK": lambda n: n.network.add_topk(_x(n, 2, 5), trt.TopKOperation.MAX, 2, 2),
    "GATHER": lambda n: n.network.add_gather(_x(n, 4, 3), n.constant(np.array([2, 0], np.int32)), 0),
    "MATRIX_MULTIPLY": lambda n: n.network.add_matrix_multiply(
        _x(n, 2, 3), trt.MatrixOperation.NONE, _x(n, 3, 4, name="y"), trt.MatrixOperation.NONE
    ),
    "RAGGED_SOFTMAX": lambda n: n.network.add_ragged_softmax(
        _x(n, 1, 2, 3), n.constant(np.array([[[2], [3]]], np.int32))
    ),
    "CONSTANT": lambda n: n.network.add_constant((2,), _weights(n, 2)),
    "IDENTITY": lambda n: n.network.add_identity(_x(n, 2)),
    "CAST": lambda n: n.network.add_cast(_x(n, 2), trt.float16),
    "SLICE": lambda n: n.network.add_slice(_x(n, 4, 4), (1, 0), (2, 2), (1, 2)),
    "SHAPE": lambda n: n.network.add_shape(_x(n, 2, 3)),
    "PARAMETRIC_RELU": lambda n: n.network.add_parametric_relu(
        _x(n, 2, 3), n.constant(np.full((1, 3), 0.1, np.float32))
    ),
    "RESIZE": lambda n: _resize(n),
    "TRIP_LIMIT": _loop,
    "RECURRENCE": _loop,
    "ITERATOR": _loop,
    "LOOP_OUTPUT": _loop,
    "SELECT": lambda n: n.network.add_select(n.input("c", np.array([True, False])), _x(n, 2), _x(n, 2, name="y")),
    "ASSERTION": _assertion,
    "FILL": _fill,
    "QUANTIZE": lambda n: n.network.add_quantize(_x(n, 2, 3), n.constant(np.array(0.1, np.float32)), trt.int8),
    "DEQUANTIZE": lambda n: n.network.add_dequantize(
        n.input("q", np.array([1, -2], np.int8)), n.constant(np.array(0.1, np.float32)), trt.float32
    ),
    "CONDITION": _conditional,
    "CONDITIONAL_INPUT": _conditional,
    "CONDITIONAL_OUTPUT": _conditional,
    "SCATTER": lambda n: n.network.add_scatter(
        _x(n, 3, 2), n.constant(np.array([[1]], np.int32)), _x(n, 1, 2, name="u"), trt.ScatterMode.ND
    ),
    "EINSUM": lambda n: n.network.add_einsum([_x(n, 2, 3), _x(n, 3, 4, name="y")], "ij,jk->ik"),
    "ONE_HOT": lambda n: n.network.add_one_hot(
        n.constant(np.array([0, 2], np.int32)),
        n.constant(np.array([0, 1], np.float32)),
        n.constant(np.array(3, np.int32)),
        -1,
    ),  # fmt: skip
    "NON_ZERO": lambda n: n.network.add_non_zero(_x(n, 2, 3)),
    "REVERSE_SEQUENCE": lambda n: n.network.add_reverse_sequence(_x(n, 3, 2), n.constant(np.array([1, 3], np.int32))),
    "NORMALIZATION": lambda n: n.network.add_normalization(
        _x(n, 1, 2, 3), n.constant(np.ones((1, 1, 3), np.float32)), n.constant(np.zeros((1, 1, 3), np.float32)), 4
    ),
    "SQUEEZE": lambda n: n.network.add_squeeze(_x(n, 1, 3), n.constant(np.array([0], np.int64))),
    "UNSQUEEZE": lambda n: n.network.add_unsqueeze(_x(n, 3), n.constant(np.array([0], np.int64))),
    "CUMULATIVE": lambda n: n.network.add_cumulative(
        _x(n, 2, 3), n.constant(np.array(1, np.int32)), trt.CumulativeOperation.SUM, False, False
    ),
    "DYNAMIC_QUANTIZE": _dynamic_quantize,
    "ATTENTION_INPUT": _attention,
    "ATTENTION_OUTPUT": _attention,
    "ROTARY_EMBEDDING": lambda n: n.network.add_rotary_embedding(
        _x(n, 1, 1, 2, 4),
        n.constant(np.ones((1, 2, 2), np.float32)),
        n.constant(np.zeros((1, 2, 2), np.float32)),
        False,
        0,
    ),  # fmt: skip
    "KV_CACHE_UPDATE": lambda n: n.network.add_kv_cache_update(
        _x(n, 1, 1, 4, 2), _x(n, 1, 1, 1, 2, name="u"), n.constant(np.array([2], np.int32)), trt.KVCacheMode.LINEAR
    ),
    "MOE": _moe,
    "DIST_COLLECTIVE": lambda n: n.network.add_dist_collective(
        _x(n, 2), trt.CollectiveOperation.ALL_REDUCE, trt.ReduceOperation.SUM, -1, []
    ),
}


def _resize(net: Net):
    layer = net.network.add_resize(_x(net, 1, 1, 2, 2))
    layer.shape = (1, 1, 4, 4)
    layer.resize_mode = trt.InterpolationMode.LINEAR
    return layer


def network_with(type_name: str) -> Net:
    """A small valid network that holds at least one layer of ``type_name``, outputs marked."""
    net = Net()
    layer = BUILDERS[type_name](net)
    if layer is not None and hasattr(layer, "get_output") and not isinstance(layer, trt.IAttention):
        if layer.num_outputs and not any(net.network.get_output(i).name == layer.get_output(0).name
                                         for i in range(net.network.num_outputs)):  # fmt: skip
            net.output(layer)
    return net

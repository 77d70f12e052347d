"""NMS (INMSLayer) vs ONNX's NonMaxSuppression reference implementation, box formats, thresholds, output shapes."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st
from onnx_oracle import onnx_op
from refhelpers import FEW, Net

from netdef.backend import create_builder, trt
from netdef.reference import run


def _boxes(rng, batch, count, centre_sizes):
    centres = rng.uniform(0, 10, size=(batch, count, 2))
    sizes = rng.uniform(0.5, 4, size=(batch, count, 2))
    if centre_sizes:
        return np.concatenate([centres, sizes], axis=-1).astype(np.float32)
    corners = np.concatenate([centres - sizes / 2, centres + sizes / 2], axis=-1)
    flip = rng.random((batch, count)) < 0.3  # either diagonal pair of corners is allowed
    corners[flip] = corners[flip][:, [2, 3, 0, 1]]
    return corners.astype(np.float32)


def _nms_network(boxes, scores, max_boxes, iou, score, fmt, limit=None):
    net = Net()
    layer = net.network.add_nms(
        net.input("boxes", boxes), net.input("scores", scores), net.constant(np.array(max_boxes, np.int32))
    )
    layer.set_input(3, net.constant(np.array(iou, np.float32)))
    layer.set_input(4, net.constant(np.array(score, np.float32)))
    layer.bounding_box_format = fmt
    if limit is not None:
        layer.topk_box_limit = limit
    net.output(layer, 0), net.output(layer, 1)
    return net, layer


@FEW
@given(
    st.integers(1, 3),
    st.integers(1, 12),
    st.integers(1, 3),
    st.integers(1, 6),
    st.floats(0.0, 1.0),
    st.floats(0.0, 0.8),
    st.booleans(),
    st.integers(0, 2**16),
)
def test_nms_matches_onnx_non_max_suppression(batch, count, classes, max_boxes, iou, score, centre, seed):
    rng = np.random.default_rng(seed)
    boxes = _boxes(rng, batch, count, centre)
    scores = rng.permutation(batch * count * classes).reshape(batch, count, classes).astype(np.float32)
    scores /= scores.size  # distinct scores in [0, 1): the order of equal scores is unspecified
    fmt = trt.BoundingBoxFormat.CENTER_SIZES if centre else trt.BoundingBoxFormat.CORNER_PAIRS
    net, layer = _nms_network(boxes, scores, max_boxes, iou, score, fmt)
    result = net.run()
    selected, found = result.outputs[layer.get_output(0).name], result.outputs[layer.get_output(1).name]
    assert selected.dtype == np.int32 and found.shape == () and int(found) == len(selected)
    expected = onnx_op(
        "NonMaxSuppression",
        [boxes, np.ascontiguousarray(scores.transpose(0, 2, 1)), np.array([max_boxes], np.int64),
         np.array([iou], np.float32), np.array([score], np.float32)],
        center_point_box=int(centre),
    )[0]  # fmt: skip
    assert sorted(map(tuple, selected.tolist())) == sorted(map(tuple, expected.tolist()))
    # TensorRT's order: by batch, then by decreasing score
    keys = [(b, -scores[b, i, c]) for b, c, i in selected.tolist()]
    assert keys == sorted(keys)


def test_nms_thresholds_and_limits_by_hand():
    boxes = np.array([[[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [0, 0, 10, 9]]], np.float32)
    scores = np.array([[[0.9], [0.8], [0.7], [0.05]]], np.float32)
    # IoU(box0, box1) = 81 / 119 = 0.68: suppressed at 0.5, kept at 0.7; box3 is below the score threshold
    for iou, expected in ((0.5, [0, 2]), (0.7, [0, 1, 2])):
        net, layer = _nms_network(boxes, scores, 10, iou, 0.1, trt.BoundingBoxFormat.CORNER_PAIRS)
        out = run(net.network, net.feeds).outputs
        assert out[layer.get_output(0).name][:, 2].tolist() == expected
    net, layer = _nms_network(boxes, scores, 1, 0.7, 0.1, trt.BoundingBoxFormat.CORNER_PAIRS)
    assert run(net.network, net.feeds).outputs[layer.get_output(0).name].tolist() == [[0, 0, 0]]
    net, layer = _nms_network(boxes, scores, 10, 0.7, 0.0, trt.BoundingBoxFormat.CORNER_PAIRS, limit=2)
    assert run(net.network, net.feeds).outputs[layer.get_output(0).name][:, 2].tolist() == [0, 1]


def test_nms_output_shape_is_data_dependent_and_rtx_cannot_build_it_on_the_cpu():
    boxes = np.zeros((1, 4, 4), np.float32)
    net, layer = _nms_network(boxes, np.zeros((1, 4, 2), np.float32), 3, 0.5, 0.0, trt.BoundingBoxFormat.CORNER_PAIRS)
    assert tuple(layer.get_output(0).shape) == (-1, 3) and tuple(layer.get_output(1).shape) == ()
    out = run(net.network, net.feeds).outputs
    assert out[layer.get_output(0).name].shape == (0, 3) and int(out[layer.get_output(1).name]) == 0
    builder = create_builder()
    assert builder.build_serialized_network(net.network, builder.create_builder_config()) is None


def test_per_class_boxes_match_shared_boxes_class_by_class():
    """Boxes [B, N, C, 4]: class c uses its own boxes, as if NMS ran on boxes[:, :, c] alone."""
    rng = np.random.default_rng(5)
    boxes = np.stack([_boxes(rng, 1, 8, False) for _ in range(2)], axis=2)  # [1, 8, 2, 4]
    scores = rng.random((1, 8, 2)).astype(np.float32)
    net, layer = _nms_network(boxes, scores, 5, 0.3, 0.1, trt.BoundingBoxFormat.CORNER_PAIRS)
    rows = run(net.network, net.feeds).outputs[layer.get_output(0).name].tolist()
    for c in range(2):
        single, single_layer = _nms_network(
            np.ascontiguousarray(boxes[:, :, c]), np.ascontiguousarray(scores[:, :, c : c + 1]), 5, 0.3, 0.1,
            trt.BoundingBoxFormat.CORNER_PAIRS,
        )  # fmt: skip
        alone = run(single.network, single.feeds).outputs[single_layer.get_output(0).name]
        assert [row[2] for row in rows if row[1] == c] == alone[:, 2].tolist()

"""The windowed-transformer layers (``netdef/network/windows.py``) against PyTorch and torchvision.

Shifts, padding and cropping with a dynamic batch, the relative position index and bias against
torchvision's Swin and MaxViT modules, ``F.normalize`` in fp16, and a whole Swin run at two batch
sizes from one dynamic-batch network (padding, shifted-window masks, shape layers).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torchvision_models import torchvision_models
from zoo import relative_error, torch_logits, zoo_model

import architectures
from netdef.network import Network
from netdef.network.windows import relative_position_index
from netdef.reference import run


def test_roll_pad_and_crop_match_torch_with_a_dynamic_batch(rng):
    net = Network({})
    x = net.input("input", (-1, 5, 6, 3))
    rolled = net.roll(x, (-2, 4), (1, 2))
    padded = net.pad_end(rolled, (0, 2, 1, 0))
    net.output(rolled, "rolled")
    net.output(padded, "padded")
    net.output(net.crop(padded, (5, 6, 3)), "cropped")
    assert net.shape_of(padded) == (-1, 7, 7, 3)
    for batch in (1, 3):
        data = rng.standard_normal((batch, 5, 6, 3)).astype(np.float32)
        out = run(net.trt_network, {"input": data}).outputs
        expected = torch.roll(torch.from_numpy(data), shifts=(-2, 4), dims=(1, 2))
        np.testing.assert_array_equal(out["rolled"], expected.numpy())
        np.testing.assert_array_equal(out["padded"], F.pad(expected, (0, 0, 0, 1, 0, 2)).numpy())
        np.testing.assert_array_equal(out["cropped"], expected.numpy())


def test_relative_position_index_and_bias_are_torchvision_s():
    models = torchvision_models()
    swin = models.swin_transformer.ShiftedWindowAttention(8, [7, 7], [0, 0], num_heads=2)
    np.testing.assert_array_equal(relative_position_index(7, 7).reshape(-1), swin.relative_position_index.numpy())
    maxvit = models.maxvit.RelativePositionalMultiHeadAttention(8, 4, 9)
    np.testing.assert_array_equal(relative_position_index(3, 3), maxvit.relative_position_index.numpy())

    table = swin.relative_position_bias_table.detach().numpy()
    net = Network({"table": table})
    net.output(net.relative_position_bias(net.parameter("table", table.shape), (7, 7)), "bias")
    out = run(net.trt_network, {}).outputs["bias"]
    np.testing.assert_array_equal(out, swin.get_relative_position_bias().detach().numpy())


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_normalize_matches_torch_without_overflow_or_nan(precision, rng):
    """fp16: rows of 300s (squares overflow fp16) and all-zero rows (a padded token) stay finite."""
    data = rng.standard_normal((2, 4, 32)).astype(np.float32)
    data[0, 1] *= 300.0
    data[1, 2] = 0.0
    net = Network({}, precision=precision)
    net.output(net.normalize(net.input("input", (-1, 4, 32))), "out")
    out = run(net.trt_network, {"input": data}).outputs["out"]
    expected = F.normalize(torch.from_numpy(data), dim=-1).numpy()
    assert np.isfinite(out).all()
    np.testing.assert_allclose(out, expected, atol=1e-6 if precision == "fp32" else 2e-3)


@pytest.mark.slow
def test_swin_runs_any_batch_from_one_dynamic_network():
    """32x32 images: the first stage's 8x8 map is padded to 14x14 with shifted windows (masks, runtime
    shapes for the padding and crop); batches of 1 and 3 from the same network."""
    model, checkpoint, x = zoo_model("swin_t")
    net = Network(checkpoint, name="swin_t")
    net.output(architectures.get("swin_t").define(net, net.input("input", (-1, 3, 32, 32))), "logits")
    net.check()
    for batch in (1, 3):
        out = run(net.trt_network, {"input": x[:batch]}).outputs["logits"]
        assert out.shape == (batch, 10)
        assert relative_error(out, torch_logits(model, x[:batch])) <= 1e-4


def test_a_checkpoint_buffer_that_disagrees_is_a_problem():
    from netdef.errors import CheckpointError

    model, checkpoint, _ = zoo_model("swin_t")
    bad = dict(checkpoint)
    bad["features.1.0.attn.relative_position_index"] = np.zeros(49 * 49, np.int64)
    net = Network(bad, name="swin_t")
    net.output(architectures.get("swin_t").define(net, net.input("input", (1, 3, 32, 32))), "logits")
    with pytest.raises(CheckpointError, match=r"buffer 'features.1.0.attn.relative_position_index' differs"):
        net.check()

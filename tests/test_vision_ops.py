"""VisionMixin's layer methods against PyTorch and torchvision: hardsigmoid, chunk, channel_shuffle,
squeeze_excitation, channel_affine (each with a dynamic batch, through the reference executor)."""

from __future__ import annotations

import importlib

import numpy as np
import pytest
import torch
from torchvision_models import torchvision_models
from zoo import state_dict_views

from netdef.errors import NetworkDefinitionError
from netdef.network import Network
from netdef.reference import run


def _run(net: Network, out, x: np.ndarray) -> np.ndarray:
    net.output(out, "out")
    return run(net.trt_network, {"input": x}).outputs["out"]


def test_hardsigmoid_matches_torch(rng):
    x = (rng.standard_normal((3, 4, 5)) * 4).astype(np.float32)
    net = Network({})
    out = _run(net, net.hardsigmoid(net.input("input", (-1, 4, 5))), x)
    np.testing.assert_allclose(out, torch.nn.functional.hardsigmoid(torch.from_numpy(x)).numpy(), atol=1e-6)


def test_chunk_and_channel_shuffle_match_shufflenet(rng):
    shufflenet = importlib.import_module(torchvision_models().__name__ + ".shufflenetv2")
    x = rng.standard_normal((2, 8, 3, 5)).astype(np.float32)
    net = Network({})
    first, second = net.chunk(net.input("input", (-1, 8, 3, 5)), 2, dim=1, name="split")
    out = _run(net, net.channel_shuffle(net.concat([second, first], 1), 4), x)
    x1, x2 = torch.from_numpy(x).chunk(2, dim=1)
    expected = shufflenet.channel_shuffle(torch.cat([x2, x1], 1), 4).numpy()
    np.testing.assert_array_equal(out, expected)
    assert (first.name, second.name) == ("split.0", "split.1")
    with pytest.raises(NetworkDefinitionError, match="8 does not split into 3 chunks"):
        net.chunk(net.trt_network.get_input(0), 3, dim=1)
    with pytest.raises(NetworkDefinitionError, match="8 channels do not split into 3 groups"):
        net.channel_shuffle(net.trt_network.get_input(0), 3)


def test_squeeze_excitation_matches_torchvision(rng):
    misc = importlib.import_module(torchvision_models().__name__.replace("models", "ops.misc"))
    torch.manual_seed(0)
    se = misc.SqueezeExcitation(16, 4, activation=torch.nn.SiLU, scale_activation=torch.nn.Hardsigmoid).eval()
    checkpoint = {f"se.{k}": v for k, v in state_dict_views(se).items()}
    x = rng.standard_normal((3, 16, 5, 5)).astype(np.float32)
    net = Network(checkpoint)
    y = net.squeeze_excitation(net.input("input", (-1, 16, 5, 5)), "se", 4, "silu", "hardsigmoid")
    out = _run(net, y, x)
    with torch.no_grad():
        expected = se(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)
    assert net.unused_keys() == []


def test_channel_affine_is_a_fixed_per_channel_scale(rng):
    x = rng.standard_normal((2, 3, 4, 4)).astype(np.float32)
    net = Network({})
    out = _run(net, net.channel_affine(net.input("input", (-1, 3, 4, 4)), [1.0, 2.0, 3.0], [0.5, 0.0, -1.0]), x)
    expected = x * np.float32([1, 2, 3]).reshape(1, 3, 1, 1) + np.float32([0.5, 0, -1]).reshape(1, 3, 1, 1)
    np.testing.assert_allclose(out, expected, rtol=1e-6)
    assert net.weights == {}  # architecture constants, nothing to refit
    with pytest.raises(NetworkDefinitionError, match="3 channels, 2 scales, 2 shifts"):
        net.channel_affine(net.trt_network.get_input(0), [1.0, 2.0], [0.0, 0.0])

"""Networks made by TensorRT's own ONNX parser from exported PyTorch models run through the executor."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from netdef.backend import LOGGER, capture_errors, create_builder, create_network, trt
from netdef.reference import ReferenceExecutor, describe_layer, semantics

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::UserWarning")


class SmallCNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(8)
        self.pool = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=2, dilation=2, groups=4)
        self.bn2 = nn.BatchNorm2d(8)
        self.avg = nn.AdaptiveAvgPool2d(2)
        self.fc = nn.Linear(8 * 2 * 2, 5)

    def forward(self, x):
        x = self.pool(torch.relu(self.bn1(self.conv1(x))))
        x = torch.nn.functional.silu(self.bn2(self.conv2(x)))
        x = torch.flatten(self.avg(x), 1)
        return torch.softmax(self.fc(x), dim=-1)


class Decoder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.up = nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2)
        self.norm = nn.LayerNorm(16)
        self.proj = nn.Linear(16, 16)

    def forward(self, x):
        y = self.up(x)  # [N, 6, 16, 16]
        y = nn.functional.interpolate(y, scale_factor=2, mode="bilinear", align_corners=False)[..., ::2, ::2]
        y = self.norm(y)
        y = nn.functional.gelu(self.proj(y))
        return y.mean(dim=1, keepdim=True) + y.max(dim=1, keepdim=True).values


def _randomize_batchnorm(model: nn.Module, generator: torch.Generator) -> None:
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.copy_(torch.randn(module.num_features, generator=generator) * 0.1)
            module.running_var.copy_(torch.rand(module.num_features, generator=generator) + 0.5)
            module.weight.data.copy_(torch.rand(module.num_features, generator=generator) + 0.5)
            module.bias.data.copy_(torch.randn(module.num_features, generator=generator) * 0.1)


def _parse(model: nn.Module, example: torch.Tensor, path, dynamic_batch: bool):
    torch.onnx.export(
        model,
        (example,),
        str(path),
        dynamo=False,
        input_names=["x"],
        output_names=["y"],
        dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}} if dynamic_batch else None,
    )
    builder = create_builder()
    network = create_network(builder)
    parser = trt.OnnxParser(network, LOGGER)
    assert parser.parse_from_file(str(path)), [parser.get_error(i).desc() for i in range(parser.num_errors)]
    return builder, network, parser


@pytest.mark.parametrize("dynamic_batch", [False, True])
def test_onnx_parsed_cnn_matches_pytorch(tmp_path, dynamic_batch):
    generator = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    model = SmallCNN().eval()
    _randomize_batchnorm(model, generator)
    example = torch.randn(2, 3, 16, 16, generator=generator)
    keep = _parse(model, example, tmp_path / "cnn.onnx", dynamic_batch)
    network = keep[1]
    assert tuple(network.get_input(0).shape)[0] == (-1 if dynamic_batch else 2)
    executor = ReferenceExecutor(network)
    batches = [2, 3] if dynamic_batch else [2]
    for batch in batches:
        x = torch.randn(batch, 3, 16, 16, generator=generator)
        result = executor.run({"x": x.numpy()})
        with torch.no_grad():
            expected = model(x).numpy()
        np.testing.assert_allclose(result.outputs["y"], expected, rtol=1e-4, atol=1e-5)
    types = {trt.ILayer.type.fget(network.get_layer(i)).name for i in range(network.num_layers)}
    assert {"CONVOLUTION", "POOLING", "MATRIX_MULTIPLY", "SOFTMAX"} <= types


def test_onnx_parsed_decoder_matches_pytorch_layer_by_layer(tmp_path):
    torch.manual_seed(1)
    model = Decoder().eval()
    x = torch.randn(1, 4, 8, 8)
    keep = _parse(model, x, tmp_path / "decoder.onnx", dynamic_batch=False)
    network = keep[1]
    result = ReferenceExecutor(network).run({"x": x.numpy()}, capture=True)
    with torch.no_grad():
        expected = model(x).numpy()
        upsampled = model.up(x).numpy()
    np.testing.assert_allclose(result.outputs["y"], expected, rtol=1e-4, atol=1e-4)
    deconv = [
        i
        for i in range(network.num_layers)
        if trt.ILayer.type.fget(network.get_layer(i)) == trt.LayerType.DECONVOLUTION
    ]
    assert len(deconv) == 1
    layer = network.get_layer(deconv[0])
    np.testing.assert_allclose(result.layers[layer.name][0], upsampled, rtol=1e-4, atol=1e-5)
    assert len(result.tensors) >= network.num_layers


def test_describe_every_parsed_layer_without_tensorrt_errors(tmp_path):
    torch.manual_seed(2)
    keep = _parse(Decoder().eval(), torch.randn(1, 4, 8, 8), tmp_path / "decoder.onnx", dynamic_batch=False)
    network = keep[1]
    with capture_errors() as errors:
        described = [describe_layer(network.get_layer(i)) for i in range(network.num_layers)]
    assert errors == []
    for info in described:
        assert info["semantics"] == semantics(info["type"])
        assert all(tensor["shape"] is not None for tensor in info["outputs"])
    resize = next(info for info in described if info["type"] == "RESIZE")
    assert resize["params"]["scales"] == (1.0, 1.0, 2.0, 2.0)


class GRUModel(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.gru = nn.GRU(4, 6, batch_first=True)

    def forward(self, x):
        return self.gru(x)[0]


class Masks(nn.Module):
    """Range, Trilu and OneHot (the parser's FILL LINSPACE and ONE_HOT), LRN and GridSample."""

    def __init__(self) -> None:
        super().__init__()
        self.lrn = nn.LocalResponseNorm(3, alpha=0.1, beta=0.75, k=2.0)

    def forward(self, x, grid):
        n = x.shape[-1]
        causal = torch.tril(torch.ones(n, n)) * torch.arange(n, dtype=torch.float32)
        hot = nn.functional.one_hot(torch.arange(n) % 3, 3).float().sum(0)
        y = self.lrn(x) @ causal + hot.sum()
        return nn.functional.grid_sample(y, grid, align_corners=False)


class Accumulate(nn.Module):
    """A scripted loop with a loop-carried value and a condition (ONNX Loop and If)."""

    def forward(self, x):
        total = torch.zeros_like(x[0])
        for i in range(x.shape[0]):
            if bool(x[i].sum() > 0):
                total = total + x[i]
            else:
                total = total - x[i]
        return total


@pytest.mark.parametrize("model_name", ["gru", "masks", "loop_and_if"])
def test_onnx_parsed_loops_masks_and_sampling_match_pytorch(tmp_path, model_name):
    torch.manual_seed(3)
    if model_name == "gru":
        model, inputs = GRUModel().eval(), (torch.randn(2, 5, 4),)
    elif model_name == "masks":
        model, inputs = Masks().eval(), (torch.randn(1, 4, 5, 5), torch.rand(1, 3, 4, 2) * 2 - 1)
    else:
        model, inputs = torch.jit.script(Accumulate()), (torch.randn(4, 3),)
    names = [f"x{i}" for i in range(len(inputs))]
    path = tmp_path / f"{model_name}.onnx"
    torch.onnx.export(model, inputs, str(path), dynamo=False, input_names=names, output_names=["y"])
    network = create_network(create_builder())
    parser = trt.OnnxParser(network, LOGGER)
    assert parser.parse_from_file(str(path)), [parser.get_error(i).desc() for i in range(parser.num_errors)]
    result = ReferenceExecutor(network).run({name: t.numpy() for name, t in zip(names, inputs, strict=True)})
    with torch.no_grad():
        expected = model(*inputs).numpy()
    np.testing.assert_allclose(result.outputs["y"], expected, rtol=1e-5, atol=1e-5)
    types = {trt.ILayer.type.fget(network.get_layer(i)).name for i in range(network.num_layers)}
    assert _PARSED_TYPES[model_name] <= types


_PARSED_TYPES = {
    "gru": {"TRIP_LIMIT", "ITERATOR", "RECURRENCE", "LOOP_OUTPUT"},
    "masks": {"FILL", "ONE_HOT", "GRID_SAMPLE"},
    "loop_and_if": {"TRIP_LIMIT", "RECURRENCE", "LOOP_OUTPUT", "CONDITION", "CONDITIONAL_INPUT", "CONDITIONAL_OUTPUT"},
}
"""What TensorRT's ONNX parser makes of each model, among the types these tests are about."""

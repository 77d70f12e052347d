"""netdef.inspect: layers read back from TensorRT, FLOPs checked against PyTorch's own counter, DOT text, pictures."""

from __future__ import annotations

import re
import shutil

import numpy as np
import pytest
from typer.testing import CliRunner

from architectures import get
from netdef.errors import NetdefError
from netdef.inspect import count_text, flops_text, inspect_network, shape_text, to_dot, write_graph
from netdef.network import Network, num_parameters
from netdef.weights import Checkpoint

DOT = shutil.which("dot")


def lenet(lenet_weights, **kwargs):
    return get("lenet").build_network(Checkpoint.load(lenet_weights), **kwargs)


def torch_flops(module, shape) -> int:
    """FLOPs PyTorch counts (convolutions and matrix products, 2 per multiply-add)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        module.eval()(torch.zeros(shape))
    return counter.get_total_flops()


def compute_flops(summary) -> int:
    return sum(layer.flops for layer in summary.layers if layer.type in ("CONVOLUTION", "MATRIX_MULTIPLY"))


def test_lenet_layers_params_and_flops_agree_with_pytorch(lenet_weights):
    from torch_models import LeNet

    net = lenet(lenet_weights, batch=1)
    summary = inspect_network(net)
    assert [layer.name for layer in summary.layers] == [
        net.trt_network.get_layer(i).name for i in range(net.num_layers)
    ]
    assert summary.total_params == num_parameters(net) == sum(a.size for a in Checkpoint.load(lenet_weights).values())
    assert compute_flops(summary) == torch_flops(LeNet(), (1, 1, 28, 28))
    conv1 = next(layer for layer in summary.layers if layer.name == "conv1")
    n, c_out, h, w = conv1.outputs[0].shape
    kernel = net.weights["conv1.weight"].shape
    assert conv1.flops == 2 * c_out * kernel[1] * kernel[2] * kernel[3] * h * w * n
    assert conv1.params == net.weights["conv1.weight"].size + net.weights["conv1.bias"].size
    assert conv1.detail == f"{kernel[2]}x{kernel[3]} /1, {c_out} maps"
    assert summary.outputs[0].name == "prob" and summary.inputs[0].shape == (1, 1, 28, 28)


@pytest.mark.parametrize("arch", ["resnet18", "mobilenet_v2"])
def test_convolution_and_matmul_flops_match_pytorch(arch):
    from torch_models import torchvision_twin

    architecture = get(arch)
    zeros = {k: np.zeros(s, np.float32) for k, s in architecture.expected_weights().items()}
    summary = inspect_network(architecture.build_network(zeros, batch=1))
    assert compute_flops(summary) == torch_flops(torchvision_twin(arch), (1, *architecture.input_shape))
    assert not summary.unknown_flops


def test_dynamic_batch_counts_per_sample_and_static_batch_scales(lenet_weights):
    per_sample = inspect_network(lenet(lenet_weights, batch=-1))
    one = inspect_network(lenet(lenet_weights, batch=1))
    four = inspect_network(lenet(lenet_weights, batch=4))
    assert per_sample.total_flops == one.total_flops
    assert four.total_flops == 4 * one.total_flops
    assert four.total_params == one.total_params
    assert per_sample.layers[0].outputs[0].shape[0] == -1


def test_every_layer_type_gets_a_formula(rng):
    ckpt = {
        "bn.weight": rng.random(4, dtype=np.float32) + 0.5,
        "bn.bias": rng.standard_normal(4, dtype=np.float32),
        "bn.running_mean": rng.standard_normal(4, dtype=np.float32),
        "bn.running_var": rng.random(4, dtype=np.float32) + 0.5,
    }
    net = Network(ckpt, name="tour")
    x = net.input("x", (2, 4, 6, 6))
    y = net.batch_norm(x, "bn")
    y = net.avg_pool2d(y, 3, stride=1, padding=1, name="pool")
    s = net.softmax(y, dim=1, name="soft")
    m = net.mean(s, dim=(2, 3), keepdim=True, name="mean")
    c = net.concat([m, m], dim=1, name="cat")
    p = net.permute(c, (0, 2, 3, 1), name="perm")
    net.output(net.sigmoid(p, name="sig"), "out")
    layers = {layer.name: layer for layer in inspect_network(net).layers}
    numel = 2 * 4 * 6 * 6
    assert layers["bn"].type == "SCALE" and layers["bn"].params == 8 and layers["bn"].flops == 2 * numel
    assert layers["pool"].flops == numel * 9 and layers["pool"].detail == "average 3x3 /1 pad 1"
    assert layers["soft"].flops == 3 * numel and layers["soft"].detail == "axes [1]"
    assert layers["mean"].flops == numel and layers["mean"].detail == "avg axes [2, 3] keepdim"
    assert layers["cat"].flops == 0 and layers["cat"].outputs[0].shape == (2, 8, 1, 1)
    assert layers["perm"].detail == "permute [0, 2, 3, 1]" and layers["perm"].flops == 0
    assert layers["sig"].flops == 16 and layers["sig"].detail == "sigmoid"


def test_fp16_dtypes_are_read_back(lenet_weights):
    summary = inspect_network(lenet(lenet_weights, batch=1, precision="fp16"))
    dtypes = {layer.name: layer.outputs[0].dtype for layer in summary.layers}
    assert dtypes["conv1"] == "float16" and dtypes["input.cast"] == "float16"
    assert summary.outputs[0].dtype == "float32"


def test_text_helpers():
    assert shape_text((-1, 3, 224, 224)) == "?x3x224x224" and shape_text(None) == "unknown"
    assert count_text(4_601_760) == "4.6 M" and count_text(999) == "999"
    assert flops_text(3_630_000_000) == "3.63 GFLOPs" and flops_text(500) == "500 FLOPs"


# --------------------------------------------------------------------------- DOT text and pictures


def test_dot_has_a_node_per_layer_and_an_edge_per_tensor_use(lenet_weights):
    summary = inspect_network(lenet(lenet_weights, batch=-1))
    dot = to_dot(summary)
    assert dot.startswith('digraph "lenet" {') and "rankdir=TB" in dot
    nodes = re.findall(r"^\s*L(\d+) \[", dot, flags=re.M)
    assert sorted(map(int, nodes)) == list(range(len(summary.layers)))
    edges = re.findall(r"^\s*(\w+) -> (\w+) \[label=\" ([^\"]+)\"\]", dot, flags=re.M)
    uses = sum(len(layer.inputs) for layer in summary.layers) + len(summary.outputs)
    assert len(edges) == uses
    assert ("in0", "L0", "?x1x28x28") in edges
    assert any(label == "?x20x24x24" for _, _, label in edges)
    assert "400,000 weights" in dot and "subgraph cluster_" in dot and 'label="fc1"' in dot
    assert dot.count("{") == dot.count("}")


def test_dot_quotes_awkward_names():
    net = Network({}, name='say "hi"\\')
    x = net.input("x", (1, 3))
    net.output(net.relu(x, name='re"lu'), "y")
    dot = to_dot(inspect_network(net), clusters=False)
    assert 'digraph "say \\"hi\\"\\\\" {' in dot and 're\\"lu' in dot


def test_write_dot_text_always(tmp_path, lenet_weights):
    summary = inspect_network(lenet(lenet_weights, batch=1))
    result = write_graph(summary, tmp_path / "g.dot")
    assert not result.rendered and result.path.read_text() == to_dot(summary)
    assert "dot -Tsvg" in result.message
    with pytest.raises(NetdefError, match="unknown graph format '.jpeg'"):
        write_graph(summary, tmp_path / "g.jpeg")


def test_without_graphviz_dot_text_is_written_with_instructions(tmp_path, lenet_weights, monkeypatch):
    import netdef.inspect

    monkeypatch.setattr(netdef.inspect.shutil, "which", lambda name: None)
    result = write_graph(inspect_network(lenet(lenet_weights, batch=1)), tmp_path / "g.png")
    assert not result.rendered and result.path == tmp_path / "g.dot" and not (tmp_path / "g.png").exists()
    assert (
        "not installed" in result.message
        and f"dot -Tpng {tmp_path / 'g.dot'} -o {tmp_path / 'g.png'}" in result.message
    )


@pytest.mark.parametrize("suffix", ["svg", "png"])
def test_graphviz_renders_pictures(tmp_path, lenet_weights, suffix):
    if DOT is None:
        pytest.skip("Graphviz's `dot` is not installed here (apt-get install graphviz); DOT text is tested above")
    summary = inspect_network(lenet(lenet_weights, batch=1))
    result = write_graph(summary, tmp_path / f"lenet.{suffix}")
    assert result.rendered and result.path == tmp_path / f"lenet.{suffix}"
    data = result.path.read_bytes()
    if suffix == "png":
        assert data.startswith(b"\x89PNG")
        width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
        assert height > width > 300  # top to bottom, big enough to read
    else:
        text = data.decode()
        assert "<svg" in text and all(f">{layer.name}<" in text for layer in summary.layers)


# --------------------------------------------------------------------------- CLI


def test_cli_inspect_table_totals_and_graph(tmp_path, lenet_weights):
    from netdef.cli import app

    out = tmp_path / "lenet.dot"
    result = CliRunner().invoke(
        app, ["inspect", "lenet", "-w", str(lenet_weights), "--graph", str(out), "--by-type"], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert any(re.match(r"^\s*1\s+max_pool\s+Pooling\s+max 2x2 /2\s+1x20x12x12\s+float32", line) for line in lines)
    assert re.search(r"total\s+431,080\s+4\.6 M", result.output)
    assert "lenet fp32: 15 layers, 431,080 weights" in result.output and "for batch 1" in result.output
    assert re.search(r"Convolution\s+2\s+25,570\s+3\.78 M\s+82\.\d%", result.output)
    assert out.read_text().startswith("digraph")


def test_cli_inspect_without_weights_uses_zeros_and_dynamic_batch():
    from netdef.cli import app

    result = CliRunner().invoke(app, ["inspect", "lenet", "--batch", "1:4:8", "-p", "fp16"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "per sample (dynamic batch)" in result.output and "?x20x24x24" in result.output
    assert "float16" in result.output


def test_networks_from_the_onnx_parser_are_read_too(lenet_weights):
    import io
    import warnings

    import torch
    from torch_models import LeNet

    from netdef import backend

    if not hasattr(backend.trt, "OnnxParser"):
        pytest.skip(f"{backend.describe()} has no OnnxParser")
    pytest.importorskip("onnx", reason="torch.onnx.export needs the onnx package")
    model = LeNet().eval()
    model.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in Checkpoint.load(lenet_weights).items()})
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, torch.zeros(1, 1, 28, 28), buffer, dynamo=False, input_names=["input"])
    builder = backend.create_builder()
    network = backend.create_network(builder)
    parser = backend.trt.OnnxParser(network, backend.LOGGER)
    assert parser.parse(buffer.getvalue()), [parser.get_error(i).desc() for i in range(parser.num_errors)]
    parsed = inspect_network(network)
    ours = inspect_network(lenet(lenet_weights, batch=1))
    assert parsed.total_params == ours.total_params
    assert compute_flops(parsed) == compute_flops(ours)
    assert [layer.detail for layer in parsed.layers if layer.type == "CONVOLUTION"] == [
        layer.detail for layer in ours.layers if layer.type == "CONVOLUTION"
    ]

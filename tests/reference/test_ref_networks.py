"""Real networks for the layer families the executor learned last, defined with netdef's builder, built by
TensorRT-RTX on the CPU (where it can) and run by the reference executor against PyTorch or NumPy.

- a GRU over a sequence (a TensorRT loop) vs ``torch.nn.GRU``;
- a causal self-attention block on TensorRT's native attention vs ``scaled_dot_product_attention``;
- a spatial transformer (affine grid + grid sample) vs ``affine_grid`` / ``grid_sample``;
- an NMS post-processing head vs NumPy NMS written from TensorRT's INMSLayer page (TensorRT-RTX
  cannot build NMS on the CPU: the build is checked to be refused, the definition to be accepted).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from netdef.build import build
from netdef.errors import BuildError
from netdef.network import Network
from netdef.reference import run


def _checkpoint(module: nn.Module, prefix: str = "") -> dict[str, np.ndarray]:
    return {prefix + key: value.detach().numpy().copy() for key, value in module.state_dict().items()}


def _build_and_run(net: Network, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    engine = build(net)  # TensorRT-RTX builds the definition on the CPU
    assert len(engine.plan) > 0
    return run(net.trt_network, feeds).outputs


def test_gru_loop_over_a_sequence_matches_torch_gru():
    torch.manual_seed(0)
    gru = nn.GRU(input_size=5, hidden_size=7, batch_first=True).eval()
    x = torch.randn(3, 6, 5)
    h0 = torch.randn(1, 3, 7)
    net = Network(_checkpoint(gru, "gru."), name="gru_net")
    output, h_n = net.gru(net.input("x", (3, 6, 5)), "gru", 7, h0=net.input("h0", (3, 7)))
    net.output(output, "output"), net.output(h_n, "h_n")
    got = _build_and_run(net, {"x": x.numpy(), "h0": h0[0].numpy()})
    expected_output, expected_h = gru(x, h0)
    np.testing.assert_allclose(got["output"], expected_output.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got["h_n"], expected_h[0].detach().numpy(), rtol=1e-5, atol=1e-6)


class CausalSelfAttention(nn.Module):
    """A GPT-style attention block: q, k, v projections, causal attention over heads, output projection."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.q, self.k, self.v, self.proj = (nn.Linear(dim, dim) for _ in range(4))

    def forward(self, x):
        n, t, d = x.shape

        def split(y):
            return y.reshape(n, t, self.heads, d // self.heads).transpose(1, 2)

        y = F.scaled_dot_product_attention(split(self.q(x)), split(self.k(x)), split(self.v(x)), is_causal=True)
        return self.proj(y.transpose(1, 2).reshape(n, t, d))


def test_causal_attention_block_on_native_attention_matches_torch_sdpa():
    torch.manual_seed(1)
    block = CausalSelfAttention(16, 4).eval()
    x = torch.randn(2, 5, 16)
    net = Network(_checkpoint(block, "attn."), name="attention_block")
    inp = net.input("x", (2, 5, 16))
    with net.scope("attn"):
        q, k, v = (net.permute(net.reshape(net.linear(inp, name), (0, 0, 4, 4)), (0, 2, 1, 3)) for name in "qkv")
        y = net.native_attention(q, k, v, is_causal=True, name="attention")
        y = net.linear(net.reshape(net.permute(y, (0, 2, 1, 3)), (0, 0, 16)), "proj")
    net.output(y, "y")
    got = _build_and_run(net, {"x": x.numpy()})
    np.testing.assert_allclose(got["y"], block(x).detach().numpy(), rtol=1e-5, atol=1e-5)


class SpatialTransformer(nn.Module):
    """A localization layer predicts an affine transform; the input is resampled through it."""

    def __init__(self):
        super().__init__()
        self.loc = nn.Linear(3 * 8 * 8, 6)

    def forward(self, x):
        theta = self.loc(x.flatten(1)).reshape(-1, 2, 3)
        grid = F.affine_grid(theta, (x.shape[0], 3, 6, 7), align_corners=False)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def test_spatial_transformer_grid_sample_matches_torch():
    torch.manual_seed(2)
    model = SpatialTransformer().eval()
    with torch.no_grad():  # a transform near the identity, as trained localization layers start
        model.loc.weight.mul_(0.02)
        model.loc.bias.copy_(torch.tensor([0.9, 0.2, 0.1, -0.1, 1.1, 0.05]))
    x = torch.randn(2, 3, 8, 8)
    net = Network(_checkpoint(model), name="stn")
    inp = net.input("x", (2, 3, 8, 8))
    theta = net.reshape(net.linear(net.flatten(inp), "loc"), (0, 2, 3))
    grid = net.affine_grid(theta, (2, 3, 6, 7), align_corners=False)
    net.output(net.grid_sample(inp, grid, "bilinear", "zeros", align_corners=False), "y")
    got = _build_and_run(net, {"x": x.numpy()})
    np.testing.assert_allclose(got["y"], model(x).detach().numpy(), rtol=1e-5, atol=1e-5)


def nms_from_the_spec(boxes_cxcywh, scores, max_boxes, iou_threshold, score_threshold):
    """INMSLayer's algorithm in plain NumPy: per class, visit boxes by decreasing score, keep those above the
    score threshold whose IoU with every kept box is <= the IoU threshold; rows sorted by decreasing score."""
    corners = np.concatenate([boxes_cxcywh[:, :2] - boxes_cxcywh[:, 2:] / 2,
                              boxes_cxcywh[:, :2] + boxes_cxcywh[:, 2:] / 2], axis=1)  # fmt: skip
    area = np.prod(corners[:, 2:] - corners[:, :2], axis=1)
    rows = []
    for c in range(scores.shape[1]):
        kept: list[int] = []
        for i in sorted(range(len(corners)), key=lambda i: -scores[i, c]):
            if scores[i, c] <= score_threshold or len(kept) == max_boxes:
                continue
            ok = True
            for j in kept:
                low, high = np.maximum(corners[i, :2], corners[j, :2]), np.minimum(corners[i, 2:], corners[j, 2:])
                inter = np.prod(np.clip(high - low, 0, None))
                if inter / (area[i] + area[j] - inter) > iou_threshold:
                    ok = False
                    break
            if ok:
                kept.append(i)
        rows += [(-scores[i, c], c, i) for i in kept]
    return [(0, c, i) for _, c, i in sorted(rows)]


def test_nms_head_matches_numpy_nms_and_is_not_built_on_the_cpu():
    rng = np.random.default_rng(4)
    count, classes = 40, 3
    centres = rng.uniform(0, 64, size=(count, 2))
    boxes = np.concatenate([centres, rng.uniform(8, 24, size=(count, 2))], axis=1).astype(np.float32)
    logits = rng.normal(0, 2, size=(count, classes)).astype(np.float32)
    net = Network(name="nms_head")
    scores = net.sigmoid(net.input("logits", (1, count, classes)))
    selected, found = net.non_max_suppression(
        net.input("boxes", (1, count, 4)), scores, 20, iou_threshold=0.45, score_threshold=0.25, box_format="cxcywh"
    )
    net.output(selected, "selected", dtype="int32"), net.output(found, "count", dtype="int32")
    out = run(net.trt_network, {"boxes": boxes[None], "logits": logits[None]}).outputs
    probabilities = 1 / (1 + np.exp(-logits.astype(np.float64)))
    expected = nms_from_the_spec(boxes, probabilities, 20, 0.45, 0.25)
    assert [tuple(row) for row in out["selected"].tolist()] == expected and int(out["count"]) == len(expected)
    assert 0 < len(expected) < np.count_nonzero(probabilities > 0.25)  # some boxes kept, some suppressed
    with pytest.raises(BuildError):
        build(net)


SEQUENCE_NET = '''
"""A sequence model in the user's own file: a GRU (a TensorRT loop), then causal native attention."""
from netdef import register


@register("sequence_user", input_shape=(6, 4), output="y")
def sequence(net, x):
    output, _ = net.gru(x, "gru", 8)
    heads = net.permute(net.reshape(output, (0, 0, 2, 4)), (0, 2, 1, 3))
    y = net.native_attention(heads, heads, heads, is_causal=True, name="attention")
    return net.reshape(net.permute(y, (0, 2, 1, 3)), (0, 0, 8))
'''


def test_user_sequence_network_is_explained_inspected_and_run_by_the_cli(monkeypatch, capsys, tmp_path):
    from cli_runner import netdef as cli

    from netdef.weights.safetensors_io import write_safetensors

    torch.manual_seed(5)
    gru = nn.GRU(4, 8, batch_first=True)
    (tmp_path / "sequence.py").write_text(SEQUENCE_NET)
    write_safetensors(_checkpoint(gru, "gru."), tmp_path / "seq.safetensors")
    x = torch.randn(1, 6, 4)
    np.save(tmp_path / "x.npy", x.numpy())
    target = f"{tmp_path}/sequence.py:sequence"
    code, out, err = cli(monkeypatch, capsys, "explain", target, "-w", tmp_path / "seq.safetensors", "--batch", "1")
    assert code == 0, err
    for kind in ("TRIP_LIMIT", "ITERATOR", "RECURRENCE", "LOOP_OUTPUT", "ATTENTION_INPUT", "ATTENTION_OUTPUT"):
        assert kind in out, kind
    assert "A loop-carried value" in out and "The fused attention" in out
    code, out, err = cli(monkeypatch, capsys, "inspect", target, "-w", tmp_path / "seq.safetensors", "--batch", "1")
    assert code == 0 and "Recurrence" in out and "AttentionInput" in out, err
    code, out, err = cli(monkeypatch, capsys, "run", target, "-w", tmp_path / "seq.safetensors", "-i",
                         tmp_path / "x.npy", "-o", tmp_path / "y.npy")  # fmt: skip
    assert code == 0, err
    with torch.no_grad():
        h = gru(x)[0].reshape(1, 6, 2, 4).transpose(1, 2)
        expected = F.scaled_dot_product_attention(h, h, h, is_causal=True).transpose(1, 2).reshape(1, 6, 8)
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), expected.numpy(), rtol=1e-5, atol=1e-5)


def test_builder_methods_for_conditionals_generators_and_transformer_layers_match_torch():
    """conditional, arange, local_response_norm, rotary_embedding, scatter and nonzero, each vs PyTorch."""
    torch.manual_seed(6)
    x, cos, sin = torch.randn(1, 4, 3, 6), torch.rand(1, 3, 3), torch.rand(1, 3, 3)
    index, src = torch.tensor([[2, 0, 1, 3, 5, 4]]), torch.randn(1, 6)
    net = Network(name="native_ops")
    xt = net.input("x", (1, 4, 3, 6))
    flag = net.input("flag", (), dtype="bool")
    branch = net.conditional(flag, name="branch")
    inside = branch.input(xt)
    net.output(branch.output(net.relu(inside), net.sigmoid(inside)), "y_chosen")
    net.output(net.arange(5), "y_steps", dtype="int32")
    net.output(net.local_response_norm(xt, 3, 0.1, 0.75, 2.0), "y_lrn")
    rotated = net.rotary_embedding(xt, net.input("cos", (1, 3, 3)), net.input("sin", (1, 3, 3)))
    net.output(rotated, "y_rope")
    zeros = net.input("zeros", (1, 6))
    net.output(net.scatter(zeros, 1, net.input("index", (1, 6), dtype="int64"), net.input("src", (1, 6))), "y_scatter")
    net.output(net.nonzero(net.input("mask", (2, 3))), "y_nonzero", dtype="int64")
    mask = torch.tensor([[1.0, 0.0, 2.0], [0.0, 0.0, 3.0]])
    feeds = {"x": x.numpy(), "cos": cos.numpy(), "sin": sin.numpy(), "zeros": np.zeros((1, 6), np.float32),
             "index": index.numpy(), "src": src.numpy(), "mask": mask.numpy()}  # fmt: skip
    for flag_value in (True, False):
        out = run(net.trt_network, {**feeds, "flag": np.array(flag_value)}).outputs
        chosen = torch.relu(x) if flag_value else torch.sigmoid(x)
        np.testing.assert_allclose(out["y_chosen"], chosen.numpy(), rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(out["y_steps"], torch.arange(5).numpy())
    lrn = F.local_response_norm(x, 3, 0.1, 0.75, 2.0)
    np.testing.assert_allclose(out["y_lrn"], lrn.numpy(), rtol=1e-5, atol=1e-6)
    x1, x2 = x[..., :3], x[..., 3:]
    c, s = cos[:, None], sin[:, None]
    rope = torch.cat([x1 * c - x2 * s, x2 * c + x1 * s], dim=-1)
    np.testing.assert_allclose(out["y_rope"], rope.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(out["y_scatter"], torch.zeros(1, 6).scatter(1, index, src).numpy())
    np.testing.assert_array_equal(out["y_nonzero"], torch.nonzero(mask).T.numpy())

"""Native attention vs torch's scaled_dot_product_attention; rotary embedding and KV-cache update vs ONNX's
RotaryEmbedding and TensorScatter; MoE vs a PyTorch loop over experts written from TensorRT's MoE page."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st
from onnx_oracle import onnx_op
from refhelpers import FEW, Net, close, rand, t

from netdef.backend import create_builder, trt
from netdef.reference import run

SOFTMAX = trt.AttentionNormalizationOp.SOFTMAX


def _attention_net(q, k, v, causal=trt.CausalMaskKind.NONE, norm=SOFTMAX):
    net = Net()
    attention = net.network.add_attention_v2(net.input("q", q), net.input("k", k), net.input("v", v), norm, causal)
    attention.decomposable = True
    return net, attention


@FEW
@given(
    st.integers(1, 2),
    st.sampled_from([(2, 2), (4, 2), (4, 1)]),
    st.integers(1, 5),
    st.integers(1, 6),
    st.sampled_from(["none", "upper_left", "lower_right", "bool", "float"]),
    st.integers(0, 2**16),
)
def test_attention_matches_torch_sdpa(batch, heads, s_q, s_kv, masking, seed):
    rng = np.random.default_rng(seed)
    n_q, n_kv = heads
    q, k, v = rand(rng, batch, n_q, s_q, 8), rand(rng, batch, n_kv, s_kv, 8), rand(rng, batch, n_kv, s_kv, 8)
    causal = {"upper_left": trt.CausalMaskKind.UPPER_LEFT, "lower_right": trt.CausalMaskKind.LOWER_RIGHT}
    net, attention = _attention_net(q, k, v, causal.get(masking, trt.CausalMaskKind.NONE))
    rows, cols = np.arange(s_q)[:, None], np.arange(s_kv)[None, :]
    mask = None
    if masking == "upper_left":
        mask = cols <= rows
    elif masking == "lower_right":
        mask = cols <= rows + s_kv - s_q
    elif masking == "bool":
        mask = rng.random((1, 1, s_q, s_kv)) < 0.7
        mask[..., 0] = True  # torch gives NaN for a row with nothing to attend to
        attention.mask = net.input("mask", mask)
    elif masking == "float":
        mask = rand(rng, batch, 1, s_q, s_kv)
        attention.mask = net.input("mask", mask)
    if masking in ("upper_left", "lower_right"):
        keep = mask.any(axis=-1)  # rows with no visible key: torch gives NaN, TensorRT's layer 0
    got = net.compute(attention)
    torch_mask = None if mask is None else torch.from_numpy(np.ascontiguousarray(mask))
    expected = F.scaled_dot_product_attention(
        t(q), t(k), t(v), attn_mask=torch_mask, scale=1.0, enable_gqa=n_q != n_kv
    ).numpy()
    if masking in ("upper_left", "lower_right"):
        assert np.all(got[..., ~keep, :] == 0)
        got, expected = got[..., keep, :], expected[..., keep, :]
    close(got, expected, rtol=1e-5, atol=1e-5)


def test_attention_key_lengths_norm_none_and_quantized_softmax():
    rng = np.random.default_rng(0)
    q, k, v = rand(rng, 2, 2, 3, 4), rand(rng, 2, 2, 5, 4), rand(rng, 2, 2, 5, 4)
    lengths = np.array([5, 2], np.int32)
    net, attention = _attention_net(q, k, v)
    attention.key_value_lengths = net.input("lengths", lengths)
    got = net.compute(attention)
    for b, length in enumerate(lengths):
        expected = F.scaled_dot_product_attention(t(q[b : b + 1]), t(k[b : b + 1, :, :length]),
                                                  t(v[b : b + 1, :, :length]), scale=1.0)  # fmt: skip
        close(got[b : b + 1], expected, rtol=1e-5, atol=1e-6)
    net, attention = _attention_net(q, k, v, norm=trt.AttentionNormalizationOp.NONE)
    close(net.compute(attention), (q @ k.swapaxes(-1, -2)) @ v, rtol=1e-5, atol=1e-5)
    # FP8-quantized softmax: probabilities rounded to FP8 steps of the scale before the product with V
    scale = np.float32(1 / 448)
    net, attention = _attention_net(q, k, v)
    attention.normalization_quantize_scale = net.input("s", np.array(scale, np.float32))
    attention.normalization_quantize_to_type = trt.fp8
    p = torch.softmax(t(q) @ t(k).transpose(-1, -2), dim=-1).numpy()
    p = (p / scale).astype(ml_dtypes.float8_e4m3fn).astype(np.float32) * scale
    close(net.compute(attention), p @ v, rtol=1e-5, atol=1e-6)


def test_causal_attention_block_is_built_by_tensorrt():
    rng = np.random.default_rng(1)
    q = rand(rng, 1, 2, 4, 8)
    net, attention = _attention_net(q, q, q, trt.CausalMaskKind.UPPER_LEFT)
    net.output(attention)
    builder = create_builder()
    assert builder.build_serialized_network(net.network, builder.create_builder_config()) is not None


@FEW
@given(st.booleans(), st.sampled_from([0, 4]), st.booleans(), st.integers(0, 2**16))
def test_rotary_embedding_matches_onnx(interleaved, rotary_dim, positions, seed):
    rng = np.random.default_rng(seed)
    batch, heads, seq, dim = 2, 3, 4, 8
    half = (rotary_dim or dim) // 2
    x = rand(rng, batch, heads, seq, dim)
    table = rng.uniform(0, 2 * np.pi, size=(10 if positions else batch * seq, half))
    cos, sin = np.cos(table).astype(np.float32), np.sin(table).astype(np.float32)
    ids = rng.integers(0, 10, size=(batch, seq)).astype(np.int64)
    if not positions:
        cos, sin = cos.reshape(batch, seq, half), sin.reshape(batch, seq, half)
    net = Net()
    layer = net.network.add_rotary_embedding(
        net.input("x", x), net.input("cos", cos), net.input("sin", sin), interleaved, rotary_dim
    )
    if positions:
        layer.set_input(3, net.input("ids", ids))
    got = net.compute(layer)
    expected = onnx_op(
        "RotaryEmbedding", [x, cos, sin, ids if positions else None], opset=23,
        interleaved=int(interleaved), rotary_embedding_dim=rotary_dim,
    )[0]  # fmt: skip
    close(got, expected, rtol=1e-5, atol=1e-6)


@FEW
@given(st.integers(1, 3), st.integers(1, 3), st.integers(0, 2**16))
def test_kv_cache_update_matches_onnx_tensor_scatter(batch, new, seed):
    rng = np.random.default_rng(seed)
    cache, update = rand(rng, batch, 2, 6, 4), rand(rng, batch, 2, new, 4)
    indices = rng.integers(0, 6 - new + 1, size=batch).astype(np.int32)
    net = Net()
    layer = net.network.add_kv_cache_update(
        net.input("cache", cache), net.input("update", update), net.input("at", indices), trt.KVCacheMode.LINEAR
    )
    expected = onnx_op("TensorScatter", [cache, update, indices.astype(np.int64)], axis=2)[0]
    np.testing.assert_array_equal(net.compute(layer), expected)


def test_moe_matches_a_torch_loop_over_experts():
    rng = np.random.default_rng(2)
    experts, size, inner, top = 4, 6, 5, 2
    x = rand(rng, 1, 3, size)
    chosen = np.array([[[0, 2], [3, 3], [1, 0]]], np.int32)
    weights = rng.random((1, 3, top)).astype(np.float32)
    gate, up, down = rand(rng, experts, size, inner), rand(rng, experts, size, inner), rand(rng, experts, inner, size)
    biases = rand(rng, experts, inner), rand(rng, experts, inner), rand(rng, experts, size)
    net = Net()
    layer = net.network.add_moe(net.input("x", x), net.input("e", chosen), net.input("w", weights))
    layer.set_gated_weights(net.input("g", gate), net.input("u", up), net.input("d", down), trt.MoEActType.SILU)
    layer.set_gated_biases(*(net.input(name, b) for name, b in zip(("gb", "ub", "db"), biases, strict=True)))
    got = net.compute(layer)
    expected = torch.zeros(1, 3, size)
    for token in range(3):
        h = t(x[0, token])
        for slot in range(top):
            e = int(chosen[0, token, slot])
            glu = F.silu(h @ t(gate[e]) + t(biases[0][e])) * (h @ t(up[e]) + t(biases[1][e]))
            expected[0, token] += float(weights[0, token, slot]) * (glu @ t(down[e]) + t(biases[2][e]))
    close(got, expected, rtol=1e-5, atol=1e-5)


def test_attention_layers_are_explained():
    from netdef.reference import describe_layer

    q = np.zeros((1, 1, 2, 4), np.float32)
    net, attention = _attention_net(q, q, q, trt.CausalMaskKind.LOWER_RIGHT)
    net.output(attention)
    info = describe_layer(net.network.get_layer(0))
    assert info["type"] == "ATTENTION_INPUT" and info["params"]["causal_kind"] == "LOWER_RIGHT"
    assert run(net.network, net.feeds).outputs[attention.get_output(0).name].shape == (1, 1, 2, 4)

"""Transformer layers TensorRT provides natively: fused attention, rotary embedding, KV-cache update, MoE."""

from __future__ import annotations

import numpy as np

from netdef.backend import trt
from netdef.reference import costs
from netdef.reference.dtypes import FLOAT32, FP8_MAX, compute, integer_range, numpy_dtype
from netdef.reference.node import Unsupported
from netdef.reference.registry import register

_QUERY, _KEY, _VALUE, _MASK, _QUANT_SCALE, _QUERY_LENGTHS, _KV_LENGTHS = range(7)


def _given(inputs, index: int) -> bool:
    return len(inputs) > index and inputs[index] is not None


def _describe_attention(layer) -> dict:
    attention = layer.attention
    params = {"attention": attention.name, "norm_op": attention.norm_op, "causal_kind": attention.causal_kind}
    params["mask"] = "input 3" if layer.num_inputs > _MASK and layer.get_input(_MASK) is not None else None
    if layer.num_inputs > _QUANT_SCALE and layer.get_input(_QUANT_SCALE) is not None:
        params["normalization_quantize_to_type"] = attention.normalization_quantize_to_type
    params["query_form"], params["key_value_form"] = attention.query_form, attention.key_value_form
    return params


def _fake_quantize(p: np.ndarray, scale: np.ndarray, to_type) -> np.ndarray:
    """p quantized to ``to_type`` with ``scale`` and dequantized again (FP8: saturating; INT8: round half even)."""
    target = numpy_dtype(to_type)
    scaled = p / scale
    if target.kind in "iu":
        low, high = integer_range(target)
        return np.clip(np.rint(scaled), low, high) * scale
    return np.clip(scaled, -FP8_MAX, FP8_MAX).astype(target).astype(FLOAT32) * scale


def _attention_flops(layer) -> int | None:
    """Two matrix products (2 * H per score each) and the softmax (3 per score) over B * Nq * Sq * Skv scores."""
    q, k = costs.input_shape(layer, _QUERY), costs.input_shape(layer, _KEY)
    if q is None or k is None:
        return None
    scores = costs.count(q[:-1]) * max(k[-2], 1)
    return scores * (4 * max(q[-1], 1) + 3)


def _moe_flops(layer) -> int | None:
    """Per token and selected expert: three products with the expert's weights (2 H I each) and the gating."""
    hidden, experts, gate = (costs.input_shape(layer, i) for i in (0, 1, 3))
    if hidden is None or experts is None or gate is None:
        return None
    tokens = costs.count(hidden[:-1])
    size, inner = max(hidden[-1], 1), max(gate[-1], 1)
    return tokens * max(experts[-1], 1) * (6 * size * inner + 3 * inner + 2 * size)


@register("ATTENTION_INPUT", "IAttentionInputLayer", _describe_attention, family="attention", flops=_attention_flops)
def attention_input(node, inputs):
    """The fused attention: y = norm(Q K^T masked) V per batch and head (no 1/sqrt(d) scaling: Q comes pre-scaled).

    Q [B, Nq, Sq, H], K and V [B, Nkv, Skv, H] (PADDED_BHND); with Nq = g Nkv (grouped-query attention)
    query head n uses key/value head n // g. Input 3, the mask [., ., Sq, Skv] broadcast over batch and
    heads: a bool mask lets position (i, j) attend where true; a float mask is added to the scores. The
    causal kinds (no mask allowed with them) let i attend to j <= i (UPPER_LEFT) or j <= i + Skv - Sq
    (LOWER_RIGHT). Input 6, key/value lengths [B], hides keys j >= length. ``norm_op`` SOFTMAX
    normalizes over the keys (a row with every key hidden gives 0); NONE keeps the scores, 0 where
    hidden. With input 4 (normalization_quantize_scale s), the normalized scores are quantized to
    ``normalization_quantize_to_type`` (FP8 or INT8) and dequantized (round(P / s) s) before the
    product with V. Computed in float32. The output has Q's shape and is passed on by ATTENTION_OUTPUT.
    """
    attention = node.attr("attention")
    if attention.query_form != trt.AttentionIOForm.PADDED_BHND or (
        attention.key_value_form != trt.AttentionIOForm.PADDED_BHND
    ):
        raise Unsupported("attention in the PACKED_NHD form (only PADDED_BHND is computed)")
    q, k, v = (compute(inputs[i]) for i in (_QUERY, _KEY, _VALUE))
    groups = q.shape[1] // k.shape[1]
    k, v = np.repeat(k, groups, axis=1), np.repeat(v, groups, axis=1)
    scores = np.matmul(q, np.swapaxes(k, -1, -2))
    s_q, s_kv = scores.shape[-2:]
    allowed = np.ones((1, 1, s_q, s_kv), bool)
    if _given(inputs, _MASK):
        mask = inputs[_MASK]
        if mask.dtype == np.bool_:
            allowed = allowed & mask
        else:
            scores = scores + compute(mask)
    causal = attention.causal_kind
    rows, cols = np.arange(s_q)[:, None], np.arange(s_kv)[None, :]
    if causal == trt.CausalMaskKind.UPPER_LEFT:
        allowed = allowed & (cols <= rows)
    elif causal == trt.CausalMaskKind.LOWER_RIGHT:
        allowed = allowed & (cols <= rows + s_kv - s_q)
    if _given(inputs, _KV_LENGTHS):
        lengths = np.asarray(inputs[_KV_LENGTHS]).reshape(-1, 1, 1, 1)
        allowed = allowed & (cols[None, None] < lengths)
    allowed = np.broadcast_to(allowed, scores.shape)
    if attention.norm_op == trt.AttentionNormalizationOp.SOFTMAX:
        masked = np.where(allowed, scores, -np.inf)
        peak = np.max(masked, axis=-1, keepdims=True)
        weights = np.where(allowed, np.exp(masked - np.where(np.isfinite(peak), peak, 0)), 0).astype(FLOAT32)
        total = np.sum(weights, axis=-1, keepdims=True)
        probabilities = np.divide(weights, total, out=np.zeros_like(weights), where=total > 0)
    else:
        probabilities = np.where(allowed, scores, 0).astype(FLOAT32)
    if _given(inputs, _QUANT_SCALE):
        scale = compute(np.asarray(inputs[_QUANT_SCALE]))
        probabilities = _fake_quantize(probabilities, scale, attention.normalization_quantize_to_type)
    return np.matmul(probabilities, v)


@register("ATTENTION_OUTPUT", "IAttentionOutputLayer", family="attention", flops=costs.free)
def attention_output(node, inputs):
    """The result of a fused attention (see ATTENTION_INPUT), passed on unchanged: y = x."""
    return inputs[0]


@register(
    "ROTARY_EMBEDDING",
    "IRotaryEmbeddingLayer",
    ("interleaved", "rotary_embedding_dim"),
    family="attention",
    flops=costs.per_output(3),
)
def rotary_embedding(node, inputs):
    """Rotary position embedding: rotate pairs (x1, x2) of the first R features by the angle in cos/sin.

    x [B, N, S, H]; cos and sin [B, S, R/2], or [P, R/2] indexed by position ids [B, S] (input 3);
    R = ``rotary_embedding_dim`` (0: all of H). Pairs are (x[i], x[i + R/2]) for i < R/2, or adjacent
    (x[2i], x[2i + 1]) when ``interleaved``: y1 = x1 cos - x2 sin, y2 = x2 cos + x1 sin. Features past R
    pass unchanged. Computed in float32 (ONNX RotaryEmbedding, opset 23).
    """
    x, cos, sin = (compute(inputs[i]) for i in range(3))
    if _given(inputs, 3):
        positions = np.asarray(inputs[3]).astype(np.int64)
        cos, sin = cos[positions], sin[positions]
    rotary = int(node.attr("rotary_embedding_dim")) or x.shape[-1]
    cos, sin = cos[:, None], sin[:, None]
    rotated, rest = x[..., :rotary], x[..., rotary:]
    if node.attr("interleaved"):
        x1, x2 = rotated[..., 0::2], rotated[..., 1::2]
        out = np.stack([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1).reshape(rotated.shape)
    else:
        half = rotary // 2
        x1, x2 = rotated[..., :half], rotated[..., half:]
        out = np.concatenate([x1 * cos - x2 * sin, x2 * cos + x1 * sin], axis=-1)
    return np.concatenate([out, rest], axis=-1)


@register("KV_CACHE_UPDATE", "IKVCacheUpdateLayer", ("cache_mode", "update_form"), family="attention", flops=costs.free)
def kv_cache_update(node, inputs):
    """The cache with each sequence's new keys/values written at its write index: y[b, :, w_b + t] = update[b, :, t].

    cache [B, N, S_max, H], update [B, N, S, H] (PADDED_BHND), write_indices [B]; LINEAR mode writes
    positions w_b .. w_b + S - 1, which must lie inside the cache (ONNX TensorScatter, linear mode).
    """
    if node.attr("update_form") != trt.AttentionIOForm.PADDED_BHND:
        raise Unsupported("KV-cache update in the PACKED_NHD form (only PADDED_BHND is computed)")
    cache, update = inputs[0], inputs[1]
    indices = np.asarray(inputs[2]).reshape(-1)
    out = cache.copy()
    length = update.shape[2]
    for b in range(cache.shape[0]):
        start = int(indices[b % indices.size])
        if start < 0 or start + length > cache.shape[2]:
            raise Unsupported(f"write index {start} + {length} new positions exceeds the cache length {cache.shape[2]}")
        out[b, :, start : start + length] = update[b]
    return out


def _silu(x: np.ndarray) -> np.ndarray:
    return x / (1 + np.exp(-x))


@register("MOE", "IMoELayer", ("activation_type", "quantization_to_type"), family="attention", flops=_moe_flops)
def moe(node, inputs):
    """Mixture of experts: y[t] = sum_k score[t, k] * expert_{e[t, k]}(x[t]), each expert a gated linear unit.

    expert_e(x) = (act(x W_gate[e] + b_gate[e]) * (x W_up[e] + b_up[e])) W_down[e] + b_down[e] with
    hidden states x [B, S, H], selected experts e and scores [B, S, K], W_gate and W_up [E, H, I],
    W_down [E, I, H] (inputs 3-5), optional biases (inputs 6-8) and act NONE or SILU. With static
    quantization (input 9, the scale s, [] or [E]) the gated product is quantized to FP8 and
    dequantized before W_down. Computed in float32.
    """
    x, experts, scores = compute(inputs[0]), np.asarray(inputs[1]).astype(np.int64), compute(inputs[2])
    if not all(_given(inputs, i) for i in (3, 4, 5)):
        raise Unsupported("MoE layer without gated weights (set_gated_weights)")
    gate, up, down = (compute(inputs[i]) for i in (3, 4, 5))
    biases = [compute(inputs[i]) if _given(inputs, i) else None for i in (6, 7, 8)]
    silu = node.attr("activation_type") == trt.MoEActType.SILU
    scale = compute(np.asarray(inputs[9])).reshape(-1) if _given(inputs, 9) else None
    out = np.zeros_like(x)
    for e in np.unique(experts):
        chosen = experts == e
        weight = np.sum(np.where(chosen, scores, 0), axis=-1, keepdims=True)
        tokens = chosen.any(axis=-1)
        h = x[tokens]
        g = h @ gate[e] + (biases[0][e] if biases[0] is not None else 0)
        u = h @ up[e] + (biases[1][e] if biases[1] is not None else 0)
        product = (_silu(g) if silu else g) * u
        if scale is not None:
            s = scale[e % scale.size]
            product = np.clip(product / s, -FP8_MAX, FP8_MAX).astype(numpy_dtype(trt.DataType.FP8)).astype(FLOAT32) * s
        y = product @ down[e] + (biases[2][e] if biases[2] is not None else 0)
        out[tokens] += weight[tokens] * y
    return out

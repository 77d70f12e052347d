"""Vision Transformers ViT-B/16, B/32, L/16, L/32 and H/14 (Dosovitskiy et al., 2020) as in torchvision's
``vision_transformer.py``.

Takes torchvision checkpoints as they are: ``conv_proj`` (patch embedding), ``class_token``,
``encoder.pos_embedding``, ``encoder.layers.encoder_layer_{i}.{ln_1, self_attention, ln_2, mlp.0,
mlp.3}``, ``encoder.ln`` and ``heads.head``. The class token and the position embedding are
constants; LayerNorm is TensorRT's normalization layer; attention is matrix multiplies and a softmax.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from architectures.common import num_classes as infer_num_classes
from architectures.registry import register
from netdef.errors import NetworkDefinitionError

if TYPE_CHECKING:
    from netdef.network import Network, Tensor


LAYER_NORM_EPS = 1e-6  # torchvision: partial(nn.LayerNorm, eps=1e-6)


def encoder_block(net: Network, x: Tensor, num_heads: int, mlp_dim: int) -> Tensor:
    """Pre-norm block: ``x + attention(ln_1(x))``, then ``+ mlp(ln_2(.))`` with a GELU MLP."""
    y = net.layer_norm(x, "ln_1", eps=LAYER_NORM_EPS)
    y = net.multi_head_attention(y, "self_attention", num_heads)
    x = net.add(x, y, name="attention_residual")
    y = net.layer_norm(x, "ln_2", eps=LAYER_NORM_EPS)
    with net.scope("mlp"):
        y = net.gelu(net.linear(y, "0", mlp_dim), name="1")
        y = net.linear(y, "3", net.shape_of(x)[-1])
    return net.add(x, y, name="mlp_residual")


def encoder(net: Network, x: Tensor, num_layers: int, num_heads: int, mlp_dim: int) -> Tensor:
    """``encoder``: add the position embedding, ``num_layers`` blocks, final LayerNorm ``ln``."""
    with net.scope("encoder"):
        seq_length, hidden_dim = net.shape_of(x)[1:]
        pos_embedding = net.parameter("pos_embedding", (1, seq_length, hidden_dim))
        x = net.add(x, pos_embedding, name="add_pos_embedding")
        for i in range(num_layers):
            with net.scope("layers"), net.scope(f"encoder_layer_{i}"):
                x = encoder_block(net, x, num_heads, mlp_dim)
        return net.layer_norm(x, "ln", eps=LAYER_NORM_EPS)


def _process_input(net: Network, x: Tensor, patch_size: int, hidden_dim: int) -> Tensor:
    """``(N, 3, H, W)`` -> patch embeddings ``(N, H/p * W/p, hidden_dim)``."""
    _, _, h, w = net.shape_of(x)
    if h % patch_size or w % patch_size:
        raise NetworkDefinitionError(f"conv_proj: input {h}x{w} is not divisible by the patch size {patch_size}")
    n_h, n_w = h // patch_size, w // patch_size
    x = net.conv2d(x, "conv_proj", hidden_dim, patch_size, stride=patch_size)
    x = net.reshape(x, (0, hidden_dim, n_h * n_w), name="process_input.reshape")
    return net.permute(x, (0, 2, 1), name="process_input.permute")


def vision_transformer(
    net: Network,
    x: Tensor,
    patch_size: int,
    num_layers: int,
    num_heads: int,
    hidden_dim: int,
    mlp_dim: int,
    num_classes: int | None = None,
) -> Tensor:
    """Patch embedding, class token, encoder, the class token's output through ``heads.head``."""
    x = _process_input(net, x, patch_size, hidden_dim)
    class_token = net.parameter("class_token", (1, 1, hidden_dim))
    class_token = net.broadcast_batch(class_token, x, name="class_token.expand")
    x = net.concat([class_token, x], dim=1, name="concat_class_token")
    x = encoder(net, x, num_layers, num_heads, mlp_dim)
    x = net.gather(x, 0, dim=1, name="class_token_output")  # x[:, 0]
    with net.scope("heads"):
        return net.linear(x, "head", infer_num_classes(net, "head", num_classes))


def _register(name: str, patch_size: int, num_layers: int, num_heads: int, hidden_dim: int, mlp_dim: int) -> None:
    def define(
        net: Network,
        x: Tensor,
        num_classes: int | None = None,
        patch_size: int = patch_size,
        num_layers: int = num_layers,
        num_heads: int = num_heads,
        hidden_dim: int = hidden_dim,
        mlp_dim: int = mlp_dim,
    ) -> Tensor:
        return vision_transformer(net, x, patch_size, num_layers, num_heads, hidden_dim, mlp_dim, num_classes)

    size = {768: "B", 1024: "L", 1280: "H"}[hidden_dim]
    description = (
        f"ViT-{size}/{patch_size}: {patch_size}x{patch_size} patches, {num_layers} layers, {num_heads} heads, "
        f"hidden {hidden_dim}, MLP {mlp_dim} (sizes overridable)"
    )
    crop = 518 if name == "vit_h_14" else 224  # the crop size of torchvision's weights (SWAG: 518)
    register(name, input_shape=(3, crop, crop), output="logits", description=description)(define)


_register("vit_b_16", 16, 12, 12, 768, 3072)
_register("vit_b_32", 32, 12, 12, 768, 3072)
_register("vit_l_16", 16, 24, 16, 1024, 4096)
_register("vit_l_32", 32, 24, 16, 1024, 4096)
_register("vit_h_14", 14, 32, 16, 1280, 5120)

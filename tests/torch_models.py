"""Small PyTorch reference modules, for comparing netdef engines against PyTorch on the CPU."""

from __future__ import annotations

import torch
from torch import nn

from netdef.cli.torch_models import lenet_module


def LeNet() -> nn.Module:  # noqa: N802 - used like the class it returns
    """TensorRT's MNIST sample network in PyTorch, 10 logits out (the one netdef ships for --vs-torch)."""
    return lenet_module()


# ---------------------------------------------------------------------------------------------
# torchvision twins (torchvision has no CPU build here): same structure and parameter names as
# torchvision.models, so that their state_dict is a torchvision checkpoint.


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None, **_) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + identity)


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(
        self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None, groups: int = 1,
        base_width: int = 64,
    ) -> None:  # fmt: skip
        super().__init__()
        width = int(planes * (base_width / 64.0)) * groups
        self.conv1 = nn.Conv2d(inplanes, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, groups=groups, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.relu(self.bn3(self.conv3(out)) + identity)


class ResNet(nn.Module):
    """torchvision's ResNet: ``ResNet(Bottleneck, [3, 4, 6, 3])`` is resnet50."""

    def __init__(self, block, layers, num_classes: int = 1000, groups: int = 1, width_per_group: int = 64) -> None:
        super().__init__()
        self.inplanes, self.groups, self.base_width = 64, groups, width_per_group
        self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.layer1 = self._make_layer(block, 64, layers[0])
        self.layer2 = self._make_layer(block, 128, layers[1], stride=2)
        self.layer3 = self._make_layer(block, 256, layers[2], stride=2)
        self.layer4 = self._make_layer(block, 512, layers[3], stride=2)
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512 * block.expansion, num_classes)

    def _make_layer(self, block, planes: int, blocks: int, stride: int = 1) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes * block.expansion, 1, stride, bias=False),
                nn.BatchNorm2d(planes * block.expansion),
            )
        kw = {"groups": self.groups, "base_width": self.base_width}
        layers = [block(self.inplanes, planes, stride, downsample, **kw)]
        self.inplanes = planes * block.expansion
        layers += [block(self.inplanes, planes, **kw) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


RESNETS = {
    "resnet18": (BasicBlock, [2, 2, 2, 2], {}),
    "resnet34": (BasicBlock, [3, 4, 6, 3], {}),
    "resnet50": (Bottleneck, [3, 4, 6, 3], {}),
    "resnet101": (Bottleneck, [3, 4, 23, 3], {}),
    "resnet152": (Bottleneck, [3, 8, 36, 3], {}),
    "resnext50_32x4d": (Bottleneck, [3, 4, 6, 3], {"groups": 32, "width_per_group": 4}),
    "wide_resnet50_2": (Bottleneck, [3, 4, 6, 3], {"width_per_group": 128}),
}

VGG16_CFG = [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"]


class VGG(nn.Module):
    """torchvision's VGG with configuration D (VGG-16), optionally with BatchNorm."""

    def __init__(self, batch_norm: bool = False, num_classes: int = 1000) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        in_channels = 3
        for v in VGG16_CFG:
            if v == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
                continue
            layers.append(nn.Conv2d(in_channels, v, kernel_size=3, padding=1))
            layers += [nn.BatchNorm2d(v), nn.ReLU(inplace=True)] if batch_norm else [nn.ReLU(inplace=True)]
            in_channels = v
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(
            nn.Linear(512 * 7 * 7, 4096), nn.ReLU(True), nn.Dropout(),
            nn.Linear(4096, 4096), nn.ReLU(True), nn.Dropout(),
            nn.Linear(4096, num_classes),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


def conv_norm_activation(inp: int, oup: int, kernel_size: int = 3, stride: int = 1, groups: int = 1) -> nn.Sequential:
    """torchvision's ``Conv2dNormActivation`` with ReLU6: ``.0`` conv, ``.1`` BatchNorm, ``.2`` ReLU6."""
    padding = (kernel_size - 1) // 2
    return nn.Sequential(
        nn.Conv2d(inp, oup, kernel_size, stride, padding, groups=groups, bias=False),
        nn.BatchNorm2d(oup),
        nn.ReLU6(inplace=True),
    )


class InvertedResidual(nn.Module):
    def __init__(self, inp: int, oup: int, stride: int, expand_ratio: int) -> None:
        super().__init__()
        hidden_dim = int(round(inp * expand_ratio))
        self.use_res_connect = stride == 1 and inp == oup
        layers: list[nn.Module] = [conv_norm_activation(inp, hidden_dim, kernel_size=1)] if expand_ratio != 1 else []
        layers += [
            conv_norm_activation(hidden_dim, hidden_dim, stride=stride, groups=hidden_dim),
            nn.Conv2d(hidden_dim, oup, 1, 1, 0, bias=False),
            nn.BatchNorm2d(oup),
        ]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


class MobileNetV2(nn.Module):
    """torchvision's MobileNetV2 at width 1.0."""

    SETTING = [
        [1, 16, 1, 1],
        [6, 24, 2, 2],
        [6, 32, 3, 2],
        [6, 64, 4, 2],
        [6, 96, 3, 1],
        [6, 160, 3, 2],
        [6, 320, 1, 1],
    ]

    def __init__(self, num_classes: int = 1000) -> None:
        super().__init__()
        input_channel, features = 32, [conv_norm_activation(3, 32, stride=2)]
        for t, c, n, s in self.SETTING:
            for i in range(n):
                features.append(InvertedResidual(input_channel, c, s if i == 0 else 1, t))
                input_channel = c
        features.append(conv_norm_activation(input_channel, 1280, kernel_size=1))
        self.features = nn.Sequential(*features)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = nn.functional.adaptive_avg_pool2d(self.features(x), (1, 1))
        return self.classifier(torch.flatten(x, 1))


class MLPBlock(nn.Sequential):
    def __init__(self, in_dim: int, mlp_dim: int) -> None:
        super().__init__(
            nn.Linear(in_dim, mlp_dim), nn.GELU(), nn.Dropout(0.0), nn.Linear(mlp_dim, in_dim), nn.Dropout(0.0)
        )


class EncoderBlock(nn.Module):
    def __init__(self, num_heads: int, hidden_dim: int, mlp_dim: int) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(hidden_dim, eps=1e-6)
        self.self_attention = nn.MultiheadAttention(hidden_dim, num_heads, batch_first=True)
        self.ln_2 = nn.LayerNorm(hidden_dim, eps=1e-6)
        self.mlp = MLPBlock(hidden_dim, mlp_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.ln_1(x)
        y, _ = self.self_attention(y, y, y, need_weights=False)
        x = x + y
        return x + self.mlp(self.ln_2(x))


class Encoder(nn.Module):
    def __init__(self, seq_length: int, num_layers: int, num_heads: int, hidden_dim: int, mlp_dim: int) -> None:
        super().__init__()
        self.pos_embedding = nn.Parameter(torch.empty(1, seq_length, hidden_dim).normal_(std=0.02))
        self.layers = nn.Sequential()
        for i in range(num_layers):
            self.layers.add_module(f"encoder_layer_{i}", EncoderBlock(num_heads, hidden_dim, mlp_dim))
        self.ln = nn.LayerNorm(hidden_dim, eps=1e-6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ln(self.layers(x + self.pos_embedding))


class VisionTransformer(nn.Module):
    """torchvision's VisionTransformer; the defaults are ViT-B/16."""

    def __init__(
        self, image_size: int = 224, patch_size: int = 16, num_layers: int = 12, num_heads: int = 12,
        hidden_dim: int = 768, mlp_dim: int = 3072, num_classes: int = 1000,
    ) -> None:  # fmt: skip
        super().__init__()
        self.patch_size, self.hidden_dim = patch_size, hidden_dim
        self.conv_proj = nn.Conv2d(3, hidden_dim, kernel_size=patch_size, stride=patch_size)
        self.class_token = nn.Parameter(torch.zeros(1, 1, hidden_dim))
        seq_length = (image_size // patch_size) ** 2 + 1
        self.encoder = Encoder(seq_length, num_layers, num_heads, hidden_dim, mlp_dim)
        self.heads = nn.Sequential()
        self.heads.add_module("head", nn.Linear(hidden_dim, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        x = self.conv_proj(x).reshape(n, self.hidden_dim, -1).permute(0, 2, 1)
        x = torch.cat([self.class_token.expand(n, -1, -1), x], dim=1)
        return self.heads(self.encoder(x)[:, 0])


def torchvision_twin(arch: str, num_classes: int = 1000, **vit_sizes) -> nn.Module:
    """The PyTorch twin of netdef architecture ``arch`` (``vit_sizes``: VisionTransformer's sizes)."""
    if arch in RESNETS:
        block, layers, kw = RESNETS[arch]
        return ResNet(block, layers, num_classes, **kw)
    if arch in ("vgg16", "vgg16_bn"):
        return VGG(batch_norm=arch == "vgg16_bn", num_classes=num_classes)
    if arch == "mobilenet_v2":
        return MobileNetV2(num_classes)
    if arch == "vit_b_16":
        return VisionTransformer(num_classes=num_classes, **vit_sizes)
    raise KeyError(f"no PyTorch twin for {arch!r}")


@torch.no_grad()
def randomize(model: nn.Module, seed: int = 0) -> nn.Module:
    """Seeded random weights that keep activations O(1), and non-default BatchNorm statistics and
    affine parameters (so that folding BatchNorm is really tested). Returns ``model`` in eval mode."""
    gen = torch.Generator().manual_seed(seed)
    for module in model.modules():
        if isinstance(module, nn.Conv2d | nn.Linear):
            fan_in = module.weight[0].numel()
            module.weight.copy_(torch.randn(module.weight.shape, generator=gen) * (2.0 / fan_in) ** 0.5)
            if module.bias is not None:
                module.bias.copy_(torch.randn(module.bias.shape, generator=gen) * 0.1)
        elif isinstance(module, nn.BatchNorm2d):
            c = module.num_features
            module.weight.copy_(torch.rand(c, generator=gen) * 0.5 + 0.5)
            module.bias.copy_(torch.randn(c, generator=gen) * 0.1)
            module.running_mean.copy_(torch.randn(c, generator=gen) * 0.2)
            module.running_var.copy_(torch.rand(c, generator=gen) * 1.5 + 0.5)
        elif isinstance(module, nn.LayerNorm):
            module.weight.copy_(torch.rand(module.weight.shape, generator=gen) * 0.5 + 0.75)
            module.bias.copy_(torch.randn(module.bias.shape, generator=gen) * 0.1)
        elif isinstance(module, nn.MultiheadAttention):
            e = module.embed_dim
            module.in_proj_weight.copy_(torch.randn(module.in_proj_weight.shape, generator=gen) * e**-0.5)
            module.in_proj_bias.copy_(torch.randn(module.in_proj_bias.shape, generator=gen) * 0.1)
    for name, param in model.named_parameters():
        if name in ("class_token", "encoder.pos_embedding"):
            param.copy_(torch.randn(param.shape, generator=gen) * 0.5)
    return model.eval()


def state_dict_arrays(model: nn.Module) -> dict:
    """``model.state_dict()`` as NumPy arrays: a torchvision-style checkpoint (``num_batches_tracked`` kept)."""
    return {k: v.detach().cpu().numpy().copy() for k, v in model.state_dict().items()}


@torch.no_grad()
def calibrate_batch_norm(model: nn.Module, x: torch.Tensor, seed: int = 0, residual_scale: float = 0.2) -> nn.Module:
    """BatchNorm statistics measured on ``x`` (train-mode pass), then randomly perturbed (variance by
    0.75-1.25, mean by 0.1 std): activations stay O(1) and depend on the input, as in a trained network.

    The BatchNorm closing each residual branch gets its weight scaled by ``residual_scale``: trained
    residual branches are small next to the identity; random full-size ones make a deep network
    chaotic (ResNet-152 then amplifies bf16 rounding to the size of the logits themselves).
    """
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the pass
    model.train()
    model(x)
    model.eval()
    gen = torch.Generator().manual_seed(seed)
    for m in norms:
        m.momentum = 0.1
        m.running_var.mul_(torch.rand(m.num_features, generator=gen) * 0.5 + 0.75)
        m.running_mean.add_(torch.randn(m.num_features, generator=gen) * 0.1 * m.running_var.sqrt())
    for m in model.modules():
        if isinstance(m, BasicBlock | Bottleneck):
            (m.bn2 if isinstance(m, BasicBlock) else m.bn3).weight.mul_(residual_scale)
        elif isinstance(m, InvertedResidual) and m.use_res_connect:
            m.conv[-1].weight.mul_(residual_scale)
    return model


@torch.no_grad()
def fit_classifier(model: nn.Module, x: torch.Tensor, seed: int = 0, ridge: float = 1e-3) -> torch.Tensor:
    """Refit the last linear layer (ridge least squares) so that ``model(x)`` picks random labels by a
    clear margin (logit +1 for the label, -1 otherwise), as a trained classifier's would; returns the labels.

    Random weights give near-tied logits, and then no precision can agree on the top-1 class.
    """
    head = [m for m in model.modules() if isinstance(m, nn.Linear)][-1]
    features: list[torch.Tensor] = []
    hook = head.register_forward_hook(lambda module, inputs, output: features.append(inputs[0]))
    model(x)
    hook.remove()
    f = features[0].double()
    mean = f.mean(0)
    scale = (f - mean).norm(dim=1).mean()
    centered = (f - mean) / scale
    classes = head.out_features
    labels = torch.randint(0, classes, (len(x),), generator=torch.Generator().manual_seed(seed))
    target = torch.full((len(x), classes), -1.0, dtype=torch.float64)
    target[torch.arange(len(x)), labels] = 1.0
    gram = centered.T @ centered + ridge * torch.eye(centered.shape[1], dtype=torch.float64)
    weight = torch.linalg.solve(gram, centered.T @ target).T / scale
    head.weight.copy_(weight.float())
    head.bias.copy_((-weight @ mean).float())
    return labels

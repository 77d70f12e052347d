"""YOLOv8, YOLO11 and YOLOv5u detectors from Ultralytics checkpoints, defined from the model's YAML.

The structure is the model's own configuration: the ``backbone`` and ``head`` lists of
``[from, repeats, module, args]`` rows with the ``depth, width, max_channels`` scales, read from
the checkpoint (the ``yaml`` inside an Ultralytics ``.pt``, or the ``ultralytics_yaml`` metadata of
a ``.safetensors``), else the family's standard table in ``yolo_configs.json``. Each row's
module is built by the function of the same name below, mirroring Ultralytics' class (Conv with
its BatchNorm folded and SiLU, C2f, C3k2, C3k, C3, SPPF, C2PSA, Concat, nn.Upsample, Detect).
Weights keep Ultralytics' names (``model.22.cv2.0.0.conv.weight``).

The engine's output is, with ``nms=False``, ``output0`` (B, 4 + nc, anchors): decoded xywh boxes
in input pixels and sigmoid class scores, as ``DetectionModel.eval()(x)[0]``. By default NMS runs
inside the engine too (:meth:`netdef.network.detection.DetectionOps.non_max_suppression`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from architectures.registry import register
from netdef.errors import NetworkDefinitionError

if TYPE_CHECKING:
    from netdef.network import Network, Tensor


CONFIGS = Path(__file__).with_name("yolo_configs.json")
SCALES = "nsmlx"
IMAGE_SIZE = 640
BN_EPS = 1e-3  # Ultralytics sets every BatchNorm2d.eps to 1e-3 (initialize_weights)


# ---------------------------------------------------------------------------- Ultralytics' modules


def autopad(k: int, p: int | None = None, d: int = 1) -> int:
    """'Same' padding for an odd kernel ``k`` with dilation ``d``, unless ``p`` is given."""
    if p is not None:
        return p
    k = d * (k - 1) + 1 if d > 1 else k
    return k // 2


def Conv(net: Network, x: Tensor, c2: int, k: int = 1, s: int = 1, p: int | None = None, g: int = 1, d: int = 1,
         act: bool = True) -> Tensor:  # fmt: skip
    """Conv2d (no bias) -> BatchNorm2d (folded into the convolution) -> SiLU."""
    y = net.conv2d(
        x, "conv", c2, k, stride=s, padding=autopad(k, p, d), dilation=d, groups=g, bias=False, bn="bn", bn_eps=BN_EPS
    )
    return net.silu(y, name="act") if act else y


def DWConv(net: Network, x: Tensor, c2: int, k: int = 1, s: int = 1, act: bool = True) -> Tensor:
    """Depth-wise Conv: groups = gcd(in, out) channels."""
    return Conv(net, x, c2, k, s, g=math.gcd(channels(net, x), c2), act=act)


def Bottleneck(net: Network, x: Tensor, c2: int, shortcut: bool = True, g: int = 1, k=(3, 3), e: float = 0.5):
    """Two Convs (kernels ``k``), plus the input when ``shortcut`` and the channel counts match."""
    c_ = int(c2 * e)
    with net.scope("cv1"):
        y = Conv(net, x, c_, k[0], 1)
    with net.scope("cv2"):
        y = Conv(net, y, c2, k[1], 1, g=g)
    return net.add(x, y, name="add") if shortcut and channels(net, x) == c2 else y


def C2f(net: Network, x: Tensor, c2: int, n: int = 1, shortcut: bool = False, g: int = 1, e: float = 0.5,
        block: Callable[[Network, Tensor, int], Tensor] | None = None) -> Tensor:  # fmt: skip
    """CSP bottleneck with two convolutions: cv1 splits into two halves, each of the ``n`` blocks ``m`` feeds on
    the last piece, cv2 fuses every piece."""
    c = int(c2 * e)
    with net.scope("cv1"):
        y = net.split(Conv(net, x, 2 * c, 1, 1), [c, c], 1, name="chunk")
    for i in range(n):
        with net.scope("m"), net.scope(i):
            if block is None:
                y.append(Bottleneck(net, y[-1], c, shortcut, g, k=(3, 3), e=1.0))
            else:
                y.append(block(net, y[-1], c))
    with net.scope("cv2"):
        return Conv(net, net.concat(y, 1, name="cat"), c2, 1)


def C3(net: Network, x: Tensor, c2: int, n: int = 1, shortcut: bool = True, g: int = 1, e: float = 0.5,
       k=(1, 3)) -> Tensor:  # fmt: skip
    """CSP bottleneck with three convolutions: cv3(cat(m(cv1(x)), cv2(x)))."""
    c_ = int(c2 * e)
    with net.scope("cv1"):
        a = Conv(net, x, c_, 1, 1)
    with net.scope("cv2"):
        b = Conv(net, x, c_, 1, 1)
    for i in range(n):
        with net.scope("m"), net.scope(i):
            a = Bottleneck(net, a, c_, shortcut, g, k=k, e=1.0)
    with net.scope("cv3"):
        return Conv(net, net.concat([a, b], 1, name="cat"), c2, 1)


def C3k(net: Network, x: Tensor, c2: int, n: int = 2, shortcut: bool = True, g: int = 1, e: float = 0.5,
        k: int = 3) -> Tensor:  # fmt: skip
    """C3 whose bottlenecks use ``k`` x ``k`` kernels twice."""
    return C3(net, x, c2, n, shortcut, g, e, k=(k, k))


def C3k2(net: Network, x: Tensor, c2: int, n: int = 1, c3k: bool = False, e: float = 0.5, attn: bool = False,
         g: int = 1, shortcut: bool = True) -> Tensor:  # fmt: skip
    """C2f whose blocks are C3k (``c3k``), Bottleneck + PSABlock (``attn``) or a Bottleneck."""

    def block(net: Network, y: Tensor, c: int) -> Tensor:
        if attn:
            with net.scope(0):
                y = Bottleneck(net, y, c, shortcut, g)
            with net.scope(1):
                return PSABlock(net, y, c, attn_ratio=0.5, num_heads=max(c // 64, 1))
        if c3k:
            return C3k(net, y, c, 2, shortcut, g)
        return Bottleneck(net, y, c, shortcut, g)

    return C2f(net, x, c2, n, shortcut, g, e, block=block)


def SPPF(net: Network, x: Tensor, c2: int, k: int = 5, n: int = 3, shortcut: bool = False,
         cv1_act: bool = False) -> Tensor:  # fmt: skip
    """Spatial pyramid pooling, fast: cv1, then ``n`` chained k x k max pools (stride 1), all concatenated, cv2."""
    c1 = channels(net, x)
    with net.scope("cv1"):
        y = [Conv(net, x, c1 // 2, 1, 1, act=cv1_act)]
    for i in range(n):
        y.append(net.max_pool2d(y[-1], k, 1, k // 2, name=f"m_{i}"))
    with net.scope("cv2"):
        out = Conv(net, net.concat(y, 1, name="cat"), c2, 1, 1)
    return net.add(out, x, name="add") if shortcut and c1 == c2 else out


def Attention(net: Network, x: Tensor, num_heads: int = 8, attn_ratio: float = 0.5) -> Tensor:
    """Multi-head self-attention over the H*W positions; q, k, v from one 1x1 conv, plus a depth-wise
    positional conv of v."""
    _, c, h, w = net.shape_of(x)
    head_dim = c // num_heads
    key_dim = int(head_dim * attn_ratio)
    with net.scope("qkv"):
        qkv = Conv(net, x, c + 2 * key_dim * num_heads, 1, act=False)
    qkv = net.reshape(qkv, (0, num_heads, 2 * key_dim + head_dim, h * w), name="qkv_heads")
    q, k, v = net.split(qkv, [key_dim, key_dim, head_dim], 2, name="qkv_split")
    q = net.mul(q, net.scalar(key_dim**-0.5, q, name="scale"), name="q_scaled")
    attn = net.softmax(net.matmul(q, k, transpose_a=True, name="scores"), -1, name="softmax")  # (B, nh, N, N)
    y = net.reshape(net.matmul(v, attn, transpose_b=True, name="mix"), (0, c, h, w), name="merge_heads")
    with net.scope("pe"):
        pe = Conv(net, net.reshape(v, (0, c, h, w), name="v_map"), c, 3, 1, g=c, act=False)
    y = net.add(y, pe, name="add_pe")
    with net.scope("proj"):
        return Conv(net, y, c, 1, act=False)


def PSABlock(net: Network, x: Tensor, c: int, attn_ratio: float = 0.5, num_heads: int = 4, shortcut: bool = True):
    """Attention then a two-conv feed-forward, each with a residual connection."""
    with net.scope("attn"):
        a = Attention(net, x, num_heads, attn_ratio)
    x = net.add(x, a, name="add_attn") if shortcut else a
    with net.scope("ffn"):
        with net.scope(0):
            f = Conv(net, x, c * 2, 1)
        with net.scope(1):
            f = Conv(net, f, c, 1, act=False)
    return net.add(x, f, name="add_ffn") if shortcut else f


def C2PSA(net: Network, x: Tensor, c2: int, n: int = 1, e: float = 0.5) -> Tensor:
    """cv1 splits in two; ``n`` PSABlocks refine the second half; cv2 fuses both."""
    c1 = channels(net, x)
    c = int(c1 * e)
    with net.scope("cv1"):
        a, b = net.split(Conv(net, x, 2 * c, 1, 1), [c, c], 1, name="split")
    for i in range(n):
        with net.scope("m"), net.scope(i):
            b = PSABlock(net, b, c, attn_ratio=0.5, num_heads=max(c // 64, 1))
    with net.scope("cv2"):
        return Conv(net, net.concat([a, b], 1, name="cat"), c1, 1)


def Concat(net: Network, xs: Sequence[Tensor], dimension: int = 1) -> Tensor:
    return net.concat(list(xs), dimension, name="cat")


def Upsample(net: Network, x: Tensor, size: Any = None, scale_factor: int = 2, mode: str = "nearest") -> Tensor:
    if size is not None:
        raise NetworkDefinitionError("nn.Upsample with a fixed size is not supported; give scale_factor")
    return net.upsample(x, int(scale_factor), mode, name="upsample")


def Detect(net: Network, xs: Sequence[Tensor], nc: int, legacy: bool, strides: Sequence[int]) -> Tensor:
    """Per level: box branch cv2 (4 x 16 DFL bins) and class branch cv3; DFL expectation, anchor-relative
    decoding to xywh in input pixels, sigmoid scores: (B, 4 + nc, anchors) float32."""
    reg_max = 16
    c_box = max(16, channels(net, xs[0]) // 4, reg_max * 4)
    c_cls = max(channels(net, xs[0]), min(nc, 100))
    boxes, scores = [], []
    for i, x in enumerate(xs):
        with net.scope("cv2"), net.scope(i):
            with net.scope(0):
                b = Conv(net, x, c_box, 3)
            with net.scope(1):
                b = Conv(net, b, c_box, 3)
            b = net.conv2d(b, "2", 4 * reg_max, 1)
        with net.scope("cv3"), net.scope(i):
            if legacy:
                with net.scope(0):
                    s = Conv(net, x, c_cls, 3)
                with net.scope(1):
                    s = Conv(net, s, c_cls, 3)
            else:
                with net.scope(0), net.scope(0):
                    s = DWConv(net, x, channels(net, x), 3)
                with net.scope(0), net.scope(1):
                    s = Conv(net, s, c_cls, 1)
                with net.scope(1), net.scope(0):
                    s = DWConv(net, s, c_cls, 3)
                with net.scope(1), net.scope(1):
                    s = Conv(net, s, c_cls, 1)
            s = net.conv2d(s, "2", nc, 1)
        boxes.append(net.reshape(b, (0, 4 * reg_max, -1), name=f"boxes_{i}"))
        scores.append(net.reshape(s, (0, nc, -1), name=f"scores_{i}"))
    distances = net.dfl(net.concat(boxes, 2, name="boxes"), "dfl", reg_max)  # decoding in float32
    xywh = net.decode_anchors(distances, [net.shape_of(x)[2:] for x in xs], strides, name="decode")
    score = net.cast(net.concat(scores, 2, name="scores"), "float32", name="scores_f32")
    return net.concat([xywh, net.sigmoid(score, name="cls_sigmoid")], 1, name="out")


def channels(net: Network, x: Tensor) -> int:
    return int(net.shape_of(x)[1])


# ---------------------------------------------------------------------------- the YAML interpreter

_REPEATED = {"C2f", "C3k2", "C3", "C2PSA"}  # modules whose repeat count is an argument (Ultralytics' repeat_modules)
_SCALED = {"Conv", "C2f", "C3k2", "C3", "SPPF", "C2PSA"}  # out channels scaled by width, capped by max_channels
_MODULES: dict[str, Callable[..., Tensor]] = {
    "Conv": Conv,
    "C2f": C2f,
    "C3k2": C3k2,
    "C3": C3,
    "SPPF": SPPF,
    "C2PSA": C2PSA,
    "Concat": Concat,
    "nn.Upsample": Upsample,
    "Detect": Detect,
}


def make_divisible(x: float, divisor: int) -> int:
    return math.ceil(x / divisor) * divisor


def define_from_config(net: Network, x: Tensor, config: dict[str, Any], scale: str | None, nc: int) -> Tensor:
    """Build ``config``'s backbone and head rows in scope ``model``; returns Detect's (B, 4 + nc, A)."""
    rows = list(config.get("backbone", [])) + list(config.get("head", []))
    unknown = sorted({str(row[2]) for row in rows if str(row[2]) not in _MODULES})
    if unknown:
        raise NetworkDefinitionError(
            f"{net.checkpoint.source}: the model's YAML uses module(s) netdef does not know: {', '.join(unknown)} "
            f"(known: {', '.join(sorted(_MODULES))})"
        )
    depth, width, max_channels = 1.0, 1.0, float("inf")
    scales = config.get("scales")
    if scales:
        scale = scale or config.get("scale") or next(iter(scales))
        if scale not in scales:
            raise NetworkDefinitionError(f"the model's YAML has no scale {scale!r} (it has {', '.join(scales)})")
        depth, width, max_channels = scales[scale]
    else:
        depth, width = config.get("depth_multiple", 1.0), config.get("width_multiple", 1.0)
    legacy = not any(str(row[2]) == "C3k2" for row in rows)
    outputs: list[Tensor] = []
    strides: list[int] = []  # stride of each layer's output
    image = net.shape_of(x)[2]
    with net.scope("model"):
        for i, (source, repeats, module, args) in enumerate(rows):
            args = [_resolve(a, nc) for a in args]
            repeats = max(round(repeats * depth), 1) if repeats > 1 else repeats
            inputs = [outputs[j] if j != -1 else (outputs[-1] if outputs else x) for j in _as_list(source)]
            with net.scope(i):
                if module in _SCALED:
                    args[0] = make_divisible(min(args[0], max_channels) * width, 8)
                    if module in _REPEATED:
                        args.insert(1, repeats)
                        repeats = 1
                    if module == "C3k2" and scale in ("m", "l", "x"):
                        args[2:3] = [True]  # c3k for the larger scales, as Ultralytics' parser sets it
                    if module == "SPPF":  # rows without n/shortcut (v5, v8, 11) activate cv1
                        full = [*args, *[5, 3, False][len(args) - 1 :]]  # c2, k, n, shortcut with SPPF's defaults
                        y = SPPF(net, inputs[0], full[0], full[1], full[2], full[3], cv1_act=len(args) <= 2)
                    else:
                        y = _repeat(net, _MODULES[module], inputs[0], args, repeats)
                elif module == "Concat":
                    y = Concat(net, inputs, *args)
                elif module == "Detect":
                    level_strides = [strides[j] for j in _as_list(source)]
                    y = Detect(net, inputs, int(args[0]), legacy, level_strides)
                else:
                    y = _repeat(net, _MODULES[module], inputs[0], args, repeats)
            outputs.append(y)
            if module != "Detect":
                strides.append(image // int(net.shape_of(y)[2]))
    return outputs[-1]


def _repeat(net: Network, module: Callable[..., Tensor], x: Tensor, args: list, repeats: int) -> Tensor:
    if repeats == 1:
        return module(net, x, *args)
    for j in range(repeats):  # nn.Sequential of copies
        with net.scope(j):
            x = module(net, x, *args)
    return x


def _resolve(value: Any, nc: int) -> Any:
    """YAML argument strings: ``nc`` is the class count, ``None``/``True``/``False`` are constants."""
    if isinstance(value, str):
        return {"nc": nc, "None": None, "True": True, "False": False}.get(value, value)
    return value


def _as_list(source: int | Sequence[int]) -> list[int]:
    return [source] if isinstance(source, int) else list(source)


# ---------------------------------------------------------------------------- configurations and registration


@cache
def standard_config(family: str) -> dict[str, Any]:
    """The family's standard structure table (Ultralytics' YAML, recorded in yolo_configs.json)."""
    return json.loads(CONFIGS.read_text())[family]


def model_config(net: Network, family: str) -> dict[str, Any]:
    """The checkpoint's own YAML configuration when it carries one, else the family's standard table."""
    from netdef.weights.ultralytics_config import read_model_config

    path = net.checkpoint.path
    config = read_model_config(path) if path is not None else None
    return config if config is not None else standard_config(family)


def checkpoint_classes(net: Network, config: dict[str, Any]) -> int:
    """The class count: the last class conv's bias length (``model.<detect>.cv3.0.2.bias``), else the YAML's nc."""
    detect = len(config.get("backbone", [])) + len(config.get("head", [])) - 1
    bias = net.checkpoint_shape(f"model.{detect}.cv3.0.2.bias")
    return int(math.prod(bias)) if bias is not None else int(config.get("nc", 80))


def yolo(net: Network, x: Tensor, family: str, scale: str, nms: bool, conf: float, iou: float, max_det: int,
         agnostic: bool) -> Tensor | dict[str, Tensor]:  # fmt: skip
    config = model_config(net, family)
    stored = config.get("scale")
    if stored and stored != scale and config.get("scales"):
        raise NetworkDefinitionError(
            f"{net.checkpoint.source}: the checkpoint is scale {stored!r} ({family}{stored}), "
            f"not {scale!r}; build it as {family}{stored}"
        )
    nc = checkpoint_classes(net, config)
    prediction = define_from_config(net, x, config, scale, nc)
    if not nms:
        return prediction
    return net.greedy_nms(prediction, nc, conf=conf, iou=iou, max_det=max_det, agnostic=agnostic)


def _register(family: str, scale: str) -> None:
    name = f"yolov5{scale}u" if family == "yolov5u" else f"{family}{scale}"

    def define(net: Network, x: Tensor, nms: bool = True, conf: float = 0.25, iou: float = 0.7, max_det: int = 300,
               agnostic: bool = False) -> Tensor | dict[str, Tensor]:  # fmt: skip
        return yolo(net, x, family, scale, nms, conf, iou, max_det, agnostic)

    title = {"yolov8": "YOLOv8", "yolo11": "YOLO11", "yolov5u": "YOLOv5u"}[family]
    define.__doc__ = f"{title}{scale} detector (Ultralytics checkpoint; NMS in the engine unless nms=False)"
    define.__name__ = name
    register(name, input_shape=(3, IMAGE_SIZE, IMAGE_SIZE), output="output0", family="yolo")(define)


for _family in ("yolov8", "yolo11", "yolov5u"):
    for _scale in SCALES:
        _register(_family, _scale)

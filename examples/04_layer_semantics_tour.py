"""A tour of TensorRT layer semantics: for each layer type, a tiny network, what TensorRT computes,
and the NumPy reference executor's result next to plain NumPy.

Every stop builds a one- or two-layer network with netdef, prints the layer's semantics as the
reference executor documents them (``netdef.reference.semantics``), runs the network with the
reference executor, and computes the same thing with a few lines of NumPy. The two must agree;
the script exits with an error if one stop does not.

    python examples/04_layer_semantics_tour.py
"""

from __future__ import annotations

import sys
from collections.abc import Callable

import numpy as np

from netdef import Network
from netdef.inspect import inspect_network, type_text
from netdef.reference import documentation, run

RNG = np.random.default_rng(0)
np.set_printoptions(precision=3, suppress=True, linewidth=110)


def stop(
    title: str, checkpoint: dict, shape: tuple[int, ...], define: Callable, numpy_fn: Callable, show: str = ""
) -> bool:
    """Build ``define(net, x)`` on an input of ``shape``, run it, compare with ``numpy_fn(x, checkpoint)``.

    The semantics printed are those of layer ``show`` (default: the last layer)."""
    net = Network(checkpoint, name=title)
    x_tensor = net.input("x", shape)
    net.output(define(net, x_tensor), "y")
    net.check()
    layers = inspect_network(net).layers
    layer = next((la for la in layers if la.name == show), layers[-1])
    x = RNG.standard_normal(shape).astype(np.float32)
    got = run(net.trt_network, {"x": x}).outputs["y"]
    want = numpy_fn(x, checkpoint).astype(np.float32)
    ok = got.shape == want.shape and np.allclose(got, want, rtol=1e-5, atol=1e-5)
    print(f"\n== {title}: {type_text(layer.type)} layer '{layer.name}' ({layer.detail})")
    print("\n".join(f"   {line}" if line else "" for line in documentation(layer.type).splitlines()))
    print(f"   input {x.shape} -> output {got.shape}")
    print(f"   reference executor: {got.ravel()[:6]}")
    print(f"   NumPy:              {want.ravel()[:6]}")
    print(f"   {'agree' if ok else 'DIFFER'} (max |difference| {np.abs(got - want).max() if ok else 'n/a'})")
    return ok


def conv_numpy(x, ck):
    w, b = ck["conv.weight"], ck["conv.bias"]
    k = w.shape[-1]
    h, wd = x.shape[2] - k + 1, x.shape[3] - k + 1
    patches = np.stack([x[:, :, i : i + h, j : j + wd] for i in range(k) for j in range(k)], axis=-1)
    return np.einsum("nchwf,ocf->nohw", patches, w.reshape(w.shape[0], w.shape[1], -1)) + b[None, :, None, None]


def main() -> int:
    conv_ck = {"conv.weight": RNG.standard_normal((3, 2, 3, 3), dtype=np.float32), "conv.bias": np.arange(3.0)}
    fc_ck = {"fc.weight": RNG.standard_normal((4, 6), dtype=np.float32), "fc.bias": RNG.standard_normal(4)}
    bn_ck = {
        "bn.weight": np.array([1.0, 0.5, 2.0]),
        "bn.bias": np.array([0.0, 1.0, -1.0]),
        "bn.running_mean": np.array([0.1, -0.2, 0.3]),
        "bn.running_var": np.array([1.0, 4.0, 0.25]),
    }

    def batch_norm_numpy(x, ck):
        shape = (1, -1, 1, 1)
        scale = ck["bn.weight"] / np.sqrt(ck["bn.running_var"] + 1e-5)
        return (x - ck["bn.running_mean"].reshape(shape)) * scale.reshape(shape) + ck["bn.bias"].reshape(shape)

    def softmax_numpy(x, _):
        e = np.exp(x - x.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    def max_pool_numpy(x, _):
        n, c, h, w = x.shape
        return x.reshape(n, c, h // 2, 2, w // 2, 2).max(axis=(3, 5))

    stops = [
        ("convolution", conv_ck, (1, 2, 5, 5), lambda net, x: net.conv2d(x, "conv", 3, 3), conv_numpy),
        ("max pooling", {}, (1, 2, 4, 4), lambda net, x: net.max_pool2d(x, 2, name="pool"), max_pool_numpy),
        ("ReLU", {}, (2, 5), lambda net, x: net.relu(x), lambda x, _: np.maximum(x, 0)),
        ("sigmoid", {}, (2, 5), lambda net, x: net.sigmoid(x), lambda x, _: 1 / (1 + np.exp(-x))),
        (
            "element-wise sum with broadcasting",
            {},
            (2, 3, 4),
            lambda net, x: net.add(x, net.mean(x, dim=(2,), keepdim=True, name="row_mean"), name="add"),
            lambda x, _: x + x.mean(axis=2, keepdims=True),
        ),
        (
            "fully connected (matrix multiply + bias)",
            fc_ck,
            (3, 6),
            lambda net, x: net.linear(x, "fc", 4),
            lambda x, ck: x @ ck["fc.weight"].T + ck["fc.bias"],
            "fc",
        ),
        ("softmax over dim 1", {}, (2, 5), lambda net, x: net.softmax(x, dim=1), softmax_numpy),
        (
            "reduce: mean over H and W",
            {},
            (1, 3, 4, 4),
            lambda net, x: net.mean(x, dim=(2, 3), name="gap"),
            lambda x, _: x.mean(axis=(2, 3)),
        ),
        (
            "shuffle: permute NCHW -> NHWC",
            {},
            (1, 2, 3, 4),
            lambda net, x: net.permute(x, (0, 2, 3, 1), name="to_nhwc"),
            lambda x, _: x.transpose(0, 2, 3, 1),
        ),
        (
            "concatenation along channels",
            {},
            (1, 2, 2, 2),
            lambda net, x: net.concat([x, net.relu(x)], dim=1, name="cat"),
            lambda x, _: np.concatenate([x, np.maximum(x, 0)], axis=1),
        ),
        (
            "scale: inference BatchNorm",
            bn_ck,
            (1, 3, 2, 2),
            lambda net, x: net.batch_norm(x, "bn"),
            batch_norm_numpy,
        ),
    ]
    results = [stop(*s) for s in stops]
    print(f"\n{sum(results)} of {len(results)} stops agree with NumPy")
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())

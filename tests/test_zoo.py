"""Every registered architecture that torchvision lists, checked against torchvision's own model code.

The harness (``tests/zoo.py``) builds torchvision's model with random weights and hands its
``state_dict`` to netdef as it is. Per architecture:

- names and shapes: netdef reads exactly torchvision's ``state_dict`` (training-only heads aside);
- fp32: the NumPy reference executor's logits within relative error 1e-4 of torchvision's;
- fp16 and bf16: every tensor computed in that dtype, the same top-1 class as torchvision's fp32
  on a batch of images;
- TensorRT-RTX builds the fp16 network at torchvision's input size with a dynamic batch.

``make test`` runs one member of each family (``zoo.FAMILY_DEFAULTS``); the rest are ``slow``.
Run with ``-s`` to see the measured errors.
"""

from __future__ import annotations

import pytest
from zoo import (
    CLASSES,
    build_checkpoint,
    case,
    define,
    family,
    is_default,
    relative_error,
    torch_logits,
    torchvision_input_size,
    torchvision_state_shapes,
    unread,
    zoo_model,
    zoo_names,
)

import architectures
from netdef.build import BuildConfig, build
from netdef.network import dtype_name
from netdef.reference import run

ZOO = [pytest.param(name, marks=() if is_default(name) else pytest.mark.slow) for name in zoo_names()]


@pytest.fixture(scope="module", params=ZOO)
def name(request) -> str:
    """One architecture; module scope makes pytest run all of an architecture's tests together
    (one prepared torchvision model at a time)."""
    return request.param


def test_reads_torchvision_state_dict(name):
    """netdef reads torchvision's ``state_dict`` entries, names and shapes (1000 classes), and takes
    torchvision's input size (the crop size of its default weights)."""
    c = case(name)
    state = {k: s for k, s in torchvision_state_shapes(name).items() if not k.startswith(c.ignored)}
    arch = architectures.get(name)
    expected = arch.expected_weights(**(c.options if c.build_torchvision_kwargs is None else c.build_options))
    assert sorted(set(expected) ^ set(state)) == []
    assert {k: (s, state[k]) for k, s in expected.items() if state[k] != s} == {}
    size = torchvision_input_size(name)
    assert (arch.input_shape, arch.output, "num_classes" in arch.options) == ((3, size, size), "logits", True)


def test_fp32_logits_match_torchvision(name):
    model, checkpoint, images = zoo_model(name)
    x = images[:2]
    net = define(name, checkpoint, batch=len(x))
    assert unread(net, name) == []
    out = run(net.trt_network, {"input": x}).outputs["logits"]
    error = relative_error(out, torch_logits(model, x))
    print(f"{name} fp32 relative error {error:.2e}")
    assert out.shape == (len(x), CLASSES)
    assert error <= 1e-4


@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_reduced_precision_top1_agrees_with_torchvision(name, precision):
    """Every tensor is computed in ``precision``; top-1 equals torchvision fp32's on the whole batch."""
    model, checkpoint, x = zoo_model(name)
    net = define(name, checkpoint, precision=precision, batch=len(x))
    wanted = {"fp16": "float16", "bf16": "bfloat16"}[precision]
    layers = [net.trt_network.get_layer(i) for i in range(net.num_layers)]
    computed = {dtype_name(layer.get_output(0).dtype) for layer in layers if not layer.name.endswith(".cast")}
    assert computed & {"float32", "float16", "bfloat16"} == {wanted}
    out = run(net.trt_network, {"input": x}).outputs["logits"]
    expected = torch_logits(model, x)
    agreement = float((out.argmax(1) == expected.argmax(1)).mean())
    print(f"{name} {precision}: top-1 agreement {agreement:.1%}, relative error {relative_error(out, expected):.2e}")
    assert agreement == 1.0


def test_tensorrt_builds_fp16_with_dynamic_batch(name):
    """torchvision's ``state_dict`` at torchvision's input size, fp16, batch 1:2:4, through TensorRT-RTX."""
    checkpoint, options = build_checkpoint(name)
    arch = architectures.get(name)
    net = arch.build_network(checkpoint, precision="fp16", batch=-1, **options)
    assert tuple(net.trt_network.get_output(0).shape) == (-1, CLASSES)
    engine = build(net, BuildConfig(batch=(1, 2, 4)), definition={"architecture": name})
    assert len(engine.plan) > 0 and engine.precision == "fp16"
    (output,) = [t for t in engine.metadata["io"] if t["mode"] == "output"]
    assert (output["name"], tuple(output["shape"]), output["dtype"]) == ("logits", (-1, CLASSES), "float32")
    assert engine.metadata["profile"]["batch"] == [1, 2, 4]
    (inp,) = [t for t in engine.metadata["io"] if t["mode"] == "input"]
    assert tuple(inp["shape"]) == (-1, *arch.input_shape)


def test_every_family_has_one_default_member():
    """Every family with a registered member has exactly one default member (run by ``make test``)."""
    names = zoo_names()
    assert {"resnet18", "mobilenet_v2"} <= set(names)
    families = {family(n) for n in names}
    assert sorted(families) == sorted(family(n) for n in names if is_default(n))

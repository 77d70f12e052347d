"""LeNet trained on real handwritten digits: the reference executor against PyTorch on the held-out set.

Shipped weights (weights/lenet_digits.safetensors), the 360 held-out images of scikit-learn's digits
(netdef.datasets.digits_split), and tests/torch_models.LeNet as the PyTorch side. fp32 must agree
with PyTorch to 1e-5 relative and predict the same digits; fp16 must stay within 0.5 percentage
points of fp32 accuracy; bf16 is reported (and held to a loose 2-point bound).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors import safe_open
from torch_models import LeNet

import architectures
from netdef.datasets import digits_split
from netdef.reference import ReferenceExecutor
from netdef.reference.compare import compare_with_torch
from netdef.weights import Checkpoint

LOGITS = "fc2.bias_add"  # the layer whose output is LeNet's logits (softmax follows)


@pytest.fixture(scope="module")
def digits():
    return digits_split()


@pytest.fixture(scope="module")
def checkpoint(lenet_weights):
    return Checkpoint.load(lenet_weights)


@pytest.fixture(scope="module")
def torch_logits(checkpoint, digits) -> np.ndarray:
    model = LeNet()
    model.load_state_dict({name: torch.from_numpy(np.array(checkpoint[name])) for name in checkpoint})
    with torch.no_grad():
        return model.eval()(torch.from_numpy(digits.x_test)).numpy()


def reference_run(checkpoint, digits, precision: str):
    network = architectures.get("lenet").build_network(checkpoint, precision=precision, batch=-1)
    return ReferenceExecutor(network.trt_network).run({"input": digits.x_test}, capture=True)


def accuracy(predictions: np.ndarray, labels: np.ndarray) -> float:
    return float((predictions == labels).mean())


def scale_relative(actual: np.ndarray, expected: np.ndarray) -> float:
    return float(np.abs(actual.astype(np.float64) - expected).max() / np.abs(expected).max())


def test_fp32_reference_matches_pytorch_within_1e5(checkpoint, digits, torch_logits):
    result = reference_run(checkpoint, digits, "fp32")
    logits = result.layers[LOGITS][0]
    assert logits.shape == torch_logits.shape == (360, 10)
    logits_error = scale_relative(logits, torch_logits)
    expected_prob = torch.softmax(torch.from_numpy(torch_logits).double(), dim=1).numpy()
    prob_error = scale_relative(result.outputs["prob"], expected_prob)
    print(f"fp32 reference vs PyTorch, 360 held-out digits: logits {logits_error:.2e}, probabilities {prob_error:.2e}")
    assert logits_error <= 1e-5
    assert prob_error <= 1e-5


def test_fp32_layer_by_layer_against_pytorch(checkpoint, digits):
    network = architectures.get("lenet").build_network(checkpoint, batch=-1)
    model = LeNet()
    model.load_state_dict({name: torch.from_numpy(np.array(checkpoint[name])) for name in checkpoint})
    report = compare_with_torch(network, model.eval(), digits.x_test, rtol=1e-5)
    print(report)
    assert [row.counterpart for row in report.rows] == ["conv1", "conv2", "fc1", "fc2"]
    assert [row.layer for row in report.rows] == ["conv1", "conv2", "fc1.bias_add", "fc2.bias_add"]
    assert report.ok, report.summary()


def test_fp32_predicts_the_same_digits_as_pytorch(checkpoint, digits, torch_logits, lenet_weights):
    predicted = reference_run(checkpoint, digits, "fp32").outputs["prob"].argmax(axis=1)
    expected = torch_logits.argmax(axis=1)
    top2 = np.sort(torch_logits, axis=1)[:, -2:]
    decisive = top2[:, 1] - top2[:, 0] > 1e-4  # a near-tie may legitimately flip
    acc, torch_acc = accuracy(predicted, digits.y_test), accuracy(expected, digits.y_test)
    differ, ties = int((predicted != expected).sum()), int((~decisive).sum())
    with safe_open(str(lenet_weights), "np") as f:
        stated = float(f.metadata()["heldout_accuracy"])
    print(
        f"held-out accuracy: reference fp32 {acc:.2%}, PyTorch {torch_acc:.2%} (weights file states {stated:.2%}); "
        f"{differ} of {len(expected)} predictions differ ({ties} near-ties)"
    )
    assert np.array_equal(predicted[decisive], expected[decisive])
    assert acc == torch_acc
    assert acc == pytest.approx(stated, abs=1e-12)


@pytest.mark.parametrize(("precision", "bound"), [("fp16", 0.005), ("bf16", 0.02)])
def test_reduced_precision_accuracy_against_fp32(checkpoint, digits, precision, bound):
    """fp16 within 0.5 points of fp32 (the issue's bound); bf16 reported, held to 2 points."""
    full = reference_run(checkpoint, digits, "fp32")
    reduced = reference_run(checkpoint, digits, precision)
    wanted = {"fp16": np.float16, "bf16": "bfloat16"}[precision]
    assert reduced.layers["conv1"][0].dtype == np.dtype(wanted)  # really computed in that precision
    assert reduced.layers[LOGITS][0].dtype == np.dtype(wanted)
    acc32 = accuracy(full.outputs["prob"].argmax(axis=1), digits.y_test)
    acc = accuracy(reduced.outputs["prob"].argmax(axis=1), digits.y_test)
    error = scale_relative(reduced.layers[LOGITS][0], full.layers[LOGITS][0].astype(np.float64))
    flipped = int((reduced.outputs["prob"].argmax(axis=1) != full.outputs["prob"].argmax(axis=1)).sum())
    print(
        f"{precision}: held-out accuracy {acc:.2%} (fp32 {acc32:.2%}), logits relative error {error:.2e}, "
        f"{flipped} of 360 predictions differ from fp32"
    )
    assert error > 0  # rounding happened
    assert abs(acc - acc32) <= bound

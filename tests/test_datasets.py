"""Tests for netdef.datasets and the shipped LeNet digits weights (weights/lenet_digits.safetensors)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from netdef.datasets import bilinear_matrix, digits_split, upscale_bilinear

pytest.importorskip("sklearn")

WEIGHTS = Path(__file__).resolve().parents[1] / "weights"
LENET_FILE = WEIGHTS / "lenet_digits.safetensors"
LENET_NAMES = [
    "conv1.weight", "conv1.bias", "conv2.weight", "conv2.bias",
    "fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias",
]  # fmt: skip


@pytest.fixture(scope="module")
def split():
    return digits_split()


def test_shapes_and_dtypes(split):
    assert split.x_train.shape == (1437, 1, 28, 28)
    assert split.x_test.shape == (360, 1, 28, 28)
    assert split.y_train.shape == (1437,)
    assert split.y_test.shape == (360,)
    assert split.x_train.dtype == split.x_test.dtype == np.float32
    assert split.y_train.dtype == split.y_test.dtype == np.int64
    assert all(a.flags.c_contiguous for a in split)


def test_value_range(split):
    for x in (split.x_train, split.x_test):
        assert x.min() >= 0.0 and x.max() <= 1.0
    assert split.x_train.max() == pytest.approx(1.0)  # bilinear mixes of 16/16 pixels
    assert set(np.unique(split.y_train)) == set(range(10))


def test_deterministic(split):
    again = digits_split()
    for a, b in zip(split, again, strict=True):
        np.testing.assert_array_equal(a, b)
    other = digits_split(seed=1)
    assert not np.array_equal(split.y_test, other.y_test)


def test_test_fraction():
    s = digits_split(test_fraction=0.5)
    assert len(s.y_train) + len(s.y_test) == 1797
    assert abs(len(s.y_test) - 898.5) <= 0.5


def test_stratified(split):
    train = np.bincount(split.y_train, minlength=10) / len(split.y_train)
    test = np.bincount(split.y_test, minlength=10) / len(split.y_test)
    np.testing.assert_allclose(train, test, atol=1.5 / len(split.y_test))


def test_partition_without_overlap(split):
    """Train and test together are exactly the preprocessed data set, with no image in both."""
    from sklearn.datasets import load_digits

    def rows(x):
        return {r.tobytes() for r in x.reshape(len(x), -1)}

    digits = load_digits()
    full = upscale_bilinear(digits.images / 16.0, 28)
    train, test = rows(split.x_train), rows(split.x_test)
    assert len(train) == len(split.x_train) and len(test) == len(split.x_test)
    assert not train & test
    assert train | test == rows(full)


def test_bilinear_matrix_rows():
    mat = bilinear_matrix(8, 28)
    np.testing.assert_allclose(mat.sum(axis=1), 1.0)
    assert (mat >= 0).all()
    np.testing.assert_array_equal(bilinear_matrix(8, 8), np.eye(8))


def test_upscale_matches_torch_interpolate():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    images = rng.random((5, 8, 8))
    ref = torch.nn.functional.interpolate(
        torch.from_numpy(images)[:, None], size=(28, 28), mode="bilinear", align_corners=False
    )[:, 0].numpy()
    np.testing.assert_allclose(upscale_bilinear(images, 28), ref, rtol=0, atol=1e-6)


def test_shipped_lenet_weights_reach_stated_accuracy():
    torch = pytest.importorskip("torch")
    safetensors_torch = pytest.importorskip("safetensors.torch")
    from safetensors import safe_open
    from torch_models import LeNet

    with safe_open(str(LENET_FILE), "pt") as f:
        meta = f.metadata()
    tensors = safetensors_torch.load_file(str(LENET_FILE))
    assert sorted(tensors) == sorted(LENET_NAMES)
    assert all(t.dtype == torch.float32 for t in tensors.values())

    model = LeNet()
    assert [name for name, _ in model.named_parameters()] == LENET_NAMES
    model.load_state_dict(tensors, strict=True)
    model.eval()

    s = digits_split(seed=int(meta["seed"]), test_fraction=float(meta["test_fraction"]))
    with torch.no_grad():
        pred = model(torch.from_numpy(s.x_test)).argmax(1).numpy()
    acc = float((pred == s.y_test).mean())
    stated = float(meta["heldout_accuracy"])
    assert acc >= stated - 1e-9
    assert acc >= 0.95


def test_weights_readme_matches_file():
    """weights/README.md quotes the shipped file's SHA-256 and held-out accuracy."""
    pytest.importorskip("safetensors")
    from safetensors import safe_open

    readme = (WEIGHTS / "README.md").read_text()
    assert hashlib.sha256(LENET_FILE.read_bytes()).hexdigest() in readme
    with safe_open(str(LENET_FILE), "np") as f:
        stated = float(f.metadata()["heldout_accuracy"])
    assert f"{stated:.2%}" in readme

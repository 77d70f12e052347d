"""Shared pytest fixtures: the repository's paths and a seeded random generator."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
LENET_WEIGHTS = REPO / "weights" / "lenet_digits.safetensors"


@pytest.fixture
def rng() -> np.random.Generator:
    """A generator seeded per test, so failures reproduce."""
    return np.random.default_rng(20251121)


@pytest.fixture(scope="session")
def lenet_weights() -> Path:
    """The shipped LeNet trained on scikit-learn's digits (weights/README.md)."""
    assert LENET_WEIGHTS.is_file(), f"{LENET_WEIGHTS} is missing"
    return LENET_WEIGHTS

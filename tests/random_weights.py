"""Seeded random checkpoints for registered architectures (NumPy only), for tests and benchmarks."""

from __future__ import annotations

import numpy as np

from architectures import get


def random_checkpoint(arch: str, seed: int) -> dict[str, np.ndarray]:
    """Seeded weights for ``arch`` with He-scaled convolutions and randomized BatchNorm statistics."""
    rng = np.random.default_rng(seed)
    tensors = {}
    for name, shape in get(arch).expected_weights().items():
        if name.endswith("running_var"):
            value = rng.uniform(0.5, 2.0, shape)
        elif name.endswith("running_mean"):
            value = rng.normal(0.0, 0.1, shape)
        elif len(shape) == 1 and name.endswith(".weight"):  # BatchNorm gamma
            value = rng.uniform(0.5, 1.5, shape)
        elif len(shape) == 1:
            value = rng.normal(0.0, 0.1, shape)
        else:
            value = rng.normal(0.0, np.sqrt(2.0 / np.prod(shape[1:])), shape)
        tensors[name] = value.astype(np.float32)
    return tensors


def perturbed(checkpoint, seed: int = 1, scale: float = 0.01) -> dict[str, np.ndarray]:
    """A copy of ``checkpoint`` with seeded Gaussian noise on every entry (a 'retrained' checkpoint)."""
    rng = np.random.default_rng(seed)
    return {k: (v + rng.normal(0.0, scale, v.shape)).astype(v.dtype) for k, v in checkpoint.items()}

"""PyTorch eager versions of registered architectures, for ``netdef bench ARCH --vs-torch``.

Each builder returns an ``nn.Module`` with the checkpoint's parameter names and the same output
as the architecture (LeNet ends in softmax, like the registry's ``lenet``). Only architectures
listed in :data:`TORCH_MODELS` can be compared; others get an error naming the ones that can.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from netdef.errors import CheckpointError, NetdefError


def lenet_module(*, softmax: bool = False) -> Any:
    """TensorRT's MNIST sample network (``sampleMNISTAPI``) in PyTorch, with netdef's parameter names.

    conv1 (20, 5x5) -> maxpool 2/2 -> conv2 (50, 5x5) -> maxpool 2/2 -> fc1 (800 -> 500) -> ReLU
    -> fc2 (500 -> 10); no ReLU after the convolutions. Logits, or probabilities with ``softmax``
    (as the registry's ``lenet``, whose output ``prob`` is a softmax).
    """
    import torch
    from torch import nn

    class LeNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv1 = nn.Conv2d(1, 20, kernel_size=5)
            self.conv2 = nn.Conv2d(20, 50, kernel_size=5)
            self.fc1 = nn.Linear(800, 500)
            self.fc2 = nn.Linear(500, 10)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            x = nn.functional.max_pool2d(self.conv1(x), kernel_size=2, stride=2)
            x = nn.functional.max_pool2d(self.conv2(x), kernel_size=2, stride=2)
            x = torch.relu(self.fc1(torch.flatten(x, 1)))
            x = self.fc2(x)
            return torch.softmax(x, dim=1) if softmax else x

    return LeNet()


TORCH_MODELS: dict[str, Callable[[], Any]] = {"lenet": lambda: lenet_module(softmax=True)}
"""Architecture name -> builder of an untrained PyTorch module with the same parameter names."""


def torch_model(arch: str, checkpoint: Mapping[str, np.ndarray], source: str = "checkpoint") -> Any:
    """The PyTorch module for ``arch`` with ``checkpoint``'s weights (float32), in eval mode.

    Raises :class:`CheckpointError` listing every missing, unexpected or mis-shaped entry.
    """
    import torch

    if arch not in TORCH_MODELS:
        raise NetdefError(
            f"no PyTorch model for architecture {arch!r}; --vs-torch supports {', '.join(sorted(TORCH_MODELS))}"
        )
    model = TORCH_MODELS[arch]()
    expected = model.state_dict()
    problems = [f"missing {name!r} {tuple(t.shape)}" for name, t in expected.items() if name not in checkpoint]
    problems += [
        f"{name!r}: expected shape {tuple(t.shape)}, got {tuple(np.shape(checkpoint[name]))}"
        for name, t in expected.items()
        if name in checkpoint and tuple(np.shape(checkpoint[name])) != tuple(t.shape)
    ]
    if problems:
        raise CheckpointError(f"{source}: does not fit the PyTorch {arch}: " + "; ".join(problems))
    state = {name: torch.from_numpy(np.asarray(checkpoint[name], dtype=np.float32).copy()) for name in expected}
    model.load_state_dict(state, strict=True)
    return model.eval()

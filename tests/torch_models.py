"""Small PyTorch reference modules, for comparing netdef engines against PyTorch on the CPU."""

from __future__ import annotations

import torch
from torch import nn


class LeNet(nn.Module):
    """TensorRT's MNIST sample network (``sampleMNISTAPI``): 1x28x28 in, 10 logits out.

    conv1 (20, 5x5) -> maxpool 2/2 -> conv2 (50, 5x5) -> maxpool 2/2 -> fc1 (800 -> 500) -> ReLU
    -> fc2 (500 -> 10). No ReLU after the convolutions; softmax is left to the caller.
    """

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
        return self.fc2(x)

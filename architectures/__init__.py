"""Network definitions that read like the PyTorch models they mirror, registered by name.

>>> from architectures import get
>>> net = get("lenet").build_network(Checkpoint.load("weights/lenet_digits.safetensors"))
"""

from architectures.registry import Architecture, get, load_all, names, register

__all__ = ["Architecture", "get", "load_all", "names", "register"]

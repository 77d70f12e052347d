"""Helpers shared by the torchvision-style definitions.

(To compare a network with its PyTorch twin layer by layer, see
:func:`netdef.reference.compare.torch_module_names`.)
"""

from __future__ import annotations

import math

from netdef.network import Network


def num_classes(net: Network, classifier: str, given: int | None, default: int = 1000) -> int:
    """``given``, else the class count of the checkpoint's classifier ``classifier`` (a scope, e.g.
    ``"fc"``), else ``default``.

    The count is the length of ``{classifier}.bias``; without a bias, the first dimension of a 2-D
    ``{classifier}.weight``. (A ``.wts`` file stores tensors flat, so the weight's shape says
    nothing there.) Without a checkpoint (``Architecture.expected_weights()``) it is ``default``
    (ImageNet's 1000).
    """
    if given is not None:
        return given
    bias = net.checkpoint_shape(f"{classifier}.bias")
    if bias is not None:
        return math.prod(bias)
    weight = net.checkpoint_shape(f"{classifier}.weight")
    return weight[0] if weight is not None and len(weight) == 2 else default

"""Helpers shared by the torchvision-style definitions.

:func:`num_classes` reads the class count off a classifier weight; :func:`pytorch_layer_names` says
which netdef layer produces the output a PyTorch forward hook on a module sees, so that a
network can be compared with its PyTorch twin layer by layer.
"""

from __future__ import annotations

from netdef.network import Network


def num_classes(net: Network, classifier_weight: str, given: int | None, default: int = 1000) -> int:
    """``given``, else the first dimension of ``classifier_weight`` (in the current scope), else ``default``.

    Without a checkpoint (``Architecture.expected_weights()``) the default (ImageNet's 1000) is used.
    """
    if given is not None:
        return given
    shape = net.param_shape(classifier_weight)
    return shape[0] if shape else default


def folded_batch_norms(net: Network) -> dict[str, str]:
    """BatchNorm module name -> the convolution layer it was folded into (``layer1.0.bn1 -> layer1.0.conv1``)."""
    folded = {}
    for weight, sources in net.derived.items():
        if not weight.endswith(".weight"):
            continue
        for key in sources:
            if key.endswith(".running_mean"):
                folded[key.removesuffix(".running_mean")] = weight.removesuffix(".weight")
    return folded


def pytorch_layer_names(net: Network) -> dict[str, str]:
    """PyTorch module name -> name of the netdef layer whose output equals that module's output.

    Layers are named inside scopes that follow the PyTorch module tree, so a module's output is
    the output of the last layer defined in its scope (``layer1.0`` -> ``layer1.0.relu_1``,
    ``fc`` -> ``fc.bias_add``). A BatchNorm folded into its convolution maps to that convolution
    (``layer1.0.bn1`` -> ``layer1.0.conv1``); the convolution's own pre-BatchNorm output does not
    exist in the network, so the convolution module is left out. A module called several times
    (torchvision's shared ``relu``) maps to its first call; later calls are ``relu_1``, ``relu_2``.
    """
    layers = [net.trt_network.get_layer(i).name for i in range(net.trt_network.num_layers)]
    mapping: dict[str, str] = {}
    for name in layers:
        parts = name.split(".")
        for end in range(1, len(parts) + 1):
            mapping[".".join(parts[:end])] = name
    folded = folded_batch_norms(net)
    for conv in folded.values():
        mapping.pop(conv, None)
    mapping.update(folded)
    return mapping

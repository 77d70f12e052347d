"""A NumPy reference executor for TensorRT network definitions.

It walks an ``INetworkDefinition`` (built by netdef or by anyone else, e.g. TensorRT's ONNX
parser), reads every layer back through the TensorRT Python API, and computes every tensor
on the CPU with TensorRT's layer semantics, including its data types: float16/bfloat16 tensors
are rounded to their type after each layer, so precision loss shows.

>>> result = run(network, {"input": x}, capture=True)   # doctest: +SKIP
>>> result.outputs["logits"], result.layers["conv1"][0]  # doctest: +SKIP

Use :class:`ReferenceExecutor` to run one network many times. :func:`semantics` and
:func:`describe_layer` say what a layer computes, for ``netdef explain``.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from netdef.reference.describe import describe_layer, documentation, semantics
from netdef.reference.executor import ReferenceExecutor, Result
from netdef.reference.plugins import register_plugin, unregister_plugin
from netdef.reference.registry import refused_layer_types, supported_layer_types

__all__ = [
    "ReferenceExecutor",
    "Result",
    "describe_layer",
    "documentation",
    "refused_layer_types",
    "register_plugin",
    "run",
    "semantics",
    "supported_layer_types",
    "unregister_plugin",
]


def run(network, inputs: Mapping[str, np.ndarray], *, capture: bool = False) -> Result:
    """Compute ``network``'s outputs from ``inputs`` (input name -> array) in NumPy.

    Arrays must match the declared input shapes (``-1`` matches any length) and dtypes exactly
    (bfloat16 as ``ml_dtypes.bfloat16``). With ``capture``, :attr:`Result.tensors` holds every
    tensor and :attr:`Result.layers` every layer's outputs.

    Raises :class:`~netdef.errors.NetworkInputError` for missing, unknown or mismatched inputs,
    :class:`~netdef.errors.UnsupportedLayerError` for layers without reference semantics, and
    :class:`~netdef.errors.LayerExecutionError` when a layer fails (naming the layer).
    """
    return ReferenceExecutor(network).run(inputs, capture=capture)

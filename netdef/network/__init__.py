"""The Pythonic builder over TensorRT's INetworkDefinition."""

from typing import TYPE_CHECKING

from netdef.dtypes import dtype_name, numpy_dtype, trt_dtype
from netdef.network.core import NetworkCore, Tensor
from netdef.network.detection import DetectionOps
from netdef.network.layers import LayersMixin, num_parameters
from netdef.network.native import Conditional, Loop, NativeOps
from netdef.network.precision import PRECISIONS, Precision, precision
from netdef.network.qdq import QuantizationMixin
from netdef.network.table import WeightEntry, WeightTable
from netdef.network.transformer import TransformerMixin
from netdef.network.vision import VisionMixin
from netdef.network.windows import WindowOps

if TYPE_CHECKING:
    from netdef.definition import DefinitionRecord


class Network(VisionMixin, WindowOps, TransformerMixin, DetectionOps, NativeOps, LayersMixin, QuantizationMixin):
    """A TensorRT network definition built layer by layer from a checkpoint.

    >>> net = Network(checkpoint, precision="fp16")
    >>> x = net.input("input", (-1, 1, 28, 28))
    >>> x = net.max_pool2d(net.conv2d(x, "conv1", 20, 5), 2)
    >>> net.output(net.softmax(net.linear(net.flatten(x), "fc"), dim=1), "prob")

    The op vocabulary is PyTorch's (``dim``, ``keepdim``, ``start_dim``; ``name=`` is keyword-only).
    Layers and weights are named after checkpoint keys; every array handed to TensorRT is held by
    :attr:`weight_table` as long as the network lives; weight problems are collected and raised
    together by :meth:`check` (which :func:`netdef.build` calls).
    """

    definition: "DefinitionRecord | None" = None
    """How to define this network again (set by ``Architecture.build_network``; None when assembled ad hoc)."""


__all__ = [
    "PRECISIONS",
    "Conditional",
    "Loop",
    "Network",
    "NetworkCore",
    "Precision",
    "Tensor",
    "WeightEntry",
    "WeightTable",
    "dtype_name",
    "num_parameters",
    "numpy_dtype",
    "precision",
    "trt_dtype",
]

"""The Pythonic builder over TensorRT's INetworkDefinition."""

from netdef.network.core import NetworkCore, Tensor
from netdef.network.detection import DetectionOps
from netdef.network.layers import LayersMixin, num_parameters
from netdef.network.precision import PRECISIONS, Precision, dtype_name, numpy_dtype, precision, trt_dtype
from netdef.network.quantization import QuantizationMixin
from netdef.network.transformer import TransformerMixin


class Network(LayersMixin, TransformerMixin, QuantizationMixin, DetectionOps):
    """A TensorRT network definition built layer by layer from a checkpoint.

    >>> net = Network(checkpoint, precision="fp16")
    >>> x = net.input("input", (-1, 1, 28, 28))
    >>> x = net.max_pool2d(net.conv2d(x, "conv1", 20, 5), 2)
    >>> net.output(net.softmax(net.linear(net.flatten(x), "fc"), axis=1), "prob")

    Layers and weights are named after checkpoint keys; every array handed to TensorRT stays
    alive as long as the network; weight problems are collected and raised together by
    :meth:`check` (which :func:`netdef.build` calls).
    """


__all__ = [
    "PRECISIONS",
    "Network",
    "NetworkCore",
    "Precision",
    "Tensor",
    "dtype_name",
    "num_parameters",
    "numpy_dtype",
    "precision",
    "trt_dtype",
]

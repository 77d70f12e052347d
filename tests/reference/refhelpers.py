"""Helpers for the reference-executor tests: raw TensorRT networks and running them.

(Named uniquely so it cannot collide with other test directories' helper modules.)
"""

from __future__ import annotations

import os

import numpy as np
import torch
from hypothesis import settings

from netdef.backend import create_builder, create_network, trt
from netdef.reference import ReferenceExecutor, Result
from netdef.reference.readback import tensor_shape

SETTINGS = settings(max_examples=int(os.environ.get("NETDEF_REFERENCE_EXAMPLES", "20")), deadline=None, print_blob=True)
"""Hypothesis settings shared by the layer tests: modest example counts (raise them with the environment
variable NETDEF_REFERENCE_EXAMPLES for a deeper search), no deadline."""

FEW = settings(SETTINGS, max_examples=int(os.environ.get("NETDEF_REFERENCE_EXAMPLES", "5")))
"""For the layer types added to the executor last: fewer examples by default, so the default suite stays
fast; NETDEF_REFERENCE_EXAMPLES raises them like SETTINGS."""

_BUILDER = create_builder()


class Net:
    """A fresh strongly typed network; keeps every array handed to TensorRT alive."""

    def __init__(self) -> None:
        self.network = create_network(_BUILDER)
        self._keep: list[np.ndarray] = []
        self.feeds: dict[str, np.ndarray] = {}

    def keep(self, array: np.ndarray) -> np.ndarray:
        array = np.require(array, requirements="C")  # unlike ascontiguousarray, keeps 0-d arrays 0-d
        self._keep.append(array)
        return array

    def input(self, name: str, array: np.ndarray, dtype=None, shape=None):
        """Declare an input fed with ``array`` (dtype from the array unless given)."""
        trt_dtype = dtype or TRT_DTYPES[np.dtype(array.dtype)]
        tensor = self.network.add_input(name, trt_dtype, tuple(shape or array.shape))
        self.feeds[name] = array
        return tensor

    def constant(self, array: np.ndarray):
        array = self.keep(array)
        return self.network.add_constant(array.shape, array).get_output(0)

    def output(self, layer_or_tensor, index: int = 0):
        tensor = layer_or_tensor if isinstance(layer_or_tensor, trt.ITensor) else layer_or_tensor.get_output(index)
        self.network.mark_output(tensor)
        return tensor

    def run(self, **extra) -> Result:
        """Run with capture and check every tensor's shape against TensorRT's own shape inference."""
        result = ReferenceExecutor(self.network).run({**self.feeds, **extra}, capture=True)
        assert_shapes_match_trt(self.network, result)
        return result

    def compute(self, layer_or_tensor, index: int = 0, **extra) -> np.ndarray:
        """Mark a layer's output (or a tensor) as a network output, run, and return its array."""
        tensor = self.output(layer_or_tensor, index)
        return self.run(**extra).outputs[tensor.name]


TRT_DTYPES = {
    np.dtype(np.float32): trt.float32,
    np.dtype(np.float16): trt.float16,
    np.dtype(np.int8): trt.int8,
    np.dtype(np.int32): trt.int32,
    np.dtype(np.int64): trt.int64,
    np.dtype(np.bool_): trt.bool,
}


def assert_shapes_match_trt(network, result: Result) -> None:
    """Every layer output the executor computed has the shape TensorRT inferred right after add_*."""
    for i in range(network.num_layers):
        layer = network.get_layer(i)
        for j in range(layer.num_outputs):
            tensor = layer.get_output(j)
            expected = tensor_shape(tensor)
            assert expected is not None, f"TensorRT could not infer the shape of {tensor.name}"
            got = result.tensors[tensor.name].shape
            assert len(got) == len(expected), (tensor.name, got, expected)
            assert all(e in (-1, g) for e, g in zip(expected, got, strict=True)), (tensor.name, got, expected)


def rand(rng: np.random.Generator, *shape, dtype=np.float32, scale: float = 1.0) -> np.ndarray:
    return (rng.standard_normal(shape) * scale).astype(dtype)


def t(array: np.ndarray) -> torch.Tensor:
    """A torch tensor (float32 for floating arrays) from a NumPy array."""
    array = np.asarray(array)
    if array.dtype.kind == "f":
        array = array.astype(np.float32)
    return torch.from_numpy(np.ascontiguousarray(array))


def close(actual: np.ndarray, expected, rtol: float = 1e-5, atol: float = 1e-5) -> None:
    if isinstance(expected, torch.Tensor):
        expected = expected.detach().numpy()
    np.testing.assert_allclose(
        np.asarray(actual, dtype=np.float64), np.asarray(expected, dtype=np.float64), rtol=rtol, atol=atol
    )

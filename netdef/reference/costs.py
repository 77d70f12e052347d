"""What a layer costs and how its settings read in a few words: helpers for the registry's inspect facts.

FLOPs count a multiply-add as 2 and use TensorRT's inferred shapes, a dynamic ``-1`` length counting
as 1 (so a dynamic-batch network is measured per sample). A count of None means the data decides it
(or TensorRT cannot infer a shape).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

Shape = tuple[int, ...]


def shape(tensor: Any) -> Shape | None:
    """TensorRT's inferred shape of a tensor; None when there is no tensor or TensorRT cannot infer it."""
    if tensor is None:
        return None
    try:
        return tuple(int(d) for d in tensor.shape)
    except RuntimeError:
        return None


def numel(dims: Shape | None) -> int | None:
    """Element count, a dynamic ``-1`` length counting as 1; None for an unknown shape."""
    return None if dims is None else math.prod(max(d, 1) for d in dims)


def count(dims: Shape) -> int:
    """Element count of a known shape, a dynamic ``-1`` length counting as 1."""
    return math.prod(max(d, 1) for d in dims)


def input_shape(layer: Any, index: int = 0) -> Shape | None:
    return shape(layer.get_input(index)) if layer.num_inputs > index else None


def output_shape(layer: Any, index: int = 0) -> Shape | None:
    return shape(layer.get_output(index)) if layer.num_outputs > index else None


def free(layer: Any) -> int:
    """No arithmetic: data movement, constants, shape bookkeeping."""
    return 0


def data_dependent(layer: Any) -> None:
    """The work depends on the values (how many boxes survive, how often a loop runs)."""
    return None


def per_output(operations: int = 1) -> Callable[[Any], int | None]:
    """``operations`` per element of output 0."""
    return _per_element(output_shape, operations, "output")


def per_input(operations: int = 1) -> Callable[[Any], int | None]:
    """``operations`` per element of input 0."""
    return _per_element(input_shape, operations, "input")


def _per_element(shape_of: Callable[[Any], Shape | None], operations: int, what: str) -> Callable[[Any], int | None]:
    def count(layer: Any) -> int | None:
        n = numel(shape_of(layer))
        return None if n is None else operations * n

    count.__doc__ = f"{operations} per {what} element"
    return count


def no_weights(layer: Any) -> int:
    return 0


def weight_count(*names: str) -> Callable[[Any], int]:
    """The summed sizes of the layer's weight attributes ``names`` (empty or unset count 0)."""

    def count(layer: Any) -> int:
        total = 0
        for name in names:
            value = getattr(layer, name, None)
            total += 0 if value is None else int(value.size)
        return total

    return count


# --------------------------------------------------------------------------- settings in a few words


def dims_text(dims: Any) -> str:
    """``(3, 3)`` -> ``3x3``."""
    return "x".join(str(int(d)) for d in dims)


def same_text(dims: Any) -> str:
    """``(2, 2)`` -> ``2``; ``(1, 2)`` -> ``1x2``."""
    values = [int(d) for d in dims]
    return str(values[0]) if len(set(values)) == 1 else "x".join(map(str, values))


def window_text(layer: Any, window: Any) -> str:
    """Kernel, stride and (non-zero) padding: ``3x3 /2 pad 1``."""
    text = f"{dims_text(window)} /{same_text(layer.stride_nd)}"
    if any(int(d) for d in layer.padding_nd):
        text += f" pad {same_text(layer.padding_nd)}"
    return text


def enum_text(value: Any) -> str:
    """``PoolingType.MAX`` -> ``max``."""
    return getattr(value, "name", str(value)).lower()


def axes_text(mask: int) -> str:
    """An axes bitmask as a list: ``0b110`` -> ``axes [1, 2]``."""
    return f"axes {[i for i in range(32) if int(mask) >> i & 1]}"


def _value_text(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, np.ndarray):
        return f"{value.size} values"
    if hasattr(value, "name") and hasattr(value, "value") and not isinstance(value, (int, str)):
        return enum_text(value)
    if hasattr(value, "__len__") and not isinstance(value, str):
        try:
            return dims_text(value)
        except (TypeError, ValueError):
            return str(value)
    return str(value)


def settings_text(settings: dict) -> str:
    """Layer settings in a few words: ``kind count, axis 0``."""
    return ", ".join(f"{name} {_value_text(value)}" for name, value in settings.items() if value is not None)

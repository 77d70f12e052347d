"""One tensor spec and one input matcher for everything that feeds a network.

The reference executor, the runtime, calibration, comparisons and the CLI describe a network's
inputs as :class:`TensorSpec` and check what they are given with :func:`match_inputs` (arrays) or
:func:`check_inputs` (shapes and dtypes only, e.g. of GPU tensors). Every problem is listed in one
error: missing and unknown inputs, ranks, static dimensions, optimization-profile ranges, dtypes,
and a hint when an array looks like one sample that lacks its batch axis.

``casting`` says which dtypes are accepted:

- ``"no"``: exactly the declared dtype (the reference executor computes with what it is given);
- ``"float"``: floating-point data for a floating-point input is converted to the declared float
  type; other dtypes must match (the CLI, comparisons, calibration);
- ``"same_kind"``: anything NumPy casts within a kind (the runtime's copy to the GPU casts).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from netdef import dtypes
from netdef.errors import NetdefError, NetworkInputError

Shape = tuple[int, ...]
Casting = Literal["no", "float", "same_kind"]


def shape_text(shape: Sequence[int] | None, *, compact: bool = False) -> str:
    """``(-1, 1, 28, 28)`` -> ``"(?, 1, 28, 28)"``; ``compact``: ``"?x1x28x28"`` (``"scalar"`` for ``()``).

    None (a shape TensorRT cannot infer) is ``"unknown"``.
    """
    if shape is None:
        return "unknown"
    dims = ["?" if d == -1 else str(d) for d in shape]
    if compact:
        return "x".join(dims) or "scalar"
    return "(" + ", ".join(dims) + ("," if len(dims) == 1 else "") + ")"


@dataclass(frozen=True)
class TensorSpec:
    """One network or engine I/O tensor: ``shape`` has ``-1`` for dynamic dimensions.

    Engine inputs carry their optimization-profile range ``min_shape``..``max_shape`` (``opt_shape``
    is the shape TensorRT tuned for); a network definition's inputs have no range.
    """

    name: str
    mode: str
    shape: Shape
    dtype: np.dtype
    min_shape: Shape | None = None
    opt_shape: Shape | None = None
    max_shape: Shape | None = None

    @property
    def is_input(self) -> bool:
        return self.mode == "input"

    @property
    def dynamic(self) -> bool:
        return -1 in self.shape

    def shape_problems(self, shape: Shape, *, samples: bool = False) -> list[str]:
        """Why ``shape`` cannot be given for this input (empty when it can).

        ``samples``: ``shape`` is a set of samples; its first axis (their count) is not checked.
        """
        where = f"input {self.name!r}"
        if samples:
            want, got = self.shape[1:], tuple(shape[1:])
            if len(shape) != len(self.shape) or any(w not in (-1, g) for w, g in zip(want, got, strict=True)):
                return [f"{where}: expected samples of shape {shape_text(want)}, got {shape_text(got)}"]
            return []
        if len(shape) != len(self.shape):
            problem = (
                f"{where}: expected shape {shape_text(self.shape)}, got {shape_text(shape)} "
                f"({len(self.shape)} dimensions, not {len(shape)})"
            )
            if tuple(shape) == self.shape[1:] and -1 not in self.shape[1:]:
                problem += ": it looks like one sample: add the batch axis (x[None])"
            return [problem]
        fixed = [i for i, (want, got) in enumerate(zip(self.shape, shape, strict=True)) if want != -1 and want != got]
        if fixed:
            dims = ", ".join(str(i) for i in fixed)
            return [f"{where}: expected shape {shape_text(self.shape)}, got {shape_text(shape)} (dimension {dims})"]
        if self.min_shape is None or self.max_shape is None:
            return []
        lo, hi = self.min_shape, self.max_shape
        outside = [
            f"dimension {i}: {got} {'<' if got < a else '>'} {a if got < a else b}"
            for i, (got, a, b) in enumerate(zip(shape, lo, hi, strict=True))
            if not a <= got <= b
        ]
        if outside:
            return [
                f"{where}: shape {tuple(shape)} is outside the engine's optimization profile "
                f"min {tuple(lo)} .. max {tuple(hi)} ({'; '.join(outside)})"
            ]
        return []

    def dtype_problems(self, dtype: np.dtype, casting: Casting = "no") -> list[str]:
        """Why an array of ``dtype`` cannot be fed to this input under ``casting`` (empty when it can)."""
        dtype = np.dtype(dtype)
        if dtype == self.dtype or (casting != "no" and _converts(dtype, self.dtype, casting)):
            return []
        problem = f"input {self.name!r}: expected dtype {self.dtype}, got {dtype}"
        if casting == "same_kind":
            problem += ", which cannot be cast to it"
        elif casting == "float" and dtypes.is_float(self.dtype):
            problem += " (give floating point data, already preprocessed)"
        return [problem]


def _converts(given: np.dtype, declared: np.dtype, casting: Casting) -> bool:
    if casting == "float":
        return dtypes.is_float(given) and dtypes.is_float(declared)
    return bool(np.can_cast(given, declared, casting="same_kind"))


def input_problems(
    specs: Sequence[TensorSpec],
    given: Mapping[str, tuple[Sequence[int], Any]],
    *,
    casting: Casting = "no",
    samples: bool = False,
    owner: str = "network",
) -> list[str]:
    """Every reason why ``given`` (input name -> (shape, dtype)) does not fit ``specs``.

    ``samples``: each array is a set of samples (calibration data): the first axis is their count,
    which must be the same for every input and not zero.
    """
    names = [spec.name for spec in specs]
    problems = []
    missing = [name for name in names if name not in given]
    if missing:
        problems.append("missing inputs: " + ", ".join(repr(name) for name in missing))
    unknown = [name for name in given if name not in names]
    if unknown:
        problems.append(f"unknown inputs: {', '.join(repr(n) for n in unknown)} (the {owner}'s inputs are {names})")
    counts = set()
    for spec in specs:
        if spec.name not in given:
            continue
        shape, dtype = given[spec.name]
        shape = tuple(int(d) for d in shape)
        problems += spec.shape_problems(shape, samples=samples)
        problems += spec.dtype_problems(np.dtype(dtype), casting)
        if samples and shape:
            counts.add(shape[0])
            if shape[0] == 0:
                problems.append(f"input {spec.name!r}: no samples (the set is empty)")
    if len(counts) > 1:
        problems.append(f"inputs have different numbers of samples: {sorted(counts)}")
    return problems


def check_inputs(
    specs: Sequence[TensorSpec],
    given: Mapping[str, tuple[Sequence[int], Any]],
    *,
    source: str,
    casting: Casting = "no",
    owner: str = "network",
) -> None:
    """Raise one :class:`NetworkInputError` listing every problem of ``given`` (name -> (shape, dtype))."""
    problems = input_problems(specs, given, casting=casting, owner=owner)
    if problems:
        raise _error(NetworkInputError, source, owner, problems)


def bind_inputs(specs: Sequence[TensorSpec], data: Any, *, owner: str = "network") -> dict[str, Any]:
    """``data`` as input name -> value: a mapping as it is (an ``.npz``'s lone ``arr_0`` goes to the only
    input), anything else to the only input. :class:`NetworkInputError` when there are several inputs."""
    names = [spec.name for spec in specs]
    if isinstance(data, Mapping) and not (list(data) == ["arr_0"] and "arr_0" not in names):
        return dict(data)
    if len(names) != 1:
        raise NetworkInputError(f"the {owner} has {len(names)} inputs {names}: give a mapping name -> array")
    return {names[0]: data["arr_0"] if isinstance(data, Mapping) else data}


def match_inputs(
    specs: Sequence[TensorSpec],
    data: Any,
    *,
    source: str = "",
    casting: Casting = "float",
    samples: bool = False,
    owner: str = "network",
    error: type[NetdefError] = NetworkInputError,
) -> dict[str, np.ndarray]:
    """``data`` (one array, or input name -> array; NumPy or torch) as checked NumPy arrays by input name,
    converted to the declared dtypes where ``casting`` allows; one ``error`` lists every problem."""
    bound = bind_inputs(specs, data, owner=owner)
    arrays = {name: _numpy(value) for name, value in bound.items()}
    problems = input_problems(
        specs, {n: (a.shape, a.dtype) for n, a in arrays.items()}, casting=casting, samples=samples, owner=owner
    )
    if problems:
        raise _error(error, source, owner, problems)
    declared = {spec.name: spec.dtype for spec in specs}
    return {name: np.asarray(array, dtype=declared[name], order="C") for name, array in arrays.items()}


def _numpy(value: Any) -> np.ndarray:
    if type(value).__module__.partition(".")[0] == "torch" and hasattr(value, "detach"):
        return dtypes.torch_to_numpy(value.detach().cpu().contiguous())
    return np.asarray(value)


def _error(error: type[NetdefError], source: str, owner: str, problems: list[str]) -> NetdefError:
    prefix = f"{source}: " if source else ""
    if len(problems) == 1:
        single = error(prefix + problems[0])
        single.problems = problems
        return single
    return error(f"{prefix}{len(problems)} problems with the inputs of the {owner}", problems)

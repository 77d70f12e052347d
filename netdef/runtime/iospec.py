"""An engine's inputs and outputs, their optimization-profile ranges, and input validation.

Pure Python and NumPy: everything here works from an engine file's metadata, so shape and dtype
errors are found (and testable) before TensorRT or a GPU is touched.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from netdef import dtypes
from netdef.errors import EngineFileError, NetworkInputError

Shape = tuple[int, ...]


def numpy_dtype(name: str) -> np.dtype:
    """The NumPy dtype of a metadata dtype name (``"float32"``, ``"bfloat16"``, ``"int64"``, ...)."""
    try:
        return dtypes.numpy_dtype(name)
    except dtypes.DTypeError:
        raise EngineFileError(f"engine metadata names dtype {name!r}, which has no NumPy equivalent") from None


def shape_text(shape: Sequence[int]) -> str:
    """``(-1, 1, 28, 28)`` -> ``"(?, 1, 28, 28)"``."""
    dims = ["?" if d == -1 else str(d) for d in shape]
    return "(" + ", ".join(dims) + ("," if len(dims) == 1 else "") + ")"


@dataclass(frozen=True)
class TensorSpec:
    """One engine I/O tensor: ``shape`` has ``-1`` for dynamic dimensions.

    Inputs carry their optimization-profile range ``min_shape``..``max_shape`` (``opt_shape`` is
    the shape TensorRT tuned for); for a static input all three equal ``shape``.
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

    def shape_problems(self, shape: Shape) -> list[str]:
        """Why ``shape`` cannot be given for this input (empty when it can)."""
        where = f"input {self.name!r}"
        if len(shape) != len(self.shape):
            return [f"{where}: expected {len(self.shape)} dimensions {shape_text(self.shape)}, got shape {shape}"]
        fixed = [i for i, (want, got) in enumerate(zip(self.shape, shape, strict=True)) if want != -1 and want != got]
        if fixed:
            dims = ", ".join(str(i) for i in fixed)
            return [f"{where}: expected shape {shape_text(self.shape)}, got {shape} (dimension {dims})"]
        lo, hi = self.min_shape or self.shape, self.max_shape or self.shape
        outside = [
            f"dimension {i}: {got} {'<' if got < a else '>'} {a if got < a else b}"
            for i, (got, a, b) in enumerate(zip(shape, lo, hi, strict=True))
            if not a <= got <= b
        ]
        if outside:
            return [
                f"{where}: shape {shape} is outside the engine's optimization profile "
                f"min {tuple(lo)} .. max {tuple(hi)} ({'; '.join(outside)})"
            ]
        return []

    def dtype_problems(self, dtype: np.dtype) -> list[str]:
        """Why an array of ``dtype`` cannot be fed to this input (same-kind casts are done silently)."""
        if dtype == self.dtype or np.can_cast(dtype, self.dtype, casting="same_kind"):
            return []
        return [f"input {self.name!r}: expected dtype {self.dtype}, got {dtype}, which cannot be cast to it"]


@dataclass(frozen=True)
class EngineIO:
    """The inputs and outputs of an engine, in engine order."""

    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    source: str = "engine"

    @property
    def input_names(self) -> list[str]:
        return [t.name for t in self.inputs]

    @property
    def output_names(self) -> list[str]:
        return [t.name for t in self.outputs]

    def input(self, name: str) -> TensorSpec:
        for spec in self.inputs:
            if spec.name == name:
                return spec
        raise NetworkInputError(f"{self.source}: no input named {name!r}; inputs: {self.input_names}")

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, Any], source: str = "engine") -> EngineIO:
        """Read ``io`` and ``profile`` from an engine file's metadata (see :mod:`netdef.build`)."""
        io = metadata.get("io")
        if not io:
            raise EngineFileError(f"{source}: the engine metadata lists no inputs or outputs ('io')")
        profile = metadata.get("profile") or {}
        batch = profile.get("batch")
        shapes = profile.get("shapes") or {}
        inputs, outputs, problems = [], [], []
        for entry in io:
            shape = tuple(int(d) for d in entry["shape"])
            spec = TensorSpec(entry["name"], entry["mode"], shape, numpy_dtype(entry["dtype"]))
            if spec.mode == "output":
                outputs.append(spec)
                continue
            if entry["name"] in shapes:
                lo, opt, hi = (tuple(int(d) for d in s) for s in shapes[entry["name"]])
            elif -1 not in shape:
                lo = opt = hi = shape
            elif batch is not None and -1 not in shape[1:]:
                lo, opt, hi = ((int(b), *shape[1:]) for b in batch)
            else:
                problems.append(f"dynamic input {spec.name!r} {shape_text(shape)} has no profile in the metadata")
                continue
            inputs.append(TensorSpec(spec.name, "input", shape, spec.dtype, lo, opt, hi))
        if problems:
            raise EngineFileError(f"{source}: " + "; ".join(problems))
        return cls(tuple(inputs), tuple(outputs), source)

    def check(self, given: Mapping[str, tuple[Shape, np.dtype]]) -> None:
        """Validate input shapes and dtypes, raising one :class:`NetworkInputError` listing every problem.

        ``given`` maps input name -> (shape, dtype). Checks: no input missing or unexpected, ranks and
        static dimensions match, dynamic dimensions lie inside the optimization profile, dtypes castable.
        """
        problems = []
        missing = [n for n in self.input_names if n not in given]
        unexpected = [n for n in given if n not in self.input_names]
        if missing:
            problems.append(f"missing input(s) {missing}")
        if unexpected:
            problems.append(f"unexpected input(s) {unexpected}; the engine's inputs are {self.input_names}")
        for spec in self.inputs:
            if spec.name in given:
                shape, dtype = given[spec.name]
                problems += spec.shape_problems(tuple(int(d) for d in shape))
                problems += spec.dtype_problems(np.dtype(dtype))
        if problems:
            raise NetworkInputError(f"{self.source}: " + "\n  ".join(["inputs do not fit the engine:", *problems]))

    def bind(self, arrays: Sequence[Any], named: Mapping[str, Any]) -> dict[str, Any]:
        """Positional then keyword arguments -> {input name: array}, refusing ambiguous calls."""
        if len(arrays) > len(self.inputs):
            raise NetworkInputError(
                f"{self.source}: {len(arrays)} positional inputs given, the engine has {len(self.inputs)}: "
                f"{self.input_names}"
            )
        bound = dict(zip(self.input_names, arrays, strict=False))
        twice = [n for n in named if n in bound]
        if twice:
            raise NetworkInputError(f"{self.source}: input(s) {twice} given both by position and by name")
        bound.update(named)
        return bound

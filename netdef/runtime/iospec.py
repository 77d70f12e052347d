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
from netdef.tensorspec import Shape, TensorSpec, check_inputs, shape_text

__all__ = ["EngineIO", "TensorSpec", "shape_text"]


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
            try:
                dtype = dtypes.numpy_dtype(entry["dtype"])
            except dtypes.DTypeError:
                problems.append(f"tensor {entry['name']!r}: dtype {entry['dtype']!r} has no NumPy equivalent")
                continue
            spec = TensorSpec(entry["name"], entry["mode"], shape, dtype)
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
            raise EngineFileError(f"{source}: the engine metadata does not describe its I/O", problems)
        return cls(tuple(inputs), tuple(outputs), source)

    def check(self, given: Mapping[str, tuple[Shape, np.dtype]]) -> None:
        """Validate input shapes and dtypes (``given``: input name -> (shape, dtype)), raising one
        :class:`NetworkInputError` listing every problem: inputs missing or unknown, ranks, static
        dimensions, dynamic dimensions outside the optimization profile, dtypes not castable."""
        check_inputs(self.inputs, given, source=self.source, casting="same_kind", owner="engine")

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

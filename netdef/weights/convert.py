"""Checkpoint conversion: read any format netdef reads, rename, cast, write ``.safetensors``/``.npz``/``.wts``.

>>> convert("model.pth", "model.safetensors", dtype="fp16", rules=["s/^backbone\\\\.//"])  # doctest: +SKIP

Only floating-point tensors are cast (integer buffers such as BatchNorm's ``num_batches_tracked``
keep their dtype). Values are copied bit for bit unless a cast is asked for; a cast that would
turn finite values into infinities is refused.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from netdef.dtypes import is_float, parse_float
from netdef.errors import CheckpointError
from netdef.weights.checkpoint import Checkpoint
from netdef.weights.rename import RuleLike, make_rules, rename_tensors

OUTPUT_SUFFIXES = (".safetensors", ".npz", ".wts")


@dataclass(frozen=True)
class ConversionSummary:
    """What :func:`convert` did."""

    source: Path
    destination: Path
    tensors: int
    parameters: int
    renamed: int
    reshaped: int
    cast: int
    bytes_in: int
    bytes_out: int


def cast_tensors(tensors: Mapping[str, np.ndarray], dtype: str | np.dtype, source: str = "") -> dict[str, np.ndarray]:
    """Floating tensors cast to ``dtype`` (``"fp16"``, ``"bf16"``, ``"fp32"`` or a NumPy dtype).

    Raises one :class:`CheckpointError` listing every tensor whose finite values would overflow.
    """
    target = parse_float(dtype) if isinstance(dtype, str) else np.dtype(dtype)
    out, problems = {}, []
    for name, array in tensors.items():
        if not is_float(array.dtype) or array.dtype == target:
            out[name] = array
            continue
        with np.errstate(over="ignore"):  # overflow is counted and reported below
            cast = array.astype(target)
        overflow = int(np.count_nonzero(np.isinf(cast.astype(np.float32)) & np.isfinite(array.astype(np.float32))))
        if overflow:
            largest = float(np.nanmax(np.abs(array.astype(np.float32))))
            problems.append(
                f"tensor {name!r}: {overflow} of {array.size} values overflow {target.name} (largest |x| = {largest:g})"
            )
        out[name] = cast
    if problems:
        where = f"{source}: " if source else ""
        raise CheckpointError(f"{where}cannot cast to {target.name}", problems)
    return out


def reshape_like(
    tensors: Mapping[str, np.ndarray], shapes: Mapping[str, tuple[int, ...]], source: str = ""
) -> tuple[dict[str, np.ndarray], int]:
    """Give flat tensors (from ``.wts``) the ``shapes`` an architecture expects: (tensors, how many reshaped).

    Names ``shapes`` does not mention are left alone; an entry whose value count differs is an
    error, all such entries listed at once.
    """
    out, problems, reshaped = {}, [], 0
    for name, array in tensors.items():
        shape = shapes.get(name)
        if shape is None or tuple(array.shape) == tuple(shape):
            out[name] = array
        elif array.size == int(np.prod(shape)):
            out[name] = array.reshape(shape)
            reshaped += 1
        else:
            problems.append(f"tensor {name!r}: {array.size} values cannot take shape {tuple(shape)}")
    if problems:
        where = f"{source}: " if source else ""
        raise CheckpointError(f"{where}cannot reshape", problems)
    return out, reshaped


def write_checkpoint(
    tensors: Mapping[str, np.ndarray], path: Path | str, metadata: dict[str, str] | None = None
) -> None:
    """Write ``tensors`` in the format named by ``path``'s suffix (.safetensors, .npz or .wts)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".safetensors":
        from netdef.weights.safetensors_io import write_safetensors

        write_safetensors(tensors, path, metadata)
    elif suffix == ".npz":
        _write_npz(tensors, path)
    elif suffix == ".wts":
        from netdef.weights.wts_io import write_wts

        write_wts(tensors, path)
    else:
        raise CheckpointError(
            f"{path}: cannot write {suffix or 'files without a suffix'!r}; netdef writes {OUTPUT_SUFFIXES}"
        )


def _write_npz(tensors: Mapping[str, np.ndarray], path: Path) -> None:
    """``np.savez``; refuses dtypes a pickle-free ``.npz`` cannot name (bfloat16, float8)."""
    unsupported = [f"{n!r} ({a.dtype})" for n, a in tensors.items() if a.dtype.kind == "V"]  # ml_dtypes' kind
    if unsupported:
        raise CheckpointError(
            f"{path}: .npz cannot store {', '.join(unsupported)} without pickle; write .safetensors instead"
        )
    with open(path, "wb") as f:
        arrays: dict[str, Any] = {name: np.ascontiguousarray(a) for name, a in tensors.items()}
        np.savez(f, **arrays)


def convert(
    source: Path | str,
    destination: Path | str,
    *,
    dtype: str | None = None,
    rules: Sequence[RuleLike] = (),
    strip_prefixes: Sequence[str] = (),
    shapes: Mapping[str, tuple[int, ...]] | None = None,
) -> ConversionSummary:
    """Read ``source`` (any checkpoint netdef reads), rename, reshape, cast, and write ``destination``.

    ``shapes`` (e.g. ``architectures.get("resnet50").expected_weights()``) restores the shapes a
    ``.wts`` file lacks, by the names after renaming. The output format follows ``destination``'s
    suffix. ``.wts`` holds float32 only, so ``dtype`` other than fp32 is refused for it.
    """
    source, destination = Path(source), Path(destination)
    if destination.suffix.lower() not in OUTPUT_SUFFIXES:
        raise CheckpointError(f"{destination}: output must end in one of {', '.join(OUTPUT_SUFFIXES)}")
    if destination.exists() and source.exists() and destination.resolve() == source.resolve():
        raise CheckpointError(f"{destination}: the output would overwrite the input; choose another file")
    if destination.suffix.lower() == ".wts" and dtype is not None and parse_float(dtype) != np.float32:
        raise CheckpointError(f"{destination}: .wts stores float32 only; drop --dtype {dtype} or write .safetensors")
    checkpoint = Checkpoint.load(source)
    made = make_rules(rules, strip_prefixes)
    tensors = rename_tensors(dict(checkpoint.items()), made, str(source))
    renamed = sum(old != new for old, new in zip(checkpoint, tensors, strict=True))
    reshaped = 0
    if shapes is not None:
        tensors, reshaped = reshape_like(tensors, shapes, str(source))
    cast = 0
    if dtype is not None:
        before = tensors
        tensors = cast_tensors(tensors, dtype, str(source))
        cast = sum(tensors[n].dtype != before[n].dtype for n in tensors)
    metadata = {"converted_from": source.name} if destination.suffix.lower() == ".safetensors" else None
    write_checkpoint(tensors, destination, metadata)
    return ConversionSummary(
        source=source,
        destination=destination,
        tensors=len(tensors),
        parameters=checkpoint.num_parameters,
        renamed=renamed,
        reshaped=reshaped,
        cast=cast,
        bytes_in=source.stat().st_size,
        bytes_out=destination.stat().st_size,
    )

"""Every error netdef raises derives from :class:`NetdefError`.

Messages name the file, tensor, layer and the expected vs actual value, and
list every problem at once rather than the first one found: ``error.problems``
holds them as a list, and :func:`format_problems` writes them, one per line.
"""

from __future__ import annotations

from collections.abc import Iterable


def format_problems(message: str, problems: Iterable[str], limit: int | None = None) -> str:
    """``message`` followed by one indented ``- problem`` line per problem (just ``message`` when none);
    with ``limit``, the first ``limit`` problems and a line counting the rest."""
    problems = list(problems)
    lines = [f"  - {p}" for p in problems[:limit]]
    if limit is not None and len(problems) > limit:
        lines.append(f"  ... and {len(problems) - limit} more")
    return "\n".join([f"{message}:", *lines]) if lines else message


class NetdefError(Exception):
    """Base class of all netdef errors; ``problems`` lists every reason found (may be empty)."""

    def __init__(self, message: str = "", problems: Iterable[str] | None = None, *, limit: int | None = None):
        self.problems: list[str] = list(problems or [])
        super().__init__(format_problems(message, self.problems, limit))


class BackendNotFoundError(NetdefError, ImportError):
    """Neither ``tensorrt`` nor ``tensorrt_rtx`` can be imported."""


class CheckpointError(NetdefError, KeyError):
    """A checkpoint cannot be read, or lacks or mismatches the weights a network needs."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class NetworkDefinitionError(NetdefError, ValueError):
    """A network definition is inconsistent (shapes, names, weights); raised before TensorRT sees it."""


class DefinitionError(NetdefError, ValueError):
    """A network definition cannot be found, imported or called as asked (name, file, module, options), or an
    engine's network cannot be defined again; ``problems`` lists every reason."""

    def __init__(self, message: str, problems: Iterable[str] | None = None):
        problems = list(problems or [])
        super().__init__(message + (f": {len(problems)} problem(s)" if problems else ""), problems)


class BuildError(NetdefError, RuntimeError):
    """TensorRT failed to build an engine; ``trt_errors`` holds TensorRT's own error lines."""

    def __init__(self, message: str, trt_errors: list[str] | None = None):
        self.trt_errors = list(trt_errors or [])
        details = "".join(f"\n  TensorRT: {line}" for line in self.trt_errors)
        super().__init__(message + details)


class EngineFileError(NetdefError, ValueError):
    """An engine file is truncated, corrupted, foreign, or of an unknown format version."""


class GPUUnavailableError(NetdefError, RuntimeError):
    """The operation needs a GPU that the TensorRT backend supports, and none is present."""


class UnsupportedLayerError(NetdefError, NotImplementedError):
    """The NumPy reference executor has no semantics for a layer (or for one of its settings)."""


class NetworkInputError(NetdefError, ValueError):
    """Arrays given to run a network are missing, unexpected, or mismatch the declared shapes or dtypes."""


class LayerExecutionError(NetdefError, RuntimeError):
    """A layer failed while the NumPy reference executor computed it; the message names the layer."""


class RefitError(NetdefError, RuntimeError):
    """A refit was refused: ``problems`` lists every reason (checked before the engine is touched),
    ``trt_errors`` holds TensorRT's own messages when TensorRT refused it."""

    def __init__(self, message: str, problems: list[str] | None = None, trt_errors: list[str] | None = None):
        problems = list(problems or [])
        self.trt_errors = list(trt_errors or [])
        super().__init__(message + (f": {len(problems)} problem(s)" if problems else ""), problems)
        self.args = ("\n".join([str(self.args[0]), *(f"  TensorRT: {line}" for line in self.trt_errors)]),)


class BuildCancelledError(BuildError):
    """The build was cancelled (Ctrl-C, or a progress monitor asked) before TensorRT finished; nothing was written."""


class CalibrationError(NetdefError, ValueError):
    """INT8 calibration is missing, invalid or does not fit the network (scales, cache file, data)."""


class EngineMismatchError(EngineFileError):
    """An engine was built by another TensorRT flavour or version, or for another GPU; the message names both."""


class CudaError(NetdefError, RuntimeError):
    """A CUDA runtime call failed; the message names the call and CUDA's error; ``code`` is its number."""

    def __init__(self, message: str, code: int | None = None):
        self.code = code
        super().__init__(message)


class EngineExecutionError(NetdefError, RuntimeError):
    """TensorRT refused to create an execution context or to run one; TensorRT's own lines are in the message."""


class RunnerClosedError(NetdefError, RuntimeError):
    """The runner (or its context pool) was closed: no more inferences."""


class ComparisonError(NetdefError, ValueError):
    """Two networks, or a network and a PyTorch module, cannot be compared: no layer matches, or inputs do not fit."""


class InputFileError(NetdefError, ValueError):
    """An input path is missing, unreadable, or not a regular file (a FIFO, device, socket or directory)."""


class OutputPathError(NetdefError, ValueError):
    """An output path would destroy an input (the same file) or is not a regular file that may be replaced."""

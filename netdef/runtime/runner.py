"""Run an engine from Python with NumPy arrays or PyTorch tensors.

::

    with Runner("lenet.engine", contexts=2) as runner:
        probs = runner(x)                      # NumPy in, NumPy out
        out = runner.infer({"input": x_cuda})  # torch CUDA tensors in, torch CUDA tensors out (zero-copy)

Each execution context has its own CUDA stream, device buffers and pinned host staging buffers;
a call takes a free context from a pool, so several threads can run inferences at once.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from netdef.compat import load_engine
from netdef.engine import Engine
from netdef.errors import CudaError, EngineExecutionError, EngineFileError, NetworkInputError, RunnerClosedError
from netdef.runtime import cuda
from netdef.runtime.iospec import EngineIO, TensorSpec
from netdef.runtime.pool import ContextPool
from netdef.runtime.tensors import cuda_device_of, from_numpy, is_torch, numpy_dtype_of, shape_of, to_numpy, torch_dtype

log = logging.getLogger("netdef.runtime")

MAX_GRAPHS_PER_CONTEXT = 8
"""CUDA graphs kept per context (one per distinct input shape and buffer set); the oldest is dropped."""


def check_arguments(device: Any, contexts: Any, cuda_graph: Any) -> None:
    """Refuse bad ``Runner`` arguments, all at once, before any GPU work."""
    problems = []
    if not isinstance(device, int) or isinstance(device, bool) or device < 0:
        problems.append(f"device must be a CUDA device index >= 0, got {device!r}")
    if not isinstance(contexts, int) or isinstance(contexts, bool) or contexts < 1:
        problems.append(f"contexts must be an integer >= 1, got {contexts!r}")
    if not isinstance(cuda_graph, bool):
        problems.append(f"cuda_graph must be True or False, got {cuda_graph!r}")
    if problems:
        raise ValueError("Runner: " + "; ".join(problems))


def io_from_cuda_engine(cuda_engine: Any, source: str) -> EngineIO:
    """The engine's I/O tensors and profile-0 ranges, read from the deserialized engine itself."""
    from netdef.backend import trt
    from netdef.dtypes import numpy_dtype

    inputs, outputs, problems = [], [], []
    for i in range(cuda_engine.num_io_tensors):
        name = cuda_engine.get_tensor_name(i)
        shape = tuple(cuda_engine.get_tensor_shape(name))
        dtype = numpy_dtype(cuda_engine.get_tensor_dtype(name))
        if cuda_engine.get_tensor_location(name) != trt.TensorLocation.DEVICE:
            problems.append(f"tensor {name!r} lives in host memory (a shape tensor); the runner does not feed those")
        if cuda_engine.get_tensor_format(name) != trt.TensorFormat.LINEAR:
            problems.append(f"tensor {name!r} has format {cuda_engine.get_tensor_format(name)}, not LINEAR")
        if cuda_engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT:
            lo, opt, hi = (tuple(s) for s in cuda_engine.get_tensor_profile_shape(name, 0))
            inputs.append(TensorSpec(name, "input", shape, dtype, lo, opt, hi))
        else:
            outputs.append(TensorSpec(name, "output", shape, dtype))
    if problems:
        raise EngineFileError(f"{source}: " + "; ".join(problems))
    return EngineIO(tuple(inputs), tuple(outputs), source)


class _Slot:
    """One execution context with its stream, device buffers, pinned staging buffers and CUDA graphs."""

    def __init__(self, index: int, context: Any, stream: cuda.Stream, device: int, native_graphs: bool) -> None:
        self.index = index
        self.context = context
        self.stream = stream
        self.device = device
        self.native_graphs = native_graphs
        self.device_buffers: dict[str, cuda.DeviceBuffer] = {}
        self.pinned: dict[str, cuda.PinnedBuffer] = {}
        self.graphs: dict[tuple, cuda.CudaGraph] = {}
        self.graphs_unavailable = False
        self.runtime_config: Any = None
        self.start = cuda.Event(device)
        self.end = cuda.Event(device)

    def device_buffer(self, name: str, nbytes: int) -> cuda.DeviceBuffer:
        """The device buffer for tensor ``name``, grown (reallocated) when ``nbytes`` do not fit."""
        buffer = self.device_buffers.get(name)
        if buffer is None or buffer.nbytes < nbytes:
            if buffer is not None:
                buffer.close()
                self.drop_graphs()  # captured graphs point at the old address
            buffer = self.device_buffers[name] = cuda.DeviceBuffer(nbytes, self.device)
        return buffer

    def staging(self, name: str, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        """A pinned host view of ``shape``/``dtype`` for tensor ``name``, reused across calls."""
        nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        buffer = self.pinned.get(name)
        if buffer is None or buffer.nbytes < nbytes:
            if buffer is not None:
                buffer.close()
            buffer = self.pinned[name] = cuda.PinnedBuffer(nbytes, self.device)
        return buffer.array(shape, dtype)

    def drop_graphs(self) -> None:
        for graph in self.graphs.values():
            graph.close()
        self.graphs.clear()

    def close(self) -> None:
        self.stream.synchronize()
        self.drop_graphs()
        for buffer in [*self.device_buffers.values(), *self.pinned.values()]:
            buffer.close()
        self.device_buffers.clear()
        self.pinned.clear()
        self.start.close()
        self.end.close()
        self.context = None  # TensorRT frees the context's memory when the last reference goes
        self.runtime_config = None
        self.stream.close()


class Runner:
    """Deserialize an engine on CUDA ``device`` and run it from any number of threads.

    ``engine``: an :class:`~netdef.engine.Engine` or an engine file (checked by :func:`load_engine`).
    ``contexts``: execution contexts, each with its own CUDA stream; that many calls run at once.
    ``cuda_graph``: replay each input shape's work as a CUDA graph (captured at its first call); uses
    TensorRT-RTX's built-in graph capture where the runtime offers it.

    Inputs are NumPy arrays (staged through pinned memory) or torch tensors; CUDA tensors on
    ``device`` are used in place and outputs are then allocated as torch CUDA tensors. Same-kind
    dtype casts (float64 -> float32, uint8 -> float32) are done on the way in.
    """

    def __init__(
        self, engine: Engine | str | Path, device: int = 0, contexts: int = 1, cuda_graph: bool = False
    ) -> None:
        self._closed = True
        check_arguments(device, contexts, cuda_graph)
        from netdef import backend

        self.engine: Engine = load_engine(engine, device)
        self.device = device
        self.cuda_graph = cuda_graph
        self.source = str(engine) if not isinstance(engine, Engine) else f"engine {engine.metadata.get('name', '?')!r}"
        cuda.set_device(device)
        self._runtime = backend.create_runtime()
        with backend.capture_errors() as errors:
            self.cuda_engine: Any = self._runtime.deserialize_cuda_engine(self.engine.plan)
        if self.cuda_engine is None:
            details = "".join(f"\n  TensorRT: {line}" for line in errors)
            raise EngineFileError(f"{self.source}: {backend.describe()} could not deserialize the plan{details}")
        self.io = io_from_cuda_engine(self.cuda_engine, self.source)
        slots: list[_Slot] = []
        try:
            for index in range(contexts):
                slots.append(self._new_slot(index))
        except BaseException:
            for slot in slots:
                slot.close()
            raise
        self._pool: ContextPool[_Slot] = ContextPool(slots, name=f"runner for {self.source}")
        self._closed = False

    # ------------------------------------------------------------------ set-up and tear-down

    def _new_slot(self, index: int) -> _Slot:
        from netdef import backend

        with backend.capture_errors() as errors:
            context, config = backend.create_execution_context(self.cuda_engine, cuda_graph=self.cuda_graph)
        native = config is not None
        if context is None:
            details = "".join(f"\n  TensorRT: {line}" for line in errors)
            raise EngineExecutionError(f"{self.source}: could not create execution context {index}{details}")
        context.name = f"{self.engine.metadata.get('name', 'engine')}#{index}"
        slot = _Slot(index, context, cuda.Stream(self.device), self.device, native)
        slot.runtime_config = config  # kept alive as long as the context it configured
        return slot

    def close(self, timeout: float | None = None) -> None:
        """Wait for calls in flight, then free contexts, streams, buffers, graphs and the engine."""
        if self._closed:
            return
        self._closed = True
        cuda.set_device(self.device)
        for slot in self._pool.close(timeout):
            slot.close()
        self.cuda_engine = None
        self._runtime = None

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self) -> Runner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - never raise from a finalizer
            pass

    def _require_open(self) -> None:
        if self._closed:
            raise RunnerClosedError(f"runner for {self.source} is closed")

    # ------------------------------------------------------------------ properties and hooks

    @property
    def inputs(self) -> tuple[TensorSpec, ...]:
        return self.io.inputs

    @property
    def outputs(self) -> tuple[TensorSpec, ...]:
        return self.io.outputs

    @property
    def num_contexts(self) -> int:
        return self._pool.size

    def synchronize(self) -> None:
        """Wait until every context's stream is idle."""
        self._require_open()
        cuda.set_device(self.device)
        for slot in self._pool.items:
            slot.stream.synchronize()

    @contextmanager
    def exclusive(self, timeout: float | None = None) -> Iterator[Runner]:
        """Hold every context (no inference runs meanwhile), e.g. to refit weights in place.

        Captured CUDA graphs are dropped on exit, so the next calls capture the engine as it is then.
        """
        self._require_open()
        with self._pool.acquire_all(timeout) as slots:
            cuda.set_device(self.device)
            for slot in slots:
                slot.stream.synchronize()
            try:
                yield self
            finally:
                for slot in slots:
                    slot.drop_graphs()

    def refit(self, checkpoint: Any, **options: Any) -> Any:
        """Swap in weights from ``checkpoint`` by name (see :func:`netdef.refit.refit_runner` for ``options``)."""
        from netdef.refit import refit_runner

        return refit_runner(self, checkpoint, **options)

    # ------------------------------------------------------------------ inference

    def __call__(self, *arrays: Any, **named: Any) -> Any:
        """``runner(x)``: inputs by position (engine order) or name; one output is returned bare."""
        outputs = self.infer(self.io.bind(arrays, named))
        return next(iter(outputs.values())) if len(outputs) == 1 else outputs

    def infer(self, inputs: Mapping[str, Any] | Any, timeout: float | None = None) -> dict[str, Any]:
        """Run once: {input name: array or tensor} -> {output name: array or tensor}.

        Shapes are checked against the optimization profile before TensorRT is called. ``timeout``
        bounds the wait for a free context (seconds; default: wait).
        """
        outputs, _ = self._infer(inputs, timeout, timed=False)
        return outputs

    def infer_timed(self, inputs: Mapping[str, Any] | Any, timeout: float | None = None) -> tuple[dict, float]:
        """Like :meth:`infer`, also returning the call's GPU time in milliseconds (CUDA events).

        The time covers the host-to-device copies, the execution and the device-to-host copies, as
        recorded on the context's stream.
        """
        return self._infer(inputs, timeout, timed=True)

    def _infer(self, inputs: Any, timeout: float | None, timed: bool) -> tuple[dict[str, Any], float]:
        self._require_open()
        if not isinstance(inputs, Mapping):
            inputs = self.io.bind([inputs], {})
        inputs = dict(inputs)
        self.io.check({name: (shape_of(x), numpy_dtype_of(x)) for name, x in inputs.items()})
        elsewhere = {n: cuda_device_of(x) for n, x in inputs.items() if cuda_device_of(x) not in (None, self.device)}
        if elsewhere:
            raise NetworkInputError(
                f"{self.source}: input(s) on another GPU than the runner's device {self.device}: "
                + ", ".join(f"{n!r} on cuda:{d}" for n, d in elsewhere.items())
            )
        torch_mode = any(is_torch(x) for x in inputs.values())
        on_device = torch_mode and all(cuda_device_of(x) == self.device for x in inputs.values())
        with self._pool.acquire(timeout) as slot:
            cuda.set_device(self.device)
            return self._run(slot, inputs, torch_mode, on_device, timed)

    def _run(
        self, slot: _Slot, inputs: dict[str, Any], torch_mode: bool, on_device: bool, timed: bool
    ) -> tuple[dict[str, Any], float]:
        context, stream = slot.context, slot.stream
        if on_device:
            import torch

            torch.cuda.current_stream(self.device).synchronize()  # the producer's work is done
        keep_alive, key = [], []
        if timed:
            slot.start.record(stream)
        for spec in self.io.inputs:
            x, shape = inputs[spec.name], shape_of(inputs[spec.name])
            if not context.set_input_shape(spec.name, shape):
                raise EngineExecutionError(f"{self.source}: TensorRT refused shape {shape} for input {spec.name!r}")
            if on_device:
                tensor = x.detach().to(torch_dtype(spec.dtype)).contiguous()
                keep_alive.append(tensor)
                address = tensor.data_ptr() or slot.device_buffer(spec.name, 1).ptr
            else:
                staged = slot.staging(spec.name, shape, spec.dtype)
                np.copyto(staged, x if isinstance(x, np.ndarray) else to_numpy(x), casting="same_kind")
                buffer = slot.device_buffer(spec.name, staged.nbytes)
                buffer.copy_from_host(staged, stream)
                address = buffer.ptr
            context.set_tensor_address(spec.name, address)
            key.append((spec.name, shape, address))
        results: dict[str, Any] = {}
        staged_outputs = {}
        for spec in self.io.outputs:
            shape = tuple(context.get_tensor_shape(spec.name))
            if any(d < 0 for d in shape):
                raise EngineExecutionError(
                    f"{self.source}: output {spec.name!r} has data-dependent shape {shape}; the runner cannot size it"
                )
            nbytes = int(np.prod(shape, dtype=np.int64)) * spec.dtype.itemsize
            if on_device:
                import torch

                tensor = torch.empty(shape, dtype=torch_dtype(spec.dtype), device=f"cuda:{self.device}")
                results[spec.name] = tensor
                address = tensor.data_ptr() or slot.device_buffer(spec.name, 1).ptr
            else:
                address = slot.device_buffer(spec.name, nbytes).ptr
            context.set_tensor_address(spec.name, address)
            key.append((spec.name, shape, address))
        self._execute(slot, tuple(key))
        if not on_device:
            for spec in self.io.outputs:
                shape = tuple(context.get_tensor_shape(spec.name))
                staged = staged_outputs[spec.name] = slot.staging(spec.name, shape, spec.dtype)
                slot.device_buffers[spec.name].copy_to_host(staged, stream)
        if timed:
            slot.end.record(stream)
        stream.synchronize()
        milliseconds = slot.start.elapsed_ms(slot.end) if timed else 0.0
        for name, staged in staged_outputs.items():
            array = staged.copy()  # the pinned buffer is reused by the next call
            results[name] = from_numpy(array) if torch_mode else array
        return results, milliseconds

    def _enqueue(self, slot: _Slot) -> None:
        from netdef import backend

        with backend.capture_errors() as errors:
            ok = slot.context.execute_async_v3(slot.stream.handle)
        if not ok:
            details = "".join(f"\n  TensorRT: {line}" for line in errors)
            raise EngineExecutionError(f"{self.source}: execute_async_v3 failed on context {slot.index}{details}")

    def _execute(self, slot: _Slot, key: tuple) -> None:
        """Enqueue the engine; with ``cuda_graph`` (and no built-in capture) replay or capture a graph."""
        if not self.cuda_graph or slot.native_graphs or slot.graphs_unavailable:
            self._enqueue(slot)
            return
        graph = slot.graphs.get(key)
        if graph is not None:
            graph.launch(slot.stream)
            return
        self._enqueue(slot)  # TensorRT needs one plain run after a shape change before capture
        capturable = getattr(slot.context, "is_stream_capturable", None)
        if capturable is not None and not capturable(slot.stream.handle):
            log.warning("%s: context %d cannot be captured in a CUDA graph; running without", self.source, slot.index)
            slot.graphs_unavailable = True
            return
        try:
            with cuda.CudaGraph.capture(slot.stream) as capture:
                self._enqueue(slot)
        except (CudaError, EngineExecutionError) as exc:
            log.warning("%s: CUDA graph capture failed (%s); running without", self.source, exc)
            slot.graphs_unavailable = True
            return
        if len(slot.graphs) >= MAX_GRAPHS_PER_CONTEXT:
            oldest = next(iter(slot.graphs))
            slot.graphs.pop(oldest).close()
        if capture.graph is not None:
            slot.graphs[key] = capture.graph


def run_engine_file(path: str | Path | Engine, inputs: Mapping[str, Any], device: int = 0) -> dict[str, np.ndarray]:
    """Load an engine, run it once on ``inputs`` and free everything: {output name: NumPy array}."""
    with Runner(path, device=device) as runner:
        outputs = runner.infer({name: _as_host(x) for name, x in inputs.items()})
    return outputs


def _as_host(x: Any) -> np.ndarray:
    return to_numpy(x) if is_torch(x) else np.asarray(x)

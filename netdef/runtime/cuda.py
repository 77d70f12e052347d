"""CUDA memory, streams, events and graphs through cuda-python (``cuda.bindings.runtime``).

Needs no TensorRT: these helpers run on any CUDA GPU. Every handle is owned by one Python
object with an idempotent ``close()`` (also a context manager), so device memory is freed
deterministically rather than whenever the garbage collector gets to it.

The CUDA runtime keeps the current device per thread: each helper remembers the device it was
created on and makes it current before touching its memory.
"""

from __future__ import annotations

import ctypes
from collections.abc import Sequence
from typing import Any

import numpy as np

from netdef.errors import CudaError

try:
    from cuda.bindings import runtime as _cudart
except ImportError:  # cuda-python < 12.6 spelled it ``from cuda import cudart``
    try:
        from cuda import cudart as _cudart  # type: ignore[no-redef]
    except ImportError:
        _cudart = None


def cudart() -> Any:
    """The ``cuda.bindings.runtime`` module, or a clear error naming the package to install."""
    if _cudart is None:
        raise CudaError("cuda-python is not installed: pip install 'netdef-trt[cuda]' (or pip install cuda-python)")
    return _cudart


def check(result: Any, call: str) -> Any:
    """Unpack a cuda-python ``(error, *values)`` tuple; raise :class:`CudaError` naming ``call`` on failure."""
    rt = cudart()
    if not isinstance(result, tuple):
        result = (result,)
    error, values = result[0], result[1:]
    if error != rt.cudaError_t.cudaSuccess:
        _, name = rt.cudaGetErrorName(error)
        _, text = rt.cudaGetErrorString(error)
        raise CudaError(f"{call} failed: {name.decode()} ({int(error)}): {text.decode()}", code=int(error))
    if not values:
        return None
    return values[0] if len(values) == 1 else values


# --------------------------------------------------------------------------- devices


def device_count() -> int:
    """The number of CUDA devices the runtime sees (0 when there is no driver or no GPU)."""
    if _cudart is None:
        return 0
    error, count = _cudart.cudaGetDeviceCount()
    return int(count) if error == _cudart.cudaError_t.cudaSuccess else 0


def set_device(device: int) -> None:
    """Make ``device`` current on the calling thread, naming the devices present when it does not exist."""
    count = device_count()
    if not 0 <= device < count:
        raise CudaError(f"CUDA device {device} does not exist: this machine has {count} CUDA device(s)")
    check(cudart().cudaSetDevice(device), f"cudaSetDevice({device})")


def current_device() -> int:
    return int(check(cudart().cudaGetDevice(), "cudaGetDevice"))


def mem_get_info(device: int | None = None) -> tuple[int, int]:
    """(free, total) bytes of device memory on ``device`` (default: the current one)."""
    if device is not None:
        set_device(device)
    free, total = check(cudart().cudaMemGetInfo(), "cudaMemGetInfo")
    return int(free), int(total)


def synchronize(device: int | None = None) -> None:
    """Wait for all work on ``device`` (default: the current one)."""
    if device is not None:
        set_device(device)
    check(cudart().cudaDeviceSynchronize(), "cudaDeviceSynchronize")


class _Owned:
    """Base for objects that own one CUDA handle: ``close()`` once, context manager, freed on GC."""

    _closed = True
    device = 0

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if _cudart is None:
            return
        error, previous = _cudart.cudaGetDevice()
        switch = error == _cudart.cudaError_t.cudaSuccess and previous != self.device
        if switch:
            _cudart.cudaSetDevice(self.device)
        try:
            self._release()
        finally:
            if switch:  # leave the calling thread's current device as it was
                _cudart.cudaSetDevice(previous)

    def _release(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    @property
    def closed(self) -> bool:
        return self._closed

    def _require_open(self) -> None:
        if self._closed:
            raise CudaError(f"{type(self).__name__} is closed")

    def __enter__(self):
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - never raise from a finalizer (interpreter shutdown)
            pass


# --------------------------------------------------------------------------- streams and events


class Stream(_Owned):
    """A non-blocking CUDA stream on ``device``; ``handle`` is the integer TensorRT wants."""

    def __init__(self, device: int = 0) -> None:
        set_device(device)
        self.device = device
        self._stream = check(cudart().cudaStreamCreateWithFlags(cudart().cudaStreamNonBlocking), "cudaStreamCreate")
        self._closed = False

    @property
    def handle(self) -> int:
        self._require_open()
        return int(self._stream)

    @property
    def raw(self) -> Any:
        self._require_open()
        return self._stream

    def synchronize(self) -> None:
        check(cudart().cudaStreamSynchronize(self.raw), "cudaStreamSynchronize")

    def wait(self, event: Event) -> None:
        """Make later work on this stream wait until ``event`` (recorded on any stream) completes."""
        check(cudart().cudaStreamWaitEvent(self.raw, event.raw, 0), "cudaStreamWaitEvent")

    def _release(self) -> None:
        _cudart.cudaStreamDestroy(self._stream)


class Event(_Owned):
    """A CUDA event; ``timing=False`` makes a lighter one that only orders streams."""

    def __init__(self, device: int = 0, timing: bool = True) -> None:
        set_device(device)
        self.device = device
        self.timing = timing
        flags = cudart().cudaEventDefault if timing else cudart().cudaEventDisableTiming
        self._event = check(cudart().cudaEventCreateWithFlags(flags), "cudaEventCreateWithFlags")
        self._closed = False

    @property
    def raw(self) -> Any:
        self._require_open()
        return self._event

    def record(self, stream: Stream) -> Event:
        check(cudart().cudaEventRecord(self.raw, stream.raw), "cudaEventRecord")
        return self

    def synchronize(self) -> None:
        check(cudart().cudaEventSynchronize(self.raw), "cudaEventSynchronize")

    def elapsed_ms(self, end: Event) -> float:
        """Milliseconds between this event and ``end`` (both recorded, ``end`` completed or waited for)."""
        if not (self.timing and end.timing):
            raise CudaError("elapsed_ms needs two events created with timing=True")
        end.synchronize()
        return float(check(cudart().cudaEventElapsedTime(self.raw, end.raw), "cudaEventElapsedTime"))

    def _release(self) -> None:
        _cudart.cudaEventDestroy(self._event)


# --------------------------------------------------------------------------- memory


def _nbytes(shape: Sequence[int], dtype: Any) -> int:
    return int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize


class DeviceBuffer(_Owned):
    """``nbytes`` of device memory on ``device`` (``cudaMalloc``); ``ptr`` is its address."""

    def __init__(self, nbytes: int, device: int = 0) -> None:
        if nbytes < 0:
            raise ValueError(f"DeviceBuffer size must be >= 0 bytes, got {nbytes}")
        set_device(device)
        self.device = device
        self.nbytes = int(nbytes)
        # cudaMalloc(0) returns a null pointer; TensorRT wants a real address even for empty tensors.
        self.ptr = int(check(cudart().cudaMalloc(max(self.nbytes, 1)), f"cudaMalloc({self.nbytes})"))
        self._closed = False

    @classmethod
    def from_array(cls, array: np.ndarray, device: int = 0, stream: Stream | None = None) -> DeviceBuffer:
        """A new buffer holding a copy of ``array``."""
        buffer = cls(np.asarray(array).nbytes, device)
        buffer.copy_from_host(array, stream)
        if stream is not None:
            stream.synchronize()
        return buffer

    def _check_size(self, nbytes: int, what: str) -> None:
        if nbytes > self.nbytes:
            raise CudaError(f"{what}: {nbytes} bytes do not fit in a DeviceBuffer of {self.nbytes} bytes")

    def copy_from_host(self, array: np.ndarray, stream: Stream | None = None) -> None:
        """Host -> device. With ``stream`` the copy is asynchronous (truly so only from pinned memory)."""
        self._require_open()
        array = np.ascontiguousarray(array)
        self._check_size(array.nbytes, "copy_from_host")
        _memcpy(self.ptr, array.ctypes.data, array.nbytes, "cudaMemcpyHostToDevice", stream)

    def copy_to_host(self, out: np.ndarray, stream: Stream | None = None) -> np.ndarray:
        """Device -> host into the C-contiguous array ``out`` (asynchronous with ``stream``)."""
        self._require_open()
        if not out.flags.c_contiguous or not out.flags.writeable:
            raise ValueError("copy_to_host needs a writeable C-contiguous output array")
        self._check_size(out.nbytes, "copy_to_host")
        _memcpy(out.ctypes.data, self.ptr, out.nbytes, "cudaMemcpyDeviceToHost", stream)
        return out

    def to_host(self, shape: Sequence[int], dtype: Any) -> np.ndarray:
        """A new host array of ``shape`` and ``dtype`` copied synchronously from the start of the buffer."""
        return self.copy_to_host(np.empty(shape, dtype=dtype))

    def copy_from_device(self, src: DeviceBuffer | int, nbytes: int, stream: Stream | None = None) -> None:
        """Device -> device from another buffer or a raw device address."""
        self._require_open()
        self._check_size(nbytes, "copy_from_device")
        address = src.ptr if isinstance(src, DeviceBuffer) else int(src)
        _memcpy(self.ptr, address, nbytes, "cudaMemcpyDeviceToDevice", stream)

    def fill_bytes(self, value: int, nbytes: int | None = None, stream: Stream | None = None) -> None:
        """Set ``nbytes`` (default: all) bytes to ``value`` (``cudaMemset``)."""
        self._require_open()
        nbytes = self.nbytes if nbytes is None else nbytes
        self._check_size(nbytes, "fill_bytes")
        rt = cudart()
        if stream is None:
            check(rt.cudaMemset(self.ptr, value, nbytes), "cudaMemset")
        else:
            check(rt.cudaMemsetAsync(self.ptr, value, nbytes, stream.raw), "cudaMemsetAsync")

    def _release(self) -> None:
        _cudart.cudaFree(self.ptr)
        self.ptr = 0

    def __repr__(self) -> str:
        state = "closed" if self._closed else f"0x{self.ptr:x}"
        return f"DeviceBuffer({self.nbytes} bytes, device {self.device}, {state})"


class PinnedBuffer(_Owned):
    """Page-locked host memory (``cudaHostAlloc``): the source and target of truly asynchronous copies."""

    def __init__(self, nbytes: int, device: int = 0) -> None:
        if nbytes < 0:
            raise ValueError(f"PinnedBuffer size must be >= 0 bytes, got {nbytes}")
        set_device(device)
        self.device = device
        self.nbytes = int(nbytes)
        self.ptr = int(check(cudart().cudaHostAlloc(max(self.nbytes, 1), 0), f"cudaHostAlloc({self.nbytes})"))
        self._closed = False

    def array(self, shape: Sequence[int], dtype: Any) -> np.ndarray:
        """A NumPy view of the start of the buffer (valid until ``close()``; copy to keep it)."""
        self._require_open()
        nbytes = _nbytes(shape, dtype)
        if nbytes > self.nbytes:
            raise CudaError(f"a {tuple(shape)} {np.dtype(dtype)} view needs {nbytes} bytes; buffer has {self.nbytes}")
        raw = (ctypes.c_uint8 * max(nbytes, 1)).from_address(self.ptr)
        return np.ctypeslib.as_array(raw)[:nbytes].view(dtype).reshape(shape)

    def _release(self) -> None:
        _cudart.cudaFreeHost(self.ptr)
        self.ptr = 0

    def __repr__(self) -> str:
        return f"PinnedBuffer({self.nbytes} bytes, {'closed' if self._closed else 'open'})"


def _memcpy(dst: int, src: int, nbytes: int, kind: str, stream: Stream | None) -> None:
    rt = cudart()
    if nbytes == 0:
        return
    direction = getattr(rt.cudaMemcpyKind, kind)
    if stream is None:
        check(rt.cudaMemcpy(dst, src, nbytes, direction), "cudaMemcpy")
    else:
        check(rt.cudaMemcpyAsync(dst, src, nbytes, direction, stream.raw), "cudaMemcpyAsync")


# --------------------------------------------------------------------------- graphs


class CudaGraph(_Owned):
    """Work captured from a stream once, replayed with one launch.

    ::

        with CudaGraph.capture(stream) as capturing:
            enqueue_work(stream)          # kernels, copies, TensorRT's execute_async_v3
        graph = capturing.graph
        graph.launch(stream)
    """

    def __init__(self, graph: Any, executable: Any, device: int) -> None:
        self.device = device
        self._graph = graph
        self._exec = executable
        self._closed = False

    @staticmethod
    def capture(stream: Stream) -> _Capture:
        return _Capture(stream)

    def launch(self, stream: Stream) -> None:
        self._require_open()
        check(cudart().cudaGraphLaunch(self._exec, stream.raw), "cudaGraphLaunch")

    def _release(self) -> None:
        _cudart.cudaGraphExecDestroy(self._exec)
        _cudart.cudaGraphDestroy(self._graph)


class _Capture:
    """Context manager recording a stream's work into a :class:`CudaGraph` (thread-local capture mode)."""

    def __init__(self, stream: Stream) -> None:
        self.stream = stream
        self.graph: CudaGraph | None = None

    def __enter__(self) -> _Capture:
        rt = cudart()
        mode = rt.cudaStreamCaptureMode.cudaStreamCaptureModeThreadLocal
        check(rt.cudaStreamBeginCapture(self.stream.raw, mode), "cudaStreamBeginCapture")
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        rt = cudart()
        result = rt.cudaStreamEndCapture(self.stream.raw)
        if exc_type is not None:  # the body failed: end the capture, drop what was recorded
            if result[0] == rt.cudaError_t.cudaSuccess and result[1] is not None:
                rt.cudaGraphDestroy(result[1])
            return
        graph = check(result, "cudaStreamEndCapture")
        try:
            executable = check(rt.cudaGraphInstantiate(graph, 0), "cudaGraphInstantiate")
        except CudaError:
            rt.cudaGraphDestroy(graph)
            raise
        self.graph = CudaGraph(graph, executable, self.stream.device)

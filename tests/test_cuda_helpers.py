"""netdef.runtime.cuda: cuda-python memory, streams, events and graphs (no TensorRT needed).

The GPU tests run on any CUDA GPU (Hopper included) and skip, with the reason, where there is
none. The error-path tests need only the cuda-python package.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from netdef.errors import CudaError
from netdef.runtime import cuda  # imports no TensorRT

if cuda._cudart is None:
    pytest.skip("cuda-python is not installed (pip install cuda-python)", allow_module_level=True)


def _gpu_count() -> tuple[int, str]:
    """CUDA GPUs visible: netdef.backend.gpus() where a TensorRT backend is installed, else cudart's count."""
    try:
        from netdef.backend import gpus
    except ImportError as exc:  # no TensorRT on this machine: ask the CUDA runtime directly
        count = cuda.device_count()
        return count, f"netdef.backend unavailable ({type(exc).__name__}); cudaGetDeviceCount: {count}"
    found = gpus()
    return len(found), "netdef.backend.gpus(): " + (", ".join(f"{g.name} ({g.sm})" for g in found) or "none")


GPU_COUNT, GPU_TEXT = _gpu_count()
needs_gpu = pytest.mark.skipif(GPU_COUNT == 0, reason=f"no CUDA GPU is visible on this machine ({GPU_TEXT})")
MiB = 1 << 20


# --------------------------------------------------------------------------- anywhere (cuda-python only)


def test_check_names_the_call_and_cuda_error():
    rt = cuda.cudart()
    with pytest.raises(CudaError, match=r"cudaMalloc\(8\) failed: cudaErrorMemoryAllocation \(2\)") as info:
        cuda.check((rt.cudaError_t.cudaErrorMemoryAllocation, None), "cudaMalloc(8)")
    assert info.value.code == 2
    assert cuda.check((rt.cudaError_t.cudaSuccess, 7), "x") == 7
    assert cuda.check((rt.cudaError_t.cudaSuccess, 1, 2), "x") == (1, 2)
    assert cuda.check((rt.cudaError_t.cudaSuccess,), "x") is None


def test_missing_device_is_refused_with_the_count():
    count = cuda.device_count()
    with pytest.raises(CudaError, match=f"CUDA device {count + 3} does not exist: this machine has {count}"):
        cuda.set_device(count + 3)
    with pytest.raises(CudaError, match="does not exist"):
        cuda.DeviceBuffer(16, device=count + 3)


def test_negative_sizes_are_refused_before_cuda():
    with pytest.raises(ValueError, match="must be >= 0 bytes, got -1"):
        cuda.DeviceBuffer(-1)
    with pytest.raises(ValueError, match="must be >= 0 bytes, got -5"):
        cuda.PinnedBuffer(-5)


# --------------------------------------------------------------------------- on a GPU


@pytest.fixture
def device():
    cuda.set_device(0)
    yield 0
    cuda.synchronize(0)


@needs_gpu
@pytest.mark.parametrize(
    "dtype, shape",
    [(np.float32, (3, 5, 7)), (np.float16, (1023,)), (np.int64, (2, 2)), (np.uint8, (1,)), (np.float32, (0, 4))],
)
def test_host_device_round_trip(device, dtype, shape):
    rng = np.random.default_rng(0)
    host = (rng.standard_normal(shape) * 100).astype(dtype)
    with cuda.DeviceBuffer(host.nbytes, device) as buffer:
        buffer.copy_from_host(host)
        back = buffer.to_host(shape, dtype)
    np.testing.assert_array_equal(back, host)
    assert back.ctypes.data != host.ctypes.data


@needs_gpu
def test_device_to_device_copy_and_fill(device):
    host = np.arange(4096, dtype=np.int32)
    with cuda.DeviceBuffer.from_array(host, device) as a, cuda.DeviceBuffer(host.nbytes, device) as b:
        b.copy_from_device(a, host.nbytes)
        np.testing.assert_array_equal(b.to_host(host.shape, host.dtype), host)
        b.fill_bytes(0x01, nbytes=8)  # first two int32 become 0x01010101
        out = b.to_host(host.shape, host.dtype)
    assert out[0] == out[1] == 0x01010101
    np.testing.assert_array_equal(out[2:], host[2:])


@needs_gpu
def test_pinned_buffer_views_and_async_copies_on_a_stream(device):
    shape = (256, 1024)
    with cuda.PinnedBuffer(4 * 256 * 1024, device) as src, cuda.PinnedBuffer(4 * 256 * 1024, device) as dst:
        a = src.array(shape, np.float32)
        a[...] = np.random.default_rng(1).standard_normal(shape)
        b = dst.array(shape, np.float32)
        b[...] = 0
        assert a.ctypes.data == src.ptr  # a view of the pinned memory, not a copy
        with cuda.Stream(device) as stream, cuda.DeviceBuffer(a.nbytes, device) as buffer:
            buffer.copy_from_host(a, stream)
            buffer.copy_to_host(b, stream)  # same stream: runs after the upload
            stream.synchronize()
        np.testing.assert_array_equal(b, a)
        with pytest.raises(CudaError, match="needs 4194308 bytes; buffer has 1048576"):
            src.array((1048577,), np.float32)


@needs_gpu
def test_copies_larger_than_the_buffer_are_refused(device):
    with cuda.DeviceBuffer(16, device) as buffer:
        with pytest.raises(CudaError, match="32 bytes do not fit in a DeviceBuffer of 16 bytes"):
            buffer.copy_from_host(np.zeros(8, np.float32))
        with pytest.raises(CudaError, match="do not fit"):
            buffer.copy_to_host(np.zeros(5, np.float32))
        with pytest.raises(ValueError, match="C-contiguous"):
            buffer.copy_to_host(np.zeros((4, 2), np.float16)[:, 0])


@needs_gpu
def test_event_timing_measures_the_work_between_events(device):
    nbytes = 512 * MiB
    with cuda.Stream(device) as stream, cuda.DeviceBuffer(nbytes, device) as buffer:
        start, end = cuda.Event(device), cuda.Event(device)
        start.record(stream)
        end.record(stream)
        empty_ms = start.elapsed_ms(end)
        wall = time.perf_counter()
        start.record(stream)
        for _ in range(8):
            buffer.fill_bytes(7, stream=stream)
        end.record(stream)
        busy_ms = start.elapsed_ms(end)  # waits for ``end``
        wall_ms = (time.perf_counter() - wall) * 1000
        start.close()
        end.close()
    assert 0 <= empty_ms < busy_ms <= wall_ms + 1.0
    print(f"8 x memset of 512 MiB: {busy_ms:.3f} ms by CUDA events ({8 * 0.5 / (busy_ms / 1000):.0f} GiB/s)")


@needs_gpu
def test_untimed_events_order_streams_but_refuse_timing(device):
    host = np.arange(1 << 20, dtype=np.float32)
    out = np.zeros_like(host)
    with cuda.Stream(device) as producer, cuda.Stream(device) as consumer:
        with cuda.DeviceBuffer(host.nbytes, device) as a, cuda.DeviceBuffer(host.nbytes, device) as b:
            with cuda.PinnedBuffer(host.nbytes, device) as pinned:
                staged = pinned.array(host.shape, host.dtype)
                staged[...] = host
                ready = cuda.Event(device, timing=False)
                a.copy_from_host(staged, producer)
                ready.record(producer)
                consumer.wait(ready)  # b <- a only after the upload on the other stream
                b.copy_from_device(a, host.nbytes, consumer)
                consumer.synchronize()
                b.copy_to_host(out)
                with pytest.raises(CudaError, match="timing=True"):
                    ready.elapsed_ms(ready)
                ready.close()
    np.testing.assert_array_equal(out, host)


@needs_gpu
def test_memory_is_freed_on_close_and_by_context_manager(device):
    size = 256 * MiB
    free_before, total = cuda.mem_get_info(device)
    buffers = [cuda.DeviceBuffer(size, device) for _ in range(4)]
    free_during, _ = cuda.mem_get_info(device)
    assert free_before - free_during >= 4 * size
    for buffer in buffers:
        buffer.close()
        buffer.close()  # idempotent
    with cuda.DeviceBuffer(size, device):
        pass
    free_after, _ = cuda.mem_get_info(device)
    assert abs(free_after - free_before) < 8 * MiB, (free_before, free_during, free_after)
    print(f"4 x 256 MiB: free {free_before / MiB:.0f} -> {free_during / MiB:.0f} -> {free_after / MiB:.0f} MiB")
    with pytest.raises(CudaError, match="DeviceBuffer is closed"):
        buffers[0].copy_from_host(np.zeros(1, np.float32))


@needs_gpu
def test_pinned_memory_is_freed(device):
    buffers = [cuda.PinnedBuffer(64 * MiB, device) for _ in range(2)]
    for buffer in buffers:
        buffer.close()
    assert all(b.closed and b.ptr == 0 for b in buffers)
    with pytest.raises(CudaError, match="PinnedBuffer is closed"):
        buffers[0].array((1,), np.uint8)


@needs_gpu
def test_cuda_graph_captures_and_replays_copies(device):
    n = 1 << 16
    with cuda.Stream(device) as stream, cuda.PinnedBuffer(4 * n, device) as pinned:
        staged = pinned.array((n,), np.float32)
        with cuda.DeviceBuffer(4 * n, device) as a, cuda.DeviceBuffer(4 * n, device) as b:
            with cuda.CudaGraph.capture(stream) as capture:
                a.copy_from_host(staged, stream)
                b.copy_from_device(a, 4 * n, stream)
                b.fill_bytes(0, nbytes=4, stream=stream)
            graph = capture.graph
            for value in (3.0, -1.5):  # the graph reads the pinned buffer's current content each launch
                staged[...] = value
                graph.launch(stream)
                stream.synchronize()
                out = b.to_host((n,), np.float32)
                assert out[0] == 0.0
                np.testing.assert_array_equal(out[1:], value)
            graph.close()
            with pytest.raises(CudaError, match="CudaGraph is closed"):
                graph.launch(stream)


@needs_gpu
def test_failed_capture_body_leaves_the_stream_usable(device):
    with cuda.Stream(device) as stream:
        with pytest.raises(RuntimeError, match="boom"):
            with cuda.CudaGraph.capture(stream):
                raise RuntimeError("boom")
        with cuda.DeviceBuffer(4, device) as buffer:
            buffer.copy_from_host(np.ones(1, np.float32), stream)
            stream.synchronize()
            assert buffer.to_host((1,), np.float32)[0] == 1.0


@needs_gpu
def test_streams_in_threads_round_trip_concurrently(device):
    errors: list[BaseException] = []

    def work(seed: int) -> None:
        try:
            cuda.set_device(device)  # the current device is per thread
            host = np.random.default_rng(seed).standard_normal(1 << 18).astype(np.float32)
            with cuda.Stream(device) as stream, cuda.PinnedBuffer(host.nbytes, device) as up:
                with cuda.PinnedBuffer(host.nbytes, device) as down, cuda.DeviceBuffer(host.nbytes, device) as buffer:
                    sent, received = up.array(host.shape, host.dtype), down.array(host.shape, host.dtype)
                    for i in range(10):
                        # Asynchronous copies read and write the pinned buffers later: touch them only
                        # after the stream is synchronized.
                        sent[...] = host + i
                        received[...] = 0
                        buffer.copy_from_host(sent, stream)
                        buffer.copy_to_host(received, stream)
                        stream.synchronize()
                        np.testing.assert_array_equal(received, host + i)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(seed,)) for seed in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors


@needs_gpu
def test_device_count_and_memory_info_agree_with_the_driver():
    assert cuda.device_count() == GPU_COUNT
    free, total = cuda.mem_get_info(0)
    assert 0 < free <= total
    assert cuda.current_device() == 0

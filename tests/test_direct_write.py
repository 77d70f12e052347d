"""Large plans go to the disk past the page cache (O_DIRECT): the file must hold exactly the bytes asked
for, whatever the buffer's alignment, and every refusal must fall back to an ordinary write."""

from __future__ import annotations

import errno
import os

import numpy as np
import pytest

from netdef import direct_write
from netdef.engine import Engine

pytestmark = pytest.mark.skipif(not direct_write.available(), reason="O_DIRECT exists on Linux only")

SIZE = direct_write.MINIMUM + 3 * direct_write.BLOCK + 123


def _buffer(skew: int) -> memoryview:
    """SIZE random bytes starting ``skew`` bytes past a page boundary."""
    backing = np.frombuffer(os.urandom(SIZE + 2 * direct_write.BLOCK), np.uint8)
    first = (-backing.ctypes.data) % direct_write.BLOCK + skew
    return memoryview(backing[first : first + SIZE]).toreadonly()


def _spy_direct(monkeypatch) -> list[bool]:
    """The results of the real ``_write_direct`` calls (True: written past the page cache)."""
    results: list[bool] = []
    real = direct_write._write_direct

    def spy(fd, view, offset):
        results.append(real(fd, view, offset))
        return results[-1]

    monkeypatch.setattr(direct_write, "_write_direct", spy)
    return results


@pytest.mark.parametrize("skew", [0, 16, 511, 4095])
@pytest.mark.parametrize("head", [0, 100, 4096])
def test_the_file_holds_exactly_the_bytes_for_any_alignment(tmp_path, monkeypatch, skew, head):
    data = _buffer(skew)
    offset = head + direct_write.aligning_padding(data, head)
    assert offset >= head and (offset - head) < direct_write.BLOCK
    results = _spy_direct(monkeypatch)
    path = tmp_path / "out.bin"
    with open(path, "wb") as f:
        f.write(b"h" * offset)
        direct_write.write_at(f, data, offset)
        assert f.tell() == offset  # the position is left where it was
    assert path.read_bytes() == b"h" * offset + bytes(data)
    if results != [True]:
        pytest.skip(f"the file system under {tmp_path} refuses O_DIRECT: only the fallback was checked")


def test_a_misaligned_offset_is_written_through_the_page_cache(tmp_path, monkeypatch):
    data = _buffer(16)
    offset = direct_write.aligning_padding(data, 0) + 1  # one byte off: no direct write is possible
    results = _spy_direct(monkeypatch)
    path = tmp_path / "out.bin"
    with open(path, "wb") as f:
        direct_write.write_at(f, data, offset)
    assert results == [] and path.read_bytes()[offset:] == bytes(data)


def test_a_file_system_that_refuses_o_direct_gets_the_same_bytes(tmp_path, monkeypatch):
    import fcntl

    real_fcntl = fcntl.fcntl

    def refusing(fd, command, arg=0):
        if command == fcntl.F_SETFL and arg & os.O_DIRECT:
            raise OSError(errno.EINVAL, "O_DIRECT not supported")  # tmpfs and some FUSE mounts
        return real_fcntl(fd, command, arg)

    monkeypatch.setattr(fcntl, "fcntl", refusing)
    data = _buffer(0)
    path = tmp_path / "out.bin"
    with open(path, "wb") as f:
        direct_write.write_at(f, data, 0)
    assert path.read_bytes() == bytes(data)


def test_a_write_refused_midway_is_written_again_through_the_page_cache(tmp_path, monkeypatch):
    real_pwrite = os.pwrite
    calls = []

    def refusing_direct(fd, data, offset):
        import fcntl

        calls.append(len(data))
        if fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_DIRECT:
            real_pwrite(fd, bytes(data[: direct_write.BLOCK]), offset)  # a first block lands, then EINVAL
            raise OSError(errno.EINVAL, "Invalid argument")
        return real_pwrite(fd, data, offset)

    monkeypatch.setattr(os, "pwrite", refusing_direct)
    data = _buffer(0)
    path = tmp_path / "out.bin"
    with open(path, "wb") as f:
        direct_write.write_at(f, data, 0)
    assert path.read_bytes() == bytes(data) and len(calls) >= 2


def test_another_error_of_a_direct_write_is_raised(tmp_path, monkeypatch):
    def full(fd, data, offset):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "pwrite", full)
    with open(tmp_path / "out.bin", "wb") as f, pytest.raises(OSError, match="No space left"):
        direct_write.write_at(f, _buffer(0), 0)


def test_an_engine_with_a_large_plan_is_padded_to_line_up_and_reads_back(tmp_path, monkeypatch):
    plan = _buffer(16)  # like TensorRT's plan: 16 bytes past a page boundary
    engine = Engine(plan, {"name": "big", "backend": "rtx", "backend_version": "1", "precision": "fp32"})
    results = _spy_direct(monkeypatch)
    path = engine.save(tmp_path / "big.engine")
    data = path.read_bytes()
    padding = len(data) - len(engine.head()) - SIZE
    assert 0 <= padding < direct_write.BLOCK
    assert data == engine.head(padding=padding) + bytes(plan)
    assert Engine.load(path).plan == bytes(plan)
    assert Engine.read_metadata(path, verify_plan=True) == {
        **engine.metadata,
        "plan_bytes": SIZE,
        "plan_sha256": Engine.load(path).metadata["plan_sha256"],
    }
    if results != [True]:
        pytest.skip(f"the file system under {tmp_path} refuses O_DIRECT: only the fallback was checked")

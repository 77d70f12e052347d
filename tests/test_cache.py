"""The engine cache: hits, misses, corrupt entries, concurrent writers, pruning, refit from cache (GPU),
and the copy of an entry to the output."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import xxhash
from cli_runner import netdef

from netdef import backend
from netdef.cache import EngineCache, build_through_cache, cache_key
from netdef.engine import Engine
from netdef.errors import OutputPathError
from netdef.fileio import copy_file
from netdef.weights.safetensors_io import write_safetensors

CAPS = backend.capabilities()
ROOT = Path(__file__).resolve().parents[1]
LENET = ROOT / "weights" / "lenet_digits.safetensors"
pytestmark = pytest.mark.skipif(not CAPS.can_build, reason=f"cannot build engines here: {CAPS.reason}")


def build(monkeypatch, capsys, cache: Path, out: Path, *extra) -> tuple[int, str, str]:
    return netdef(monkeypatch, capsys, "build", "lenet", "-w", LENET, "-o", out, "-q", "--cache", cache, *extra)


def test_a_hit_writes_the_same_engine_and_says_from_cache(monkeypatch, capsys, tmp_path):
    code, out, err = build(monkeypatch, capsys, tmp_path / "cache", tmp_path / "a.engine", "-p", "fp16")
    assert code == 0, err
    assert "from cache" not in out
    code, out, err = build(monkeypatch, capsys, tmp_path / "cache", tmp_path / "b.engine", "-p", "fp16")
    assert code == 0, err
    assert "from cache" in out
    (entry,) = EngineCache(tmp_path / "cache").entries()
    assert (tmp_path / "b.engine").read_bytes() == entry.path.read_bytes() == (tmp_path / "a.engine").read_bytes()
    assert entry.path.stat().st_ino != (tmp_path / "b.engine").stat().st_ino  # a copy, not a link to the entry


def test_the_environment_variable_names_the_cache(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("NETDEF_CACHE", str(tmp_path / "env-cache"))
    code, out, err = netdef(monkeypatch, capsys, "build", "lenet", "-w", LENET, "-o", tmp_path / "a.engine", "-q")
    assert code == 0, err
    assert len(EngineCache(tmp_path / "env-cache").entries()) == 1


def test_precision_batch_and_weights_are_part_of_the_key(monkeypatch, capsys, tmp_path):
    cache = tmp_path / "cache"
    assert build(monkeypatch, capsys, cache, tmp_path / "1.engine", "-p", "fp32")[0] == 0
    assert "from cache" not in build(monkeypatch, capsys, cache, tmp_path / "2.engine", "-p", "fp16")[1]
    assert "from cache" not in build(monkeypatch, capsys, cache, tmp_path / "3.engine", "--batch", "1:4:8")[1]
    changed = tmp_path / "lenet_changed.safetensors"
    from netdef.weights import Checkpoint

    tensors = {k: np.array(v) for k, v in Checkpoint.load(LENET).items()}
    tensors["fc2.bias"] = tensors["fc2.bias"] + 1
    write_safetensors(tensors, changed)
    code, out, err = netdef(
        monkeypatch, capsys, "build", "lenet", "-w", changed, "-o", tmp_path / "4.engine", "-q", "--cache", cache
    )
    assert code == 0, err
    assert "from cache" not in out
    assert len(EngineCache(cache).entries()) == 4


class _PlanReads:
    """Counts how often the engine file's plan is read: loads, and metadata reads that verify the plan."""

    def __init__(self, monkeypatch):
        self.verified, self.loaded = [], []
        read_metadata, load = Engine.read_metadata.__func__, Engine.load.__func__

        def counted_read_metadata(cls, path, *, verify_plan=False):
            if verify_plan:
                self.verified.append(Path(path))
            return read_metadata(cls, path, verify_plan=verify_plan)

        def counted_load(cls, path):
            self.loaded.append(Path(path))
            return load(cls, path)

        monkeypatch.setattr(Engine, "read_metadata", classmethod(counted_read_metadata))
        monkeypatch.setattr(Engine, "load", classmethod(counted_load))


def test_a_hit_reads_no_plan_while_the_entry_is_unchanged_and_verifies_a_changed_one(monkeypatch, capsys, tmp_path):
    cache = tmp_path / "cache"
    assert build(monkeypatch, capsys, cache, tmp_path / "a.engine")[0] == 0
    reads = _PlanReads(monkeypatch)
    for out in ("b.engine", "c.engine"):
        code, text, err = build(monkeypatch, capsys, cache, tmp_path / out)
        assert code == 0, err
        assert "from cache" in text
    assert reads.verified == [] and reads.loaded == []  # stored by this cache, then used twice: never re-read
    (entry,) = EngineCache(cache).entries()
    os.utime(entry.path, ns=(entry.path.stat().st_atime_ns, entry.path.stat().st_mtime_ns - 10**9))  # touched
    code, text, err = build(monkeypatch, capsys, cache, tmp_path / "d.engine")
    assert code == 0, err
    assert "from cache" in text
    assert reads.verified == [entry.path]  # a changed stamp: the plan is hashed once, then trusted again
    assert build(monkeypatch, capsys, cache, tmp_path / "e.engine")[0] == 0
    assert reads.verified == [entry.path] and reads.loaded == []
    assert (tmp_path / "e.engine").read_bytes() == entry.path.read_bytes()


def test_a_corrupt_entry_is_detected_removed_and_rebuilt(monkeypatch, capsys, tmp_path, caplog):
    cache = tmp_path / "cache"
    assert build(monkeypatch, capsys, cache, tmp_path / "a.engine")[0] == 0
    (entry,) = EngineCache(cache).entries()
    data = bytearray(entry.path.read_bytes())
    data[-100] ^= 0xFF  # inside the plan: the plan's SHA-256 no longer matches
    entry.path.write_bytes(bytes(data))
    code, out, err = build(monkeypatch, capsys, cache, tmp_path / "b.engine")
    assert code == 0, err
    assert "from cache" not in out
    assert "corrupt" in err
    Engine.load(entry.path)  # the rebuilt entry is valid again
    assert (tmp_path / "a.engine").read_bytes() != b""


def test_an_entry_corrupted_in_place_is_detected_removed_and_rebuilt(monkeypatch, capsys, tmp_path):
    cache = tmp_path / "cache"
    assert build(monkeypatch, capsys, cache, tmp_path / "a.engine")[0] == 0
    (entry,) = EngineCache(cache).entries()
    before = entry.path.stat()
    with open(entry.path, "r+b") as f:  # the same file (inode) and size, three plan bytes flipped
        f.seek(-100, os.SEEK_END)
        flipped = bytes(b ^ 0xFF for b in f.read(3))
        f.seek(-100, os.SEEK_END)
        f.write(flipped)
    os.utime(entry.path, ns=(before.st_atime_ns, before.st_mtime_ns + 10**9))  # as a later edit leaves it
    after = entry.path.stat()
    assert (after.st_ino, after.st_size) == (before.st_ino, before.st_size)
    code, out, err = build(monkeypatch, capsys, cache, tmp_path / "b.engine")
    assert code == 0, err
    assert "from cache" not in out
    assert "corrupt" in err
    Engine.read_metadata(entry.path, verify_plan=True)  # rebuilt and valid
    Engine.read_metadata(tmp_path / "b.engine", verify_plan=True)


def test_an_entry_edited_in_place_right_after_it_was_stored_is_still_caught(tmp_path, caplog):
    cache = EngineCache(tmp_path / "cache")
    key = cache_key({"probe": 3})
    path = cache.put(key, Engine(b"plan" * 1000, {"name": "probe"}))
    # the remembered mtime lies in the past, so a write now changes it even on a file system whose
    # clock ticks once per second or two (FAT): the stamp of a verified entry never matches a later write
    assert path.stat().st_mtime_ns <= time.time_ns() - 2 * 10**9
    with open(path, "r+b") as f:
        f.seek(-1, os.SEEK_END)
        f.write(b"X")
    assert cache.lookup(key) is None
    assert not path.exists()
    assert "corrupt" in caplog.text


def test_a_fifo_output_is_refused_before_any_work_even_on_a_hit(monkeypatch, capsys, tmp_path):
    cache = tmp_path / "cache"
    assert build(monkeypatch, capsys, cache, tmp_path / "a.engine")[0] == 0
    (entry,) = EngineCache(cache).entries()
    stamp = entry.path.stat().st_mtime_ns
    fifo = tmp_path / "out.engine"
    os.mkfifo(fifo)
    code, out, err = build(monkeypatch, capsys, cache, fifo)
    assert code == 1
    assert "FIFO" in " ".join(err.split())
    assert "from cache" not in out
    assert entry.path.stat().st_mtime_ns == stamp  # the entry was not even looked up (a lookup marks its use)
    code, out, err = build(monkeypatch, capsys, tmp_path / "other-cache", fifo)
    assert code == 1 and "FIFO" in " ".join(err.split())
    assert not (tmp_path / "other-cache").exists()  # nothing was built


def test_a_hit_refuses_an_output_that_is_the_cache_entry(monkeypatch, capsys, tmp_path):
    cache = tmp_path / "cache"
    assert build(monkeypatch, capsys, cache, tmp_path / "a.engine")[0] == 0
    (entry,) = EngineCache(cache).entries()
    code, out, err = build(monkeypatch, capsys, cache, entry.path)
    assert code == 1
    assert "same file as the input" in " ".join(err.split())
    assert entry.path.read_bytes() == (tmp_path / "a.engine").read_bytes()
    assert not list(cache.glob(".*.tmp"))


def test_two_processes_building_the_same_key_both_succeed_and_leave_one_entry(tmp_path):
    cache = tmp_path / "cache"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    command = [sys.executable, "-m", "netdef.cli", "build", "lenet", "-w", str(LENET), "-q", "--cache", str(cache)]
    procs = [
        subprocess.Popen(
            [*command, "-o", str(tmp_path / f"{i}.engine")],
            env=env,
            cwd=tmp_path,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for i in range(2)
    ]
    results = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], results
    entries = EngineCache(cache).entries()
    assert len(entries) == 1
    Engine.load(entries[0].path)
    assert not list(cache.glob(".*.tmp"))
    for i in range(2):
        Engine.load(tmp_path / f"{i}.engine")


def test_fingerprints_are_memoised_by_path_size_mtime_and_inode(tmp_path, monkeypatch):
    from netdef.weights import fingerprint as fp

    weights = tmp_path / "w.bin"
    weights.write_bytes(b"abc" * 1000)
    calls = []
    real = fp.fingerprint
    monkeypatch.setattr(fp, "fingerprint", lambda p: calls.append(p) or real(p))
    cache = EngineCache(tmp_path / "cache")
    first = cache.fingerprint(weights)
    assert EngineCache(tmp_path / "cache").fingerprint(weights) == first  # as a new process would: the memo file
    assert len(calls) == 1
    weights.write_bytes(b"abd" * 1000)  # same size, new content and mtime
    os.utime(weights, ns=(weights.stat().st_atime_ns, weights.stat().st_mtime_ns + 1_000_000))
    assert cache.fingerprint(weights) != first
    assert len(calls) == 2
    assert first == {"size": 3000, "xxh3_128": xxhash.xxh3_128(b"abc" * 1000).hexdigest()}


_USER_LENET = """
from netdef import register


@register("probe_for_cache_edits", input_shape=(1, 28, 28), output="prob")
def user_lenet(net, x):
    x = net.max_pool2d(net.conv2d(x, "conv1", 20, kernel_size=5), 2)
    x = net.max_pool2d(net.conv2d(x, "conv2", 50, kernel_size=5), 2)
    x = net.relu(net.linear(net.flatten(x), "fc1", 500))
    return net.softmax(net.linear(x, "fc2", 10), dim=1)
"""


def test_an_edited_definition_file_misses_the_cache(monkeypatch, capsys, tmp_path):
    user = tmp_path / "user_lenet.py"
    user.write_text(_USER_LENET)
    cache, target = tmp_path / "cache", f"{user}:user_lenet"

    def build_user(out: str) -> str:
        code, out_text, err = netdef(
            monkeypatch, capsys, "build", target, "-w", LENET, "-o", tmp_path / out, "-q", "--cache", cache
        )
        assert code == 0, err
        return out_text

    assert "from cache" not in build_user("1.engine")
    assert "from cache" in build_user("2.engine")
    user.write_text(_USER_LENET + "\n# edited\n")
    assert "from cache" not in build_user("3.engine")


# --------------------------------------------------------------------------- copying an entry to the output


def _unsupported(*args):
    raise OSError(95, "Operation not supported")


@pytest.mark.parametrize("route", ["kernel", "read-write", "kernel-stops-early"])
def test_copy_file_copies_the_bytes_and_keeps_the_replaced_files_mode(tmp_path, monkeypatch, route):
    import fcntl

    source, target = tmp_path / "source.bin", tmp_path / "target.bin"
    data = np.random.default_rng(0).bytes(5 * (1 << 20) + 3)  # several copy chunks and an odd tail
    source.write_bytes(data)
    target.write_bytes(b"old")
    target.chmod(0o600)
    if route == "read-write":  # neither a reflink nor copy_file_range: the portable path
        monkeypatch.setattr(fcntl, "ioctl", _unsupported)
        monkeypatch.setattr(os, "copy_file_range", _unsupported, raising=False)
    if route == "kernel-stops-early":  # no reflink, and a copy_file_range that ends after one megabyte
        real_copy_range, calls = os.copy_file_range, []

        def one_megabyte_then_nothing(src, dst, count):
            calls.append(count)
            return real_copy_range(src, dst, 1 << 20) if len(calls) == 1 else 0

        monkeypatch.setattr(fcntl, "ioctl", _unsupported)
        monkeypatch.setattr(os, "copy_file_range", one_megabyte_then_nothing)
    assert copy_file(source, target) == target
    assert target.read_bytes() == data
    assert target.stat().st_mode & 0o777 == 0o600
    assert source.read_bytes() == data
    assert not list(tmp_path.glob(".*.tmp"))


def test_copy_file_refuses_its_own_source_and_non_regular_targets(tmp_path):
    source = tmp_path / "source.bin"
    source.write_bytes(b"abc")
    (tmp_path / "link.bin").symlink_to(source)
    with pytest.raises(OutputPathError, match="same file as the input"):
        copy_file(source, tmp_path / "link.bin")
    os.mkfifo(tmp_path / "fifo")
    with pytest.raises(OutputPathError, match="FIFO"):
        copy_file(source, tmp_path / "fifo")
    assert source.read_bytes() == b"abc"
    assert not list(tmp_path.glob(".*.tmp"))


def test_build_through_cache_builds_once_then_serves_the_entry(tmp_path):
    cache, built = EngineCache(tmp_path / "cache"), []

    def build_engine() -> Engine:
        built.append(1)
        return Engine(b"plan" * 1000, {"name": "probe"})

    first = build_through_cache(cache, {"probe": 1}, build_engine)
    second = build_through_cache(cache, {"probe": 1}, build_engine)
    assert (first.source, second.source, len(built)) == ("build", "cache", 1)
    assert second.metadata["plan_bytes"] == first.metadata["plan_bytes"] == 4000
    assert second.engine.plan == b"plan" * 1000  # loaded from the entry when asked for
    second.save(tmp_path / "out.engine")
    assert (tmp_path / "out.engine").read_bytes() == first.entry.read_bytes()


def test_a_cache_directory_that_cannot_be_written_still_serves_hits(tmp_path, monkeypatch):
    import netdef.cache

    cache = EngineCache(tmp_path / "cache")
    key = cache_key({"probe": 2})
    cache.put(key, Engine(b"plan", {"name": "probe"}))
    (tmp_path / "cache" / "verified.json").unlink()

    def read_only(path, text, inputs=()):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(netdef.cache, "write_text", read_only)  # as a read-only (shared) cache behaves
    assert cache.lookup(key) == cache.path(key)  # verified by its hashes, though the memo cannot be written
    assert cache.fingerprint(cache.path(key))["size"] == cache.path(key).stat().st_size
    assert not (tmp_path / "cache" / "verified.json").exists()


def test_prune_keeps_the_most_recently_used_within_the_size(tmp_path):
    cache = EngineCache(tmp_path / "cache")
    for i in range(3):
        path = cache.put(cache_key({"i": i}), Engine(b"x" * 1000, {"name": f"n{i}"}))
        os.utime(path, (1_000_000 + i, 1_000_000 + i))
    removed = cache.prune(2500)
    assert [e.metadata["name"] for e in removed] == ["n0"]
    assert sorted(e.metadata["name"] for e in cache.entries()) == ["n1", "n2"]


def test_cache_list_and_prune_commands(monkeypatch, capsys, tmp_path):
    cache = tmp_path / "cache"
    assert build(monkeypatch, capsys, cache, tmp_path / "a.engine")[0] == 0
    code, out, err = netdef(monkeypatch, capsys, "cache", "list", "--dir", cache)
    assert code == 0, err
    assert "lenet" in out and "1 engine(s)" in out
    code, out, err = netdef(monkeypatch, capsys, "cache", "prune", "--max-size", "0", "--dir", cache)
    assert code == 0, err
    assert "removed 1 engine(s)" in out
    assert EngineCache(cache).entries() == []


def test_cache_commands_without_a_directory_say_how_to_name_one(monkeypatch, capsys):
    monkeypatch.delenv("NETDEF_CACHE", raising=False)
    code, _, err = netdef(monkeypatch, capsys, "cache", "list")
    assert code == 1
    assert "NETDEF_CACHE" in err


@pytest.mark.gpu
@pytest.mark.skipif(not CAPS.can_run, reason=f"refitting a cached engine needs a supported GPU: {CAPS.reason}")
def test_new_weights_refit_a_cached_refittable_engine_instead_of_rebuilding(monkeypatch, capsys, tmp_path):
    from netdef.runtime.runner import run_engine_file
    from netdef.weights import Checkpoint

    cache = tmp_path / "cache"
    assert build(monkeypatch, capsys, cache, tmp_path / "a.engine", "--refit")[0] == 0
    tensors = {k: np.array(v) for k, v in Checkpoint.load(LENET).items()}
    tensors["fc2.bias"] = tensors["fc2.bias"] + 1
    changed = tmp_path / "changed.safetensors"
    write_safetensors(tensors, changed)
    code, out, err = netdef(
        monkeypatch,
        capsys,
        "build",
        "lenet",
        "-w",
        changed,
        "-o",
        tmp_path / "b.engine",
        "-q",
        "--refit",
        "--cache",
        cache,
    )
    assert code == 0, err
    assert "refit from a cached engine" in out
    rebuilt = tmp_path / "c.engine"
    assert netdef(monkeypatch, capsys, "build", "lenet", "-w", changed, "-o", rebuilt, "-q", "--refit")[0] == 0
    x = np.random.default_rng(0).random((1, 1, 28, 28), dtype=np.float32)
    refit_out = run_engine_file(tmp_path / "b.engine", {"input": x})["prob"]
    built_out = run_engine_file(rebuilt, {"input": x})["prob"]
    np.testing.assert_allclose(refit_out, built_out, rtol=1e-5, atol=1e-6)

"""Checkpoint readers: .safetensors (zero-copy), .pth/.pt (safe unpickling), .npz, and their errors."""

from __future__ import annotations

import json
import mmap
import pathlib
import struct
import tempfile

import ml_dtypes
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netdef.dtypes import bfloat16
from netdef.errors import CheckpointError
from netdef.weights import Checkpoint, supported_suffixes
from netdef.weights.safetensors_io import write_safetensors

safetensors_numpy = pytest.importorskip("safetensors.numpy")
safetensors_torch = pytest.importorskip("safetensors.torch")

DTYPES = [np.float32, np.float16, bfloat16, np.float64, np.int8, np.int32, np.int64, np.uint8, np.bool_,
          ml_dtypes.float8_e4m3fn, ml_dtypes.float8_e5m2]  # fmt: skip
NUMPY_NATIVE = {np.dtype(d) for d in (np.float32, np.float16, np.float64, np.int8, np.int32, np.int64, np.uint8)}
TORCH_DTYPES = {np.dtype(np.float32): torch.float32, np.dtype(np.float16): torch.float16, bfloat16: torch.bfloat16,
                np.dtype(np.float64): torch.float64, np.dtype(np.int8): torch.int8, np.dtype(np.int32): torch.int32,
                np.dtype(np.int64): torch.int64, np.dtype(np.uint8): torch.uint8, np.dtype(np.bool_): torch.bool,
                np.dtype(ml_dtypes.float8_e4m3fn): torch.float8_e4m3fn,
                np.dtype(ml_dtypes.float8_e5m2): torch.float8_e5m2}  # fmt: skip


def random_array(rng: np.random.Generator, shape, dtype) -> np.ndarray:
    """Random bits of ``dtype`` (NaN and Inf payloads included); bool as 0/1 bytes."""
    dtype = np.dtype(dtype)
    count = int(np.prod(shape, dtype=np.int64))
    if dtype == np.bool_:
        return rng.integers(0, 2, count).astype(np.bool_).reshape(shape)
    return np.frombuffer(rng.bytes(count * dtype.itemsize), dtype=dtype).reshape(shape).copy()


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def mmap_behind(array: np.ndarray) -> mmap.mmap | None:
    """The mmap at the end of ``array``'s base chain, if any."""
    base = array
    while isinstance(base, np.ndarray):
        base = base.base
    if isinstance(base, memoryview):  # np.frombuffer's base
        base = base.obj
    return base if isinstance(base, mmap.mmap) else None


# --------------------------------------------------------------------------- safetensors


def test_safetensors_is_zero_copy_and_read_only(tmp_path, rng):
    tensors = {"conv.weight": random_array(rng, (4, 3, 3, 3), np.float32), "conv.bias": np.arange(4.0, dtype="f4")}
    path = tmp_path / "model.safetensors"
    write_safetensors(tensors, path)
    ckpt = Checkpoint.load(path)
    assert ckpt.path == path and ckpt.source == str(path)
    maps = set()
    for name, array in ckpt.items():
        assert same_bits(array, tensors[name])
        assert not array.flags.writeable and not array.flags.owndata
        assert mmap_behind(array) is not None, f"{name} is not a view of the mapped file"
        maps.add(id(mmap_behind(array)))
        with pytest.raises(ValueError):
            array[...] = 0
    assert len(maps) == 1, "every tensor views the same mapping of the file"


def test_safetensors_from_the_safetensors_library_bf16_fp16_bit_exact(tmp_path):
    generator = torch.Generator().manual_seed(0)
    tensors = {
        "w_bf16": torch.randn(3, 5, generator=generator).to(torch.bfloat16),
        "w_fp16": torch.randn(7, generator=generator).to(torch.float16),
        "w_fp32": torch.randn(2, 2, 2, generator=generator),
    }
    path = tmp_path / "lib.safetensors"
    safetensors_torch.save_file(tensors, str(path), metadata={"format": "pt"})
    ckpt = Checkpoint.load(path)
    assert ckpt["w_bf16"].dtype == bfloat16
    assert np.array_equal(ckpt["w_bf16"].view(np.int16), tensors["w_bf16"].view(torch.int16).numpy())
    assert same_bits(ckpt["w_fp16"], tensors["w_fp16"].numpy())
    assert same_bits(ckpt["w_fp32"], tensors["w_fp32"].numpy())


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    shapes=st.lists(st.lists(st.integers(0, 4), min_size=0, max_size=4), min_size=1, max_size=4),
    dtype_index=st.lists(st.integers(0, len(DTYPES) - 1), min_size=4, max_size=4),
    seed=st.integers(0, 2**32 - 1),
)
def test_safetensors_round_trip_random_shapes_and_dtypes(shapes, dtype_index, seed):
    rng = np.random.default_rng(seed)
    tensors = {f"t{i}.weight": random_array(rng, tuple(s), DTYPES[dtype_index[i]]) for i, s in enumerate(shapes)}
    with tempfile.TemporaryDirectory() as tmp:
        path = pathlib.Path(tmp) / "random.safetensors"
        write_safetensors(tensors, path, metadata={"seed": seed})
        ckpt = Checkpoint.load(path)
        assert list(ckpt) == list(tensors)
        for name, array in tensors.items():
            assert same_bits(ckpt[name], array), name
        # the safetensors library reads what netdef writes, bit for bit
        for name, tensor in safetensors_torch.load_file(str(path)).items():
            array = tensors[name]
            assert tensor.dtype == TORCH_DTYPES[array.dtype] and tuple(tensor.shape) == array.shape, name
            assert tensor.reshape(-1).view(torch.uint8).numpy().tobytes() == array.tobytes(), name
        if all(v.dtype in NUMPY_NATIVE for v in tensors.values()):
            for name, loaded in safetensors_numpy.load_file(str(path)).items():
                assert same_bits(loaded, tensors[name]), name
        with safetensors_torch.safe_open(str(path), "pt") as f:
            assert f.metadata() == {"seed": str(seed)}


def test_safetensors_scalar_and_empty_tensors(tmp_path):
    tensors = {"scalar": np.array(2.5, np.float32), "empty": np.zeros((0, 3), np.float16)}
    path = tmp_path / "edge.safetensors"
    write_safetensors(tensors, path)
    ckpt = Checkpoint.load(path)
    assert ckpt["scalar"].shape == () and ckpt["scalar"] == 2.5
    assert ckpt["empty"].shape == (0, 3) and ckpt["empty"].dtype == np.float16
    assert safetensors_numpy.load_file(str(path))["scalar"].shape == ()


def _raw_safetensors(path: pathlib.Path, header: bytes, data: bytes = b"") -> pathlib.Path:
    path.write_bytes(struct.pack("<Q", len(header)) + header + data)
    return path


def _entry(**fields) -> bytes:
    return json.dumps({"t": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8], **fields}}).encode()


@pytest.mark.parametrize(
    ("header", "data", "message"),
    [
        (b"[1, 2]", b"", "a JSON list, not an object"),
        (b"{not json", b"", "corrupt safetensors header"),
        (b"\xff\xfe{}", b"", "corrupt safetensors header"),
        (_entry(data_offsets=[0, 12]), b"\0" * 8, "needs 8 bytes, the header gives 12"),
        (_entry(data_offsets=[4, 12]), b"\0" * 8, "the file has 8 data bytes"),
        (_entry(data_offsets=[-4, 4]), b"\0" * 8, "data_offsets [-4, 4]"),
        (_entry(data_offsets=[8, 0]), b"\0" * 8, "begin <= end"),
        (_entry(shape=[-2]), b"\0" * 8, "shape [-2]"),
        (_entry(shape="2"), b"\0" * 8, "shape '2'"),
        (_entry(dtype="C64"), b"\0" * 8, "unsupported safetensors dtype 'C64'"),
        (json.dumps({"t": "x"}).encode(), b"", "lacks dtype, shape or data_offsets"),
        (json.dumps({"t": {"dtype": "F32", "shape": [2]}}).encode(), b"\0" * 8, "lacks dtype"),
    ],
)
def test_corrupt_safetensors_headers(tmp_path, header, data, message):
    path = _raw_safetensors(tmp_path / "bad.safetensors", header, data)
    with pytest.raises(CheckpointError) as info:
        Checkpoint.load(path)
    assert str(path) in str(info.value) and message in str(info.value)


def test_corrupt_safetensors_lists_every_bad_tensor(tmp_path):
    header = json.dumps({
        "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
        "b": {"dtype": "F32", "shape": [3], "data_offsets": [8, 16]},
        "c": {"dtype": "X9", "shape": [1], "data_offsets": [16, 20]},
    }).encode()  # fmt: skip
    path = _raw_safetensors(tmp_path / "bad.safetensors", header, b"\0" * 20)
    with pytest.raises(CheckpointError) as info:
        Checkpoint.load(path)
    message = str(info.value)
    assert "tensor 'b'" in message and "tensor 'c'" in message and "tensor 'a'" not in message


@pytest.mark.parametrize(("content", "message"), [(b"", "too short"), (b"1234567", "too short"),
                                                  (b"\xff" * 64, "corrupt safetensors header length")])  # fmt: skip
def test_truncated_or_garbage_safetensors(tmp_path, content, message):
    path = tmp_path / "garbage.safetensors"
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match=message):
        Checkpoint.load(path)


def test_truncated_safetensors_data(tmp_path, rng):
    path = tmp_path / "cut.safetensors"
    write_safetensors({"w": random_array(rng, (16, 16), np.float32)}, path)
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(CheckpointError, match=r"tensor 'w' of shape \(16, 16\) F32 needs 1024 bytes"):
        Checkpoint.load(path)


# --------------------------------------------------------------------------- PyTorch


def _state_dict(generator_seed: int = 0) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(generator_seed)
    return {
        "conv1.weight": torch.randn(4, 1, 3, 3, generator=generator),
        "conv1.bias": torch.randn(4, generator=generator),
        "bn1.num_batches_tracked": torch.tensor(7),
        "fc.weight": torch.randn(3, 5, generator=generator).t(),  # not contiguous
    }


def _assert_matches(ckpt: Checkpoint, state: dict[str, torch.Tensor]) -> None:
    assert set(ckpt) == set(state)
    for name, tensor in state.items():
        array = ckpt[name]
        assert array.shape == tuple(tensor.shape) and not array.flags.writeable
        if tensor.dtype == torch.bfloat16:
            assert array.dtype == bfloat16
            assert np.array_equal(array.view(np.int16), tensor.contiguous().view(torch.int16).numpy())
        else:
            assert same_bits(array, tensor.contiguous().numpy()), name


@pytest.mark.parametrize(
    ("suffix", "wrap"),
    [
        (".pth", lambda sd: sd),
        (".pt", lambda sd: {"state_dict": sd, "epoch": 12, "best_acc": 0.91}),
        (".pth", lambda sd: {"model": sd, "optimizer": {"state": {}, "param_groups": [{"lr": 0.1, "params": [0]}]}}),
        (".bin", lambda sd: {"model_state_dict": sd, "step": torch.tensor(3)}),
    ],
    ids=["plain", "state_dict", "model+optimizer", "model_state_dict"],
)
def test_pytorch_checkpoints_plain_and_nested(tmp_path, suffix, wrap):
    state = _state_dict()
    path = tmp_path / f"ckpt{suffix}"
    torch.save(wrap(state), path)
    _assert_matches(Checkpoint.load(path), state)


def test_pytorch_bf16_fp16_and_float8_bit_exact(tmp_path):
    generator = torch.Generator().manual_seed(1)
    state = {
        "a": torch.randn(6, 7, generator=generator).to(torch.bfloat16),
        "b": torch.randn(9, generator=generator).to(torch.float16),
    }
    fp8 = torch.randn(5, generator=generator).to(torch.float8_e4m3fn)
    path = tmp_path / "low.pth"
    torch.save({**state, "c": fp8}, path)
    ckpt = Checkpoint.load(path)
    _assert_matches(Checkpoint({k: ckpt[k] for k in state}), state)
    assert ckpt["c"].dtype == np.dtype(ml_dtypes.float8_e4m3fn)
    assert np.array_equal(ckpt["c"].view(np.uint8), fp8.view(torch.uint8).numpy())


def test_pytorch_legacy_format(tmp_path):
    state = _state_dict(2)
    path = tmp_path / "legacy.pth"
    torch.save(state, path, _use_new_zipfile_serialization=False)
    _assert_matches(Checkpoint.load(path), state)


class CustomHolder:  # pickled by reference: loading it needs this module's code
    def __init__(self):
        self.weight = torch.ones(2)


class Touch:
    """Unpickling this would create a file: proof that code ran."""

    def __init__(self, marker: pathlib.Path):
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (self.marker,))


def test_pytorch_file_needing_arbitrary_code_is_refused(tmp_path):
    path = tmp_path / "pickled_class.pth"
    torch.save({"model": CustomHolder(), "conv.weight": torch.ones(1)}, path)
    with pytest.raises(CheckpointError) as info:
        Checkpoint.load(path)
    message = str(info.value)
    assert message.startswith(f"{path}: refused")
    assert "CustomHolder" in message and "state_dict" in message
    assert "\x1b[" not in message, "no terminal escape codes in the message"


def test_pytorch_file_running_code_is_refused_and_not_run(tmp_path):
    marker = tmp_path / "code_ran"
    path = tmp_path / "evil.pth"
    torch.save({"w": torch.ones(1), "x": Touch(marker)}, path)
    with pytest.raises(CheckpointError, match="refused"):
        Checkpoint.load(path)
    assert not marker.exists()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"junk" * 20, "not a readable PyTorch checkpoint"),
        (bytes(range(256)), "not a readable PyTorch checkpoint"),
        (b"PK\x03\x04" + b"\0" * 60, "not a readable PyTorch checkpoint (zip archive)"),
    ],
    ids=["text", "bytes", "broken-zip"],
)
def test_damaged_pytorch_files(tmp_path, content, message):
    path = tmp_path / "damaged.pth"
    path.write_bytes(content)
    with pytest.raises(CheckpointError) as info:
        Checkpoint.load(path)
    assert str(info.value).startswith(str(path)) and message in str(info.value)
    assert "refused" not in str(info.value), "a damaged file is not a security refusal"


def test_truncated_pytorch_file(tmp_path):
    path = tmp_path / "cut.pt"
    torch.save(_state_dict(), path)
    path.write_bytes(path.read_bytes()[:-200])
    with pytest.raises(CheckpointError, match="not a readable PyTorch checkpoint"):
        Checkpoint.load(path)


@pytest.mark.parametrize(("obj", "what"), [([torch.ones(1)], "list"), ({"epoch": 3, "lr": 0.1}, "dict")])
def test_pytorch_file_without_tensors(tmp_path, obj, what):
    path = tmp_path / "no_tensors.pt"
    torch.save(obj, path)
    with pytest.raises(CheckpointError, match=f"no tensors found \\(top-level type {what}\\)"):
        Checkpoint.load(path)


# --------------------------------------------------------------------------- npz


def test_npz(tmp_path, rng):
    arrays = {"a.weight": random_array(rng, (3, 4), np.float32), "a.bias": np.arange(3, dtype=np.float64)}
    path = tmp_path / "weights.npz"
    np.savez(path, **arrays)
    ckpt = Checkpoint.load(path)
    assert set(ckpt) == set(arrays)
    for name, array in arrays.items():
        assert same_bits(ckpt[name], array) and not ckpt[name].flags.writeable


def test_npz_with_objects_is_refused(tmp_path):
    path = tmp_path / "objects.npz"
    np.savez(path, w=np.array([{"a": 1}], dtype=object))
    with pytest.raises(CheckpointError, match="without pickle"):
        Checkpoint.load(path)


# --------------------------------------------------------------------------- files, suffixes, lookups


def test_unknown_suffix(tmp_path):
    path = tmp_path / "weights.onnx"
    path.write_bytes(b"\0" * 16)
    with pytest.raises(CheckpointError) as info:
        Checkpoint.load(path)
    message = str(info.value)
    assert str(path) in message and "'.onnx'" in message
    for suffix in (".safetensors", ".pth", ".pt", ".npz"):
        assert suffix in message and suffix in supported_suffixes()


def test_missing_file(tmp_path):
    path = tmp_path / "nowhere" / "model.safetensors"
    with pytest.raises(CheckpointError) as info:
        Checkpoint.load(path)
    assert str(info.value) == f"{path}: no such checkpoint file"  # str(), not KeyError's repr()
    assert isinstance(info.value, KeyError)


def test_require_lists_every_missing_name_with_closest_matches():
    ckpt = Checkpoint({n: np.zeros(1, np.float32) for n in ("layer1.0.conv1.weight", "layer1.0.bn1.weight", "fc.bias")})
    assert set(ckpt.require(["fc.bias", "layer1.0.bn1.weight"])) == {"fc.bias", "layer1.0.bn1.weight"}
    with pytest.raises(CheckpointError) as info:
        ckpt.require(["fc.bias", "layer1.0.conv1.weigth", "layer1.0.bn1.wieght", "totally.unrelated"])
    lines = str(info.value).splitlines()
    assert lines[0] == "<in-memory checkpoint>: missing 3 weight(s):"
    assert "  - layer1.0.conv1.weigth (closest: layer1.0.conv1.weight" in lines[1]
    assert "  - layer1.0.bn1.wieght (closest: layer1.0.bn1.weight" in lines[2]
    assert lines[3] == "  - totally.unrelated"


def test_getitem_of_a_missing_name_suggests_names():
    ckpt = Checkpoint({"conv1.weight": np.zeros(1, np.float32)})
    with pytest.raises(CheckpointError, match=r"conv1\.wieght \(closest: conv1\.weight\)"):
        ckpt["conv1.wieght"]


def test_in_memory_checkpoint_is_a_read_only_view():
    source = np.arange(6, dtype=np.float32).reshape(2, 3)
    ckpt = Checkpoint({"w": source, "b": np.ones(3, np.float16)})
    assert np.shares_memory(ckpt["w"], source) and not ckpt["w"].flags.writeable
    assert source.flags.writeable, "the caller's array stays writable"
    assert len(ckpt) == 2 and ckpt.num_parameters == 9 and ckpt.nbytes == 6 * 4 + 3 * 2
    assert "2 tensors, 9 parameters" in repr(ckpt)
    with pytest.raises(TypeError):
        ckpt["w"] = source  # a Mapping, not a MutableMapping


def _resident_kib() -> int:
    for line in pathlib.Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS in /proc/self/status")


@pytest.mark.skipif(not pathlib.Path("/proc/self/status").exists(), reason="needs Linux's /proc to read RSS")
def test_release_pages_gives_back_the_mapped_file_and_keeps_the_arrays_valid(tmp_path):
    arrays = {"a": np.arange(8 << 20, dtype=np.float32), "b": np.ones((3, 4), np.float32)}  # 32 MB + a little
    path = tmp_path / "big.safetensors"
    write_safetensors(arrays, path)
    checkpoint = Checkpoint.load(path)
    assert float(checkpoint["a"].sum(dtype=np.float64)) == float(arrays["a"].sum(dtype=np.float64))  # all resident
    before = _resident_kib()
    assert checkpoint.release_pages() == path.stat().st_size
    assert before - _resident_kib() > 24 << 10  # most of the 32 MB left this process
    np.testing.assert_array_equal(checkpoint["a"], arrays["a"])  # read again from the page cache
    np.testing.assert_array_equal(checkpoint["b"], arrays["b"])
    assert Checkpoint(arrays).release_pages() == 0  # nothing mapped, nothing to give back


def test_the_suffix_table_names_the_module_whose_reader_registers_each_suffix():
    from netdef.weights.formats import _READERS, BUILTIN_MODULES

    assert set(BUILTIN_MODULES) <= set(supported_suffixes())
    wrong = {
        s: _READERS[s].__module__ for s, m in BUILTIN_MODULES.items() if _READERS[s].__module__ != f"netdef.weights.{m}"
    }
    assert wrong == {}

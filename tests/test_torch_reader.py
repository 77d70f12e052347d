""".pth files read without torch: bit-identical to torch.load, zero-copy, never importing torch,
refusing unsafe pickles without running or importing anything, falling back to torch.load otherwise."""

from __future__ import annotations

import collections
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from netdef.errors import CheckpointError  # noqa: E402
from netdef.weights import Checkpoint, torch_io  # noqa: E402
from netdef.weights.torch_io import UnsafeGlobalError, read_torch_zip  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DTYPES = [
    torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.float8_e4m3fn, torch.float8_e5m2,
    torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8, torch.bool, torch.complex64,
]  # fmt: skip


def _random(shape, dtype, seed=0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    if dtype == torch.bool:
        return torch.randint(0, 2, shape, generator=generator).bool()
    if dtype.is_floating_point or dtype.is_complex:
        return (torch.randn(shape, generator=generator, dtype=torch.float64) * 3).to(dtype)
    info = torch.iinfo(dtype)
    return torch.randint(max(info.min, -(2**31)), min(info.max, 2**31 - 1), shape, generator=generator).to(dtype)


def _bytes(tensor: torch.Tensor) -> bytes:
    return tensor.detach().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()


def _assert_identical(arrays, tensors) -> None:
    assert list(arrays) == list(tensors)
    for name, tensor in tensors.items():
        array = arrays[name]
        assert tuple(array.shape) == tuple(tensor.shape), name
        assert array.dtype.itemsize == tensor.element_size(), name
        assert array.tobytes() == _bytes(tensor), name


def _torch_free(path: Path) -> dict:
    """Read with the torch-free reader only (no fallback) and check torch.load agrees bit for bit."""
    obj = read_torch_zip(path)
    state = torch_io._find_state_dict(obj, lambda v: isinstance(v, np.ndarray))
    reference = torch.load(path, weights_only=True)
    reference = torch_io._find_state_dict(reference, lambda v: isinstance(v, torch.Tensor))
    _assert_identical(state, reference)
    return state


def test_every_dtype_bit_identical_to_torch_load(tmp_path):
    tensors = {f"t_{str(d).removeprefix('torch.')}": _random((3, 5), d, seed=i) for i, d in enumerate(DTYPES)}
    tensors["scalar"] = torch.tensor(7)
    tensors["empty"] = torch.zeros(0, 4)
    tensors["nan_payload"] = torch.tensor([1.0, float("nan"), float("-inf")])
    path = tmp_path / "dtypes.pth"
    torch.save(tensors, path)
    arrays = _torch_free(path)
    assert arrays["t_bfloat16"].dtype.name == "bfloat16" and arrays["t_float8_e4m3fn"].dtype.name == "float8_e4m3fn"
    assert arrays["t_float8_e5m2"].dtype.name == "float8_e5m2" and arrays["t_bool"].dtype == np.bool_
    _assert_identical(Checkpoint.load(path), tensors)


def test_views_offsets_strides_and_shared_storage(tmp_path):
    base = _random((6, 8), torch.float32)
    tensors = {
        "base": base,
        "rows": base[2:5],  # contiguous, offset into a shared storage
        "column": base[:, 3],  # strided
        "transposed": base.t(),
        "expanded": _random((3,), torch.float16).expand(4, 3),  # stride 0
        "bf16_slice": _random((10,), torch.bfloat16)[3:7],
        "permuted": _random((2, 3, 4), torch.float64).permute(2, 0, 1),
    }
    path = tmp_path / "views.pth"
    torch.save(tensors, path)
    arrays = _torch_free(path)
    assert np.shares_memory(arrays["base"], arrays["rows"]), "views of one storage share its bytes"
    for name in ("column", "transposed", "expanded", "permuted"):
        assert arrays[name].flags.c_contiguous, name


def _root_base(array: np.ndarray):
    """The object at the bottom of a chain of views (through memoryviews too)."""
    while True:
        if isinstance(array, np.ndarray) and array.base is not None:
            array = array.base
        elif isinstance(array, memoryview):
            array = array.obj
        else:
            return array


def test_contiguous_tensors_are_read_only_views_of_the_mapped_file(tmp_path):
    path = tmp_path / "zero_copy.pth"
    torch.save({"w": _random((64, 64), torch.float32)}, path)
    array = read_torch_zip(path)["w"]
    assert not array.flags.writeable and not array.flags.owndata
    assert type(_root_base(array)).__name__ == "mmap"
    assert array.ctypes.data % 4 == 0


@pytest.mark.parametrize(
    "wrap",
    [
        lambda sd: {"state_dict": sd},
        lambda sd: {
            "model": sd,
            "optimizer": {"state": {}, "param_groups": [{"lr": 0.1, "params": [0, 1]}]},
            "epoch": 3,
        },
        lambda sd: {"model_state_dict": sd, "step": torch.tensor(3), "tags": {"a", "b"}, "raw": b"\x00\xff"},
    ],
    ids=["state_dict", "model+optimizer", "model_state_dict+extras"],
)
def test_nested_checkpoints(tmp_path, wrap):
    state = collections.OrderedDict(conv=_random((4, 3), torch.float32), bias=_random((4,), torch.float16))
    path = tmp_path / "nested.pth"
    torch.save(wrap(state), path)
    _assert_identical(_torch_free(path), state)
    _assert_identical(Checkpoint.load(path), state)


def test_module_state_dicts_and_parameters(tmp_path):
    module = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4), torch.nn.Linear(5, 2))
    for i, variant in enumerate([module.state_dict(), module.state_dict(keep_vars=True)]):
        path = tmp_path / f"module{i}.pth"
        torch.save(variant, path)
        arrays = _torch_free(path)
        assert "1.num_batches_tracked" in arrays and arrays["1.num_batches_tracked"].dtype == np.int64
    parameter = torch.nn.Parameter(_random((2, 3), torch.float32))
    path = tmp_path / "parameter.pth"
    torch.save({"p": parameter, "frozen": torch.nn.Parameter(_random((2,), torch.bfloat16), requires_grad=False)}, path)
    arrays = _torch_free(path)
    assert arrays["p"].tobytes() == _bytes(parameter)


def test_reading_does_not_import_torch(tmp_path):
    state = {"conv.weight": _random((8, 3, 3, 3), torch.float32), "fc.weight": _random((4, 6), torch.bfloat16).t()}
    path = tmp_path / "no_torch.pth"
    torch.save({"model": state, "epoch": 2}, path)
    script = (
        "import json, sys, hashlib\n"
        "from netdef.weights import Checkpoint\n"
        f"ckpt = Checkpoint.load({str(path)!r})\n"
        "print(json.dumps({'torch': 'torch' in sys.modules, 'tensors': {n: [list(a.shape), a.dtype.name, "
        "hashlib.sha256(a.tobytes()).hexdigest()] for n, a in ckpt.items()}}))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["torch"] is False, "reading a plain .pth imported torch"
    import hashlib

    expected = {n: [list(t.shape), str(t.dtype).removeprefix("torch."), hashlib.sha256(_bytes(t)).hexdigest()]
                for n, t in state.items()}  # fmt: skip
    assert result["tensors"] == expected


def _evil_pth(path: Path, module: str, name: str, argument: str) -> None:
    """A torch-style zip whose data.pkl calls ``module.name(argument)`` when unpickled."""
    payload = f"c{module}\n{name}\n(V{argument}\ntR.".encode()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("evil/data.pkl", payload)
        archive.writestr("evil/byteorder", "little")
        archive.writestr("evil/version", "3\n")


def test_os_system_global_is_refused_and_not_run(tmp_path):
    marker = tmp_path / "code_ran"
    path = tmp_path / "evil.pth"
    _evil_pth(path, "os", "system", f"touch {marker}")
    with pytest.raises(UnsafeGlobalError, match="GLOBAL os.system"):
        read_torch_zip(path)
    with pytest.raises(CheckpointError, match="refused") as info:
        Checkpoint.load(path)
    assert str(info.value).startswith(f"{path}: refused") and "os.system" in str(info.value)
    assert not marker.exists()


def test_unknown_global_module_is_never_imported(tmp_path):
    marker = tmp_path / "imported"
    (tmp_path / "netdef_evil_module.py").write_text(f"open({str(marker)!r}, 'w').close()\ndef run(x): pass\n")
    path = tmp_path / "evil.pth"
    _evil_pth(path, "netdef_evil_module", "run", "x")
    sys.path.insert(0, str(tmp_path))
    try:
        with pytest.raises(CheckpointError, match="refused"):
            Checkpoint.load(path)
    finally:
        sys.path.remove(str(tmp_path))
    assert "netdef_evil_module" not in sys.modules and not marker.exists()


def test_refusal_without_torch_installed(tmp_path):
    marker = tmp_path / "code_ran"
    path = tmp_path / "evil.pth"
    _evil_pth(path, "os", "system", f"touch {marker}")
    script = (
        "import sys\nsys.modules['torch'] = None  # as if torch were not installed\n"
        "from netdef.weights import Checkpoint\nfrom netdef.errors import CheckpointError\n"
        f"try:\n    Checkpoint.load({str(path)!r})\nexcept CheckpointError as e:\n    print(e)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"{path}: refused") and "GLOBAL os.system" in done.stdout
    assert not marker.exists()


def test_big_endian_and_legacy_files_go_to_torch_load(tmp_path):
    state = {"w": _random((3, 4), torch.float32)}
    legacy = tmp_path / "legacy.pth"
    torch.save(state, legacy, _use_new_zipfile_serialization=False)
    with pytest.raises(Exception, match="legacy"):
        read_torch_zip(legacy)
    _assert_identical(Checkpoint.load(legacy), state)

    source, swapped = tmp_path / "little.pth", tmp_path / "big.pth"
    torch.save(state, source)
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(swapped, "w", zipfile.ZIP_STORED) as new:
        for info in old.infolist():
            data = old.read(info)
            if info.filename.endswith("/byteorder"):
                data = b"big"
            elif "/data/" in info.filename and not info.filename.endswith("serialization_id"):
                data = np.frombuffer(data, "<f4").astype(">f4").tobytes()
            new.writestr(info.filename, data)
    with pytest.raises(Exception, match="byte order"):
        read_torch_zip(swapped)
    _assert_identical(Checkpoint.load(swapped), state)


def test_compressed_entries_are_decompressed(tmp_path):
    state = {"w": _random((16, 16), torch.float16), "b": _random((16,), torch.int32)}
    source, deflated = tmp_path / "stored.pth", tmp_path / "deflated.pth"
    torch.save(state, source)
    with zipfile.ZipFile(source) as old, zipfile.ZipFile(deflated, "w", zipfile.ZIP_DEFLATED) as new:
        for info in old.infolist():
            new.writestr(info.filename, old.read(info))
    _assert_identical(read_torch_zip(deflated), state)


@pytest.mark.filterwarnings("ignore::UserWarning")  # torch: quantized tensors and TypedStorage are deprecated
def test_tensor_types_outside_the_allow_list_go_to_torch_load(tmp_path):
    quantized = torch.quantize_per_tensor(torch.ones(3), scale=0.5, zero_point=0, dtype=torch.qint8)
    path = tmp_path / "quantized.pth"
    torch.save({"q": quantized, "w": torch.ones(2)}, path)
    with pytest.raises(UnsafeGlobalError, match="_rebuild_qtensor"):
        read_torch_zip(path)
    with pytest.raises(CheckpointError, match="1 tensor\\(s\\) cannot be read") as info:
        Checkpoint.load(path)  # torch.load reads it; its dtype is what netdef cannot use
    assert "q: dtype torch.qint8" in str(info.value)

"""Engine files: LeNet built on the CPU in every precision, saved, loaded, and refused when damaged."""

from __future__ import annotations

import hashlib
import json
import os
import struct

import pytest

import architectures
from netdef import backend
from netdef.build import BuildConfig, build
from netdef.engine import _HEADER, FORMAT_VERSION, MAGIC, Engine
from netdef.errors import EngineFileError, NetworkDefinitionError
from netdef.weights import Checkpoint

# The shapes TensorRT is handed: linear's bias is a (1, N) constant broadcast over the batch.
LENET_WEIGHTS = {
    "conv1.weight": [20, 1, 5, 5], "conv1.bias": [20], "conv2.weight": [50, 20, 5, 5], "conv2.bias": [50],
    "fc1.weight": [500, 800], "fc1.bias": [1, 500], "fc2.weight": [10, 500], "fc2.bias": [1, 10],
}  # fmt: skip
NUMPY_NAMES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}
CASES = [(p, b) for p in ("fp32", "fp16", "bf16") for b in ("static", "dynamic")]


@pytest.fixture(scope="module")
def lenet_checkpoint(lenet_weights):
    return Checkpoint.load(lenet_weights)


@pytest.fixture(scope="module")
def engines(lenet_checkpoint):
    """LeNet built once per (precision, batch) for the whole module."""
    caps = backend.capabilities()
    if not caps.can_build:
        pytest.skip(f"engines cannot be built here: {caps.reason}")
    lenet = architectures.get("lenet")
    built = {}
    for precision, batch in CASES:
        net = lenet.build_network(lenet_checkpoint, precision=precision, batch=4 if batch == "static" else -1)
        config = BuildConfig(batch=(1, 8, 64) if batch == "dynamic" else None)
        definition = {"architecture": "lenet", "options": {}, "checkpoint": "weights/lenet_digits.safetensors"}
        built[precision, batch] = build(net, config, definition=definition)
    return built


@pytest.fixture(scope="module")
def engine(engines) -> Engine:
    return engines["fp16", "dynamic"]


# --------------------------------------------------------------------------- building


@pytest.mark.parametrize(("precision", "batch"), CASES)
def test_lenet_builds_on_the_cpu(engines, precision, batch):
    engine = engines[precision, batch]
    meta = engine.metadata
    assert isinstance(engine.plan, bytes | memoryview) and len(engine.plan) > 100_000  # the weights are in the plan
    assert engine.precision == meta["precision"] == precision and meta["io_dtype"] == "fp32"
    assert engine.backend == (backend.BACKEND, backend.VERSION)
    first = -1 if batch == "dynamic" else 4
    assert engine.inputs == [{"name": "input", "mode": "input", "shape": [first, 1, 28, 28], "dtype": "float32"}]
    assert engine.outputs == [{"name": "prob", "mode": "output", "shape": [first, 10], "dtype": "float32"}]
    assert meta["profile"] == ({"batch": [1, 8, 64]} if batch == "dynamic" else {})
    assert meta["weights"] == {name: {"shape": s, "dtype": NUMPY_NAMES[precision]} for name, s in LENET_WEIGHTS.items()}
    assert engine.weight_names == list(LENET_WEIGHTS)
    assert meta["derived_weights"] == {}
    assert not engine.refittable and not engine.stripped
    assert meta["definition"]["architecture"] == "lenet"
    caps = backend.capabilities()
    assert meta["built_on_gpu"] == (
        None if caps.gpu is None else {"name": caps.gpu.name, "compute_capability": list(caps.gpu.compute_capability)}
    )


def test_precisions_give_different_plans(engines):
    plans = {engines[p, "static"].plan for p in ("fp32", "fp16", "bf16")}
    assert len(plans) == 3
    assert len(engines["fp16", "static"].plan) < len(engines["fp32", "static"].plan)  # half the weight bytes


def test_dynamic_batch_needs_a_profile(lenet_checkpoint):
    net = architectures.get("lenet").build_network(lenet_checkpoint, batch=-1)
    with pytest.raises(NetworkDefinitionError, match=r"input 'input' has dynamic shape \(-1, 1, 28, 28\)"):
        build(net, BuildConfig())


def test_a_static_network_records_no_batch_range(lenet_checkpoint):
    net = architectures.get("lenet").build_network(lenet_checkpoint, batch=2)
    engine = build(net, BuildConfig(batch=(1, 8, 64)))
    assert engine.metadata["profile"] == {} and engine.inputs[0]["shape"][0] == 2


def test_shapes_for_an_input_that_does_not_exist(lenet_checkpoint):
    net = architectures.get("lenet").build_network(lenet_checkpoint, batch=-1)
    config = BuildConfig(batch=(1, 8, 64), shapes={"images": ((1, 1, 28, 28),) * 3})
    with pytest.raises(NetworkDefinitionError, match=r"BuildConfig.shapes names \['images'\], which are not inputs"):
        build(net, config)


@pytest.mark.parametrize("batch", [(0, 1, 2), (4, 2, 8), (1, 8, 4)])
def test_bad_batch_range(batch):
    with pytest.raises(ValueError, match="1 <= min <= opt <= max"):
        BuildConfig(batch=batch)


def test_plan_deserializes_on_a_supported_gpu(engine):
    caps = backend.capabilities()
    if not caps.can_run:
        pytest.skip(f"cannot deserialize an engine here: {caps.reason}")
    runtime = backend.create_runtime()
    cuda_engine = runtime.deserialize_cuda_engine(engine.plan)
    assert cuda_engine is not None
    names = [cuda_engine.get_tensor_name(i) for i in range(cuda_engine.num_io_tensors)]
    assert names == ["input", "prob"]


# --------------------------------------------------------------------------- round trip


def test_save_load_round_trip(engine, tmp_path):
    path = engine.save(tmp_path / "sub" / "lenet.engine")
    assert path.is_file() and path.parent.name == "sub"
    loaded = Engine.load(path)
    assert loaded.plan == engine.plan
    bookkeeping = {"plan_bytes": len(engine.plan), "plan_sha256": hashlib.sha256(engine.plan).hexdigest()}
    assert loaded.metadata == {**engine.metadata, **bookkeeping}
    assert loaded.outputs[0]["name"] == "prob" and loaded.metadata["profile"] == {"batch": [1, 8, 64]}
    assert sorted(loaded.weight_names) == sorted(LENET_WEIGHTS) and loaded.backend == engine.backend
    # loading is idempotent: saving what was loaded gives the same bytes
    assert loaded.to_bytes() == path.read_bytes() == Engine.from_bytes(loaded.to_bytes()).to_bytes()


def test_metadata_is_utf8_json(tmp_path):
    engine = Engine(b"\x00plan\xff", {"name": "réseau ✓", "nested": {"list": [1, 2.5, None]}})
    loaded = Engine.load(engine.save(tmp_path / "e.engine"))
    assert loaded.metadata["name"] == "réseau ✓" and loaded.metadata["nested"] == {"list": [1, 2.5, None]}


def test_layout_matches_the_documented_header(engine):
    data = engine.to_bytes()
    magic, version, meta_len, meta_hash = _HEADER.unpack_from(data)
    assert (magic, version, _HEADER.size) == (MAGIC, FORMAT_VERSION, 48)
    encoded = data[48 : 48 + meta_len]
    assert hashlib.sha256(encoded).digest() == meta_hash
    assert json.loads(encoded)["plan_bytes"] == len(engine.plan)
    assert data[48 + meta_len :] == engine.plan


# --------------------------------------------------------------------------- refusals


def _meta_len(data: bytes) -> int:
    return _HEADER.unpack_from(data)[2]


def _refusal(data: bytes) -> str:
    with pytest.raises(EngineFileError) as info:
        Engine.from_bytes(data, source="test.engine")
    message = str(info.value)
    assert message.startswith("test.engine: ")
    return message


def test_truncated_files(engine):
    data = engine.to_bytes()
    meta_end = 48 + _meta_len(data)
    cuts = [1, 7, 8, 20, 47, 48, 49, meta_end // 2, meta_end - 1, meta_end, meta_end + 1, len(data) // 2, len(data) - 1]
    expected = {
        "header": "truncated: {n} bytes, the header alone is 48",
        "metadata": "truncated (or a corrupted header): the metadata needs",
        "plan": "truncated or padded: plan has",
    }
    for n in cuts:
        message = _refusal(data[:n])
        part = "header" if n < 48 else "metadata" if n < meta_end else "plan"
        assert expected[part].format(n=n) in message, (n, message)


def test_padded_file(engine):
    assert "truncated or padded" in _refusal(engine.to_bytes() + b"\0")


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ("plan", "corrupted: the plan does not match its SHA-256"),
        ("plan_last", "corrupted: the plan does not match its SHA-256"),
        ("metadata", "corrupted: the metadata does not match its SHA-256"),
        ("header_hash", "corrupted: the metadata does not match its SHA-256"),
        ("header_length_low", "corrupted: the metadata does not match its SHA-256"),
        ("header_length_high", "truncated (or a corrupted header)"),
        ("magic", "not a netdef engine file"),
        ("version", "engine file format version"),
    ],
)
def test_one_flipped_byte_is_refused(engine, where, message):
    data = bytearray(engine.to_bytes())
    meta_end = 48 + _meta_len(bytes(data))
    offset = {
        "plan": (meta_end + len(data)) // 2,
        "plan_last": len(data) - 1,
        "metadata": 48 + 10,
        "header_hash": 16 + 5,
        "header_length_low": 12,
        "header_length_high": 14,
        "magic": 0,
        "version": 8,
    }[where]
    data[offset] ^= 0x01 if where != "header_length_high" else 0x40
    assert message in _refusal(bytes(data))


def test_foreign_files(engine, rng):
    assert "not a netdef engine file" in _refusal(rng.bytes(4096))
    message = _refusal(engine.plan)  # a bare TensorRT plan
    assert "not a netdef engine file" in message and "a bare TensorRT plan can be wrapped" in message
    assert "not a netdef engine file (31 bytes, no netdef header)" in _refusal(b"this is a text file, not a plan")
    assert "not a netdef engine file (0 bytes" in _refusal(b"")
    assert "not a netdef engine file" in _refusal(b"PK\x03\x04" + bytes(100))  # a zip


@pytest.mark.parametrize("version", [0, FORMAT_VERSION + 1, 255])
def test_other_format_versions(engine, version):
    data = bytearray(engine.to_bytes())
    struct.pack_into("<I", data, 8, version)
    message = _refusal(bytes(data))
    assert f"engine file format version {version}, this netdef reads version {FORMAT_VERSION}" in message


def test_missing_file(tmp_path):
    with pytest.raises(EngineFileError, match="no such engine file"):
        Engine.load(tmp_path / "absent.engine")


# --------------------------------------------------------------------------- atomic save


def _leftovers(directory) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def test_failed_save_leaves_no_partial_file(tmp_path):
    target = tmp_path / "model.engine"
    with pytest.raises(TypeError):
        Engine(b"plan", {"not_json": {1, 2}}).save(target)  # fails while writing
    assert _leftovers(tmp_path) == []


def test_failed_save_keeps_the_previous_file(tmp_path, monkeypatch):
    target = tmp_path / "model.engine"
    Engine(b"old plan", {"v": 1}).save(target)
    before = target.read_bytes()

    def interrupted(src, dst):
        raise KeyboardInterrupt  # e.g. Ctrl-C between writing and renaming

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        Engine(b"new plan", {"v": 2}).save(target)
    assert target.read_bytes() == before
    assert _leftovers(tmp_path) == ["model.engine"]


def test_saved_file_has_the_usual_permissions(tmp_path):
    mask = os.umask(0o022)
    try:
        path = Engine(b"plan", {}).save(tmp_path / "model.engine")
        probe = tmp_path / "probe"
        probe.write_bytes(b"")
    finally:
        os.umask(mask)
    assert (path.stat().st_mode & 0o777) == (probe.stat().st_mode & 0o777) == 0o644


def test_a_large_plan_is_written_as_the_same_bytes_while_hashed_in_a_second_thread(tmp_path, monkeypatch):
    import io

    plan = os.urandom((1 << 22) + 12345)  # above the size hashed in a second thread
    engine = Engine(plan, {"name": "big", "backend": "rtx", "backend_version": "1", "precision": "fp32"})
    expected = engine.head() + plan
    engine.save(tmp_path / "big.engine")
    assert (tmp_path / "big.engine").read_bytes() == expected
    assert Engine.load(tmp_path / "big.engine").plan == plan
    unseekable = io.BytesIO()
    monkeypatch.setattr(unseekable, "seekable", lambda: False)
    engine.write_to(unseekable)  # a pipe: the header first, then the plan
    assert unseekable.getvalue() == expected


def test_reading_the_metadata_alone_still_catches_a_truncated_or_padded_file(tmp_path):
    engine = Engine(b"plan" * 100, {"name": "small", "backend": "rtx", "backend_version": "1", "precision": "fp32"})
    path = engine.save(tmp_path / "e.engine")
    assert Engine.read_metadata(path)["plan_bytes"] == 400
    data = path.read_bytes()
    for changed, size in ((data[:-1], 399), (data + b"\0", 401)):
        path.write_bytes(changed)
        with pytest.raises(EngineFileError, match=f"truncated or padded: plan has {size} bytes, expected 400"):
            Engine.read_metadata(path)

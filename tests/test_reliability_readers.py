"""Readers raise only netdef errors naming the file (and the tensor where known), and allocate only
what the file justifies. Engine metadata is validated against its schema on load.
"""

from __future__ import annotations

import hashlib
import io
import json
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest

from netdef.errors import CheckpointError, EngineFileError
from netdef.weights import Checkpoint
from netdef.weights.convert import write_checkpoint
from tests.reliability_helpers import run_python


def _safetensors(path: Path, header: dict | bytes, data: bytes = b"") -> Path:
    encoded = header if isinstance(header, bytes) else json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(encoded)) + encoded + data)
    return path


# ------------------------------------------------------------------------------------------ .safetensors


def test_safetensors_deeply_nested_header(tmp_path):
    path = _safetensors(tmp_path / "deep.safetensors", b"[" * 100_000 + b"]" * 100_000)
    with pytest.raises(CheckpointError, match="deep.safetensors"):
        Checkpoint.load(path)


def test_safetensors_dimension_beyond_int64(tmp_path):
    header = {"w": {"dtype": "F32", "shape": [2**64, 1], "data_offsets": [0, 4]}}
    path = _safetensors(tmp_path / "big.safetensors", header, b"\0" * 4)
    with pytest.raises(CheckpointError, match=r"'w'"):
        Checkpoint.load(path)


def test_safetensors_wrapping_shape_product(tmp_path):
    header = {"w": {"dtype": "F32", "shape": [2**32, 2**32], "data_offsets": [0, 0]}}
    path = _safetensors(tmp_path / "wrap.safetensors", header)
    with pytest.raises(CheckpointError, match=r"'w'.*more elements than an array can hold"):
        Checkpoint.load(path)


# ------------------------------------------------------------------------------------------ .npz


def _npz_member(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def _npz(path: Path, members: dict[str, bytes], compress: int = zipfile.ZIP_STORED) -> Path:
    with zipfile.ZipFile(path, "w", compress) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def test_npz_corrupt_deflate_stream(tmp_path):
    path = _npz(tmp_path / "z.npz", {"w.npy": _npz_member(np.arange(1000, dtype=np.float32))}, zipfile.ZIP_DEFLATED)
    raw = bytearray(path.read_bytes())
    start = raw.index(b"w.npy") + len(b"w.npy")
    raw[start + 10 : start + 40] = b"\xff" * 30
    path.write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match="z.npz"):
        Checkpoint.load(path)


def test_npz_header_that_does_not_tokenize(tmp_path):
    member = bytearray(_npz_member(np.zeros(3, np.float32)))
    text = member[10:].index(b"}") + 10
    member[text - 2 : text] = b"('"
    path = _npz(tmp_path / "t.npz", {"w.npy": bytes(member)})
    with pytest.raises(CheckpointError, match=r"(?s)t.npz.*'w'"):
        Checkpoint.load(path)


def test_npz_unsupported_compression_method(tmp_path):
    path = _npz(tmp_path / "m.npz", {"w.npy": _npz_member(np.zeros(3, np.float32))})
    raw = bytearray(path.read_bytes())
    for signature, offset in ((b"PK\x03\x04", 8), (b"PK\x01\x02", 10)):
        at = raw.index(signature)
        raw[at + offset : at + offset + 2] = struct.pack("<H", 99)
    path.write_bytes(bytes(raw))
    with pytest.raises(CheckpointError, match="m.npz"):
        Checkpoint.load(path)


def test_npz_truncated_member(tmp_path):
    path = _npz(tmp_path / "e.npz", {"w.npy": _npz_member(np.arange(4000, dtype=np.float32))}, zipfile.ZIP_DEFLATED)
    raw = path.read_bytes()
    central = raw.index(b"PK\x01\x02")
    path.write_bytes(raw[: central - 200] + raw[central:])
    with pytest.raises(CheckpointError, match="e.npz"):
        Checkpoint.load(path)


def test_npz_declared_shape_larger_than_the_member(tmp_path):
    member = _npz_member(np.zeros(3, np.float32)).replace(b"(3,)", b"(1000000000000,)".ljust(4))
    header_len = struct.unpack("<H", member[8:10])[0]
    header = member[10 : 10 + header_len].replace(b"(1000000000000,)", b"(10000000000000,)")
    header = header.rstrip(b"\n ").ljust(header_len - 1) + b"\n"
    member = member[:10] + header[:header_len] + member[10 + header_len :]
    path = _npz(tmp_path / "s.npz", {"w.npy": member})
    with pytest.raises(CheckpointError, match=r"(?s)s.npz.*'w'"):
        Checkpoint.load(path)


def test_npz_object_arrays_are_refused(tmp_path):
    path = tmp_path / "o.npz"
    np.savez(path, w=np.array([1, "a"], dtype=object))
    with pytest.raises(CheckpointError, match=r"(?s)o.npz.*'w'"):
        Checkpoint.load(path)


# ------------------------------------------------------------------------------------------ .pth memory


_PEAK = """
import resource, sys
from pathlib import Path
import numpy  # (torch is not imported: these files must be refused or read without it)
from netdef.errors import NetdefError
from netdef.weights import Checkpoint
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    Checkpoint.load(Path(sys.argv[1]))
    outcome = "read"
except NetdefError as exc:
    outcome = "refused: " + str(exc).splitlines()[0]
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(outcome)
print((peak - base) * 1024)
"""


def _peak_growth(path: Path) -> tuple[str, int]:
    result = run_python(_PEAK.replace("sys.argv[1]", repr(str(path))), timeout=120)
    assert result.returncode == 0, result.stderr
    outcome, growth = result.stdout.strip().splitlines()[-2:]
    return outcome, int(growth)


def _pth_with_pickle(path: Path, pickle_bytes: bytes, members: dict[str, bytes] | None = None) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("archive/data.pkl", pickle_bytes)
        archive.writestr("archive/byteorder", "little")
        for name, data in (members or {}).items():
            archive.writestr(name, data)
    return path


def test_pth_bytearray_of_three_gigabytes_is_refused_without_allocating(tmp_path):
    # {"w": bytearray(3_000_000_000)}, pickle protocol 2, written opcode by opcode
    count = (3_000_000_000).to_bytes(5, "little", signed=True)
    payload = b"\x80\x02}X\x01\x00\x00\x00wc__builtin__\nbytearray\n\x8a\x05" + count + b"\x85Rs."
    path = _pth_with_pickle(tmp_path / "b.pth", payload)
    outcome, growth = _peak_growth(path)
    assert outcome.startswith("refused") and "b.pth" in outcome
    assert growth <= 2 * path.stat().st_size + (64 << 20)


def test_pth_deflated_storage_is_not_inflated_beyond_what_numel_needs(tmp_path):
    import torch

    plain = tmp_path / "plain.pth"
    torch.save({"w": torch.arange(4, dtype=torch.float32)}, plain)
    path = tmp_path / "bomb.pth"
    with zipfile.ZipFile(plain) as source, zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        for info in source.infolist():
            if not info.filename.endswith("/data/0"):
                archive.writestr(info.filename, source.read(info))
                continue
            bomb = zipfile.ZipInfo(info.filename)
            bomb.compress_type = zipfile.ZIP_DEFLATED
            with archive.open(bomb, "w", force_zip64=True) as member:
                member.write(source.read(info))  # the 16 bytes numel needs, then 256 MiB more
                for _ in range(256):
                    member.write(bytes(1 << 20))
    assert path.stat().st_size < 2 << 20
    outcome, growth = _peak_growth(path)
    assert growth <= 2 * path.stat().st_size + (64 << 20), outcome


# ------------------------------------------------------------------------------------------ engine files


def _engine_bytes(metadata: dict, plan: bytes = b"plan") -> bytes:
    from netdef.engine import Engine

    return Engine(plan, metadata).to_bytes()


def _rehash(metadata_bytes: bytes, plan: bytes = b"plan") -> bytes:
    from netdef.engine import _HEADER, FORMAT_VERSION, MAGIC

    header = _HEADER.pack(MAGIC, FORMAT_VERSION, len(metadata_bytes), hashlib.sha256(metadata_bytes).digest())
    return header + metadata_bytes + plan


@pytest.fixture(scope="module")
def lenet_engine_bytes(tmp_path_factory) -> bytes:
    from architectures import get
    from netdef.build import build

    network = get("lenet").build_network(Checkpoint.load(Path("weights/lenet_digits.safetensors")), batch=1)
    definition = {
        "architecture": "lenet",
        "options": {},
        "checkpoint": str(Path("weights/lenet_digits.safetensors").resolve()),
    }
    return build(network, definition=definition).to_bytes()


def _metadata_of(data: bytes) -> dict:
    from netdef.engine import _HEADER

    length = struct.unpack_from("<I", data, 12)[0]
    return json.loads(data[_HEADER.size : _HEADER.size + length])


WRONG_SHAPES = {
    "io-not-a-list": lambda m: m.update(io={"input": 1}),
    "io-entry-not-a-dict": lambda m: m.update(io=["input"]),
    "io-shape-strings": lambda m: m["io"][0].update(shape=["a", "b"]),
    "io-mode-missing": lambda m: m["io"][0].pop("mode"),
    "weights-not-a-dict": lambda m: m.update(weights=[1, 2]),
    "weight-entry-shape": lambda m: m["weights"][next(iter(m["weights"]))].update(shape="3x3"),
    "profile-batch": lambda m: m.update(profile={"batch": "1:8:64"}),
    "definition-not-a-dict": lambda m: m.update(definition="lenet"),
    "options-not-a-dict": lambda m: m["definition"].update(options=[1]),
    "precision-number": lambda m: m.update(precision=16),
    "name-list": lambda m: m.update(name=["x"]),
    "build-seconds-text": lambda m: m.update(build_seconds="fast"),
    "derived-not-a-dict": lambda m: m.update(derived_weights=3),
    "refit-text": lambda m: m.update(refit="yes"),
    "built-on-gpu-list": lambda m: m.update(built_on_gpu=[1]),
}


@pytest.mark.parametrize("case", sorted(WRONG_SHAPES))
@pytest.mark.parametrize("command", ["info", "run", "refit", "bench"])
def test_engine_metadata_of_the_wrong_shape_is_refused_naming_file_and_field(
    monkeypatch, capsys, tmp_path, lenet_engine_bytes, case, command
):
    from tests.cli_runner import netdef

    metadata = _metadata_of(lenet_engine_bytes)
    WRONG_SHAPES[case](metadata)
    metadata_bytes = json.dumps(metadata).encode()
    plan = lenet_engine_bytes[48 + struct.unpack_from("<I", lenet_engine_bytes, 12)[0] :]
    path = tmp_path / "bad.engine"
    path.write_bytes(_rehash(metadata_bytes, plan))
    x = tmp_path / "x.npy"
    np.save(x, np.zeros((1, 1, 28, 28), np.float32))
    args = {
        "info": ["info", path],
        "run": ["run", path, "-i", x],
        "refit": ["refit", path, Path("weights/lenet_digits.safetensors"), "--check"],
        "bench": ["bench", path],
    }[command]
    code, _, err = netdef(monkeypatch, capsys, *args)
    assert code == 1, err
    assert str(path) in err and "metadata" in err
    assert "Traceback" not in err


def test_invalid_metadata_json_names_the_file(tmp_path):
    from netdef.engine import Engine

    path = tmp_path / "j.engine"
    path.write_bytes(_rehash(b"{not json", b""))
    with pytest.raises(EngineFileError, match="j.engine"):
        Engine.load(path)


def test_zlib_is_what_makes_the_bomb(tmp_path):
    """(The deflate bomb above compresses 256 MiB of zeros to about 256 KiB.)"""
    assert len(zlib.compress(b"\0" * (1 << 20))) < 2048


def test_every_engine_metadata_field_any_command_reads_has_a_schema_entry():
    from netdef.engine_schema import SCHEMA

    for field in ("io", "weights", "profile", "definition", "precision", "name", "derived_weights", "plan_bytes"):
        assert field in SCHEMA


def test_write_checkpoint_round_trip_still_works(tmp_path):
    path = tmp_path / "ok.safetensors"
    write_checkpoint({"w": np.ones(3, np.float32)}, path)
    assert np.array_equal(Checkpoint.load(path)["w"], np.ones(3, np.float32))


def test_every_test_docs_reliability_names_exists():
    """Each row of docs/reliability.md's table is backed by tests that exist."""
    import re

    repo = Path(__file__).resolve().parents[1]
    text = (repo / "docs" / "reliability.md").read_text()
    current, named, missing = None, 0, []
    for match in re.finditer(r"`(tests/[^`:]+\.py)?::(test_\w+)`", text):
        current = match.group(1) or current
        named += 1
        if f"def {match.group(2)}(" not in (repo / current).read_text():
            missing.append(f"{current}::{match.group(2)}")
    assert named >= 17 and not missing

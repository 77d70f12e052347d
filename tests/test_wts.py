"""tensorrtx ``.wts``: bit-exact round trips, gen_wts.py's exact layout, tolerant whitespace, errors by line."""

from __future__ import annotations

import struct
from pathlib import Path

import ml_dtypes
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from benchmarks.wts_per_value import read_wts_per_value
from netdef.errors import CheckpointError
from netdef.weights import Checkpoint
from netdef.weights.wts_io import read_wts, write_wts

ROOT = Path(__file__).resolve().parents[1]
LENET = ROOT / "weights" / "lenet_digits.safetensors"


def gen_wts(tensors: dict[str, np.ndarray], path: Path) -> None:
    """tensorrtx's gen_wts.py, verbatim in its loop."""
    with open(path, "w") as f:
        f.write(f"{len(tensors)}\n")
        for k, v in tensors.items():
            vr = v.reshape(-1)
            f.write(f"{k} {len(vr)} ")
            for vv in vr:
                f.write(" ")
                f.write(struct.pack(">f", float(vv)).hex())
            f.write("\n")


def bits(array: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(array, dtype=np.float32).view(np.uint32)


def random_tensors(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "conv1.weight": rng.standard_normal((4, 3, 3, 3)).astype(np.float32),
        "conv1.bias": rng.standard_normal(4).astype(np.float32),
        "bn1.running_var": rng.uniform(0.5, 2, 4).astype(np.float32),
        "fc.weight": rng.standard_normal((10, 36)).astype(np.float32),
        "empty": np.zeros(0, np.float32),
    }


def test_writer_matches_gen_wts_byte_for_byte(tmp_path):
    tensors = random_tensors()
    gen_wts(tensors, tmp_path / "gen.wts")
    write_wts(tensors, tmp_path / "ours.wts")
    assert (tmp_path / "ours.wts").read_bytes() == (tmp_path / "gen.wts").read_bytes()


def test_round_trip_is_bit_exact_including_special_values(tmp_path):
    special = np.array(
        [0x00000000, 0x80000000, 0x00000001, 0x807FFFFF, 0x7F7FFFFF, 0x7F800000, 0xFF800000, 0x7FC00001, 0x7F800001],
        dtype=np.uint32,
    ).view(np.float32)  # +0, -0, denormals, max, +-inf, quiet and signalling NaN payloads
    tensors = {**random_tensors(), "special": special}
    write_wts(tensors, tmp_path / "x.wts")
    back = read_wts(tmp_path / "x.wts")
    assert list(back) == list(tensors)
    for name, array in tensors.items():
        assert back[name].dtype == np.float32 and back[name].shape == (array.size,)
        np.testing.assert_array_equal(bits(back[name]), bits(array.reshape(-1)), err_msg=name)


@pytest.mark.parametrize(
    "dtype", [np.float16, ml_dtypes.bfloat16, np.int64, np.int32, np.uint8, np.bool_, np.float64], ids=str
)
def test_other_dtypes_are_widened_to_float32_exactly(tmp_path, dtype):
    """.wts holds float32 only: narrower floats and small integers widen exactly; float64 is rounded like gen_wts."""
    values = np.array([0, 1, -2.5, 3.75, 100, 7], np.float64)
    array = (
        (values > 0)
        if dtype is np.bool_
        else values.astype(dtype)
        if dtype is not np.uint8
        else np.arange(6, dtype=dtype)
    )
    write_wts({"t": array}, tmp_path / "x.wts")
    back = read_wts(tmp_path / "x.wts")["t"]
    np.testing.assert_array_equal(back, array.astype(np.float32))


def test_writer_refuses_what_float32_cannot_hold(tmp_path):
    with pytest.raises(CheckpointError) as info:
        write_wts({"big": np.array([2**24 + 1], np.int64), "bad name": np.zeros(1, np.float32)}, tmp_path / "x.wts")
    message = str(info.value)
    assert "x.wts" in message and "'big'" in message and "'bad name'" in message and "2 problem(s)" in message
    assert not (tmp_path / "x.wts").exists()


def test_checkpoint_load_reads_wts_flat(tmp_path):
    tensors = random_tensors()
    write_wts(tensors, tmp_path / "m.wts")
    ckpt = Checkpoint.load(tmp_path / "m.wts")
    assert set(ckpt) == set(tensors)
    assert ckpt["conv1.weight"].shape == (108,) and not ckpt["conv1.weight"].flags.writeable
    assert ckpt.num_parameters == sum(a.size for a in tensors.values())


def test_odd_whitespace_is_tolerated(tmp_path):
    words = [struct.pack(">f", v).hex() for v in (1.0, -2.0, 0.5)]
    text = (
        "\n  2  \r\n"  # blank line first, padded header, CRLF
        f"\ta\t3\t{words[0]}   {words[1].upper()}\t{words[2]}  \r\n"
        "\n"
        "  b 0 \r\n"
        "\n\n"
    )
    (tmp_path / "odd.wts").write_text(text, newline="")
    back = read_wts(tmp_path / "odd.wts")
    np.testing.assert_array_equal(back["a"], np.array([1.0, -2.0, 0.5], np.float32))
    assert back["b"].size == 0


def test_file_without_trailing_newline(tmp_path):
    (tmp_path / "x.wts").write_text("1\nw 1 3f800000")
    assert read_wts(tmp_path / "x.wts")["w"].tolist() == [1.0]


ONE = struct.pack(">f", 1.0).hex()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", ["line 1: empty file"]),
        ("conv.weight 1 3f800000\n", ["line 1: expected the tensor count", "'conv.weight 1 3f800000'"]),
        ("-1\n", ["line 1: expected the tensor count"]),
        (f"3\na 1 {ONE}\nb 1 {ONE}\n", ["line 1: header declares 3 tensor(s), the file has 2 tensor line(s)"]),
        (f"1\na 1 {ONE}\nb 1 {ONE}\n", ["line 1: header declares 1 tensor(s), the file has 2 tensor line(s)"]),
        (f"1\na 3 {ONE} {ONE}\n", ["line 2: tensor 'a': declares 3 value(s), the line has 2 hex word(s) (truncated"]),
        (f"1\na 1 {ONE} {ONE}\n", ["line 2: tensor 'a': declares 1 value(s), the line has 2 hex word(s)"]),
        (f"1\na 2 {ONE} 3f80\n", ["line 2: tensor 'a': 1 word(s) are not 8 hex digits: word 2 '3f80'"]),
        (f"1\na 2 {ONE} 3g800000\n", ["line 2: tensor 'a': 1 word(s) are not hexadecimal: word 2 '3g800000'"]),
        (f"1\na 2 0x800000 {ONE}\n", ["word 1 '0x800000'"]),
        ("1\na\n", ["line 2: tensor 'a': truncated line"]),
        ("1\na x 3f800000\n", ["line 2: tensor 'a': value count 'x' is not a non-negative integer"]),
        (f"2\na 1 {ONE}\na 1 {ONE}\n", ["line 3: tensor 'a' repeats line 2"]),
    ],
    ids=[
        "empty",
        "no-header",
        "negative-header",
        "header-too-big",
        "header-too-small",
        "too-few-words",
        "too-many-words",
        "short-word",
        "non-hex",
        "0x-prefix",
        "name-only",
        "bad-count",
        "duplicate",
    ],
)
def test_malformed_files_give_errors_naming_file_and_line(tmp_path, text, expected):
    path = tmp_path / "bad.wts"
    path.write_text(text)
    with pytest.raises(CheckpointError) as info:
        read_wts(path)
    message = str(info.value)
    assert message.startswith(f"{path}: not a valid tensorrtx .wts file")
    for part in expected:
        assert part in message


def test_every_problem_is_listed_at_once(tmp_path):
    path = tmp_path / "bad.wts"
    lines = ["4", f"ok 1 {ONE}", f"a 2 {ONE}", "b 1 zzzzzzzz", f"c 1 {ONE} {ONE}", "d"]
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(CheckpointError) as info:
        read_wts(path)
    message = str(info.value)
    assert "(5 problem(s))" in message
    for line in ("line 1:", "line 3:", "line 4:", "line 5:", "line 6:"):
        assert line in message
    assert "line 2:" not in message


def test_truncated_file_cut_mid_word(tmp_path):
    write_wts(random_tensors(), tmp_path / "full.wts")
    data = (tmp_path / "full.wts").read_bytes()
    cut = data.rfind(b"\nfc.weight") + 200  # inside fc.weight's values
    (tmp_path / "cut.wts").write_bytes(data[:cut])
    with pytest.raises(CheckpointError) as info:
        read_wts(tmp_path / "cut.wts")
    message = str(info.value)
    assert "tensor 'fc.weight': declares 360 value(s)" in message and "truncated line?" in message
    assert "header declares 5 tensor(s), the file has 4 tensor line(s)" in message


float32_arrays = hnp.arrays(
    np.float32,
    hnp.array_shapes(min_dims=1, max_dims=2, max_side=40),
    elements=st.floats(width=32, allow_nan=False),  # struct's float() round trip quiets NaN payloads
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.dictionaries(st.from_regex(r"[A-Za-z_][A-Za-z0-9_.]{0,20}", fullmatch=True), float32_arrays, max_size=5))
def test_vectorised_reader_matches_per_value_reference(tmp_path, tensors):
    path = tmp_path / "h.wts"
    gen_wts(tensors, path)
    ours, reference = read_wts(path), read_wts_per_value(path)
    assert list(ours) == list(reference) == list(tensors)
    for name in tensors:
        np.testing.assert_array_equal(bits(ours[name]), bits(reference[name]))
        np.testing.assert_array_equal(bits(ours[name]), bits(tensors[name].reshape(-1)))


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=50), st.lists(st.sampled_from([" ", "\t", "  "])))
def test_any_bit_pattern_survives_tolerant_whitespace(tmp_path, patterns, separators):
    values = np.array(patterns, np.uint32)
    seps = separators or [" "]
    words = "".join(f"{seps[i % len(seps)]}{struct.pack('>I', int(p)).hex()}" for i, p in enumerate(patterns))
    path = tmp_path / "t.wts"
    path.write_text(f"1\nt {len(patterns)}{words}\n")
    np.testing.assert_array_equal(read_wts(path)["t"].view(np.uint32), values)


def test_lenet_builds_from_wts_like_from_safetensors(tmp_path):
    """A .wts has no shapes: the architecture reshapes the flat tensors, to the same weights bit for bit."""
    from architectures import get

    source = Checkpoint.load(LENET)
    write_wts(dict(source), tmp_path / "lenet.wts")
    from_wts = get("lenet").build_network(Checkpoint.load(tmp_path / "lenet.wts"), batch=1)
    from_st = get("lenet").build_network(source, batch=1)
    assert list(from_wts.weights) == list(from_st.weights) and len(from_wts.weights) >= 8
    for name, array in from_st.weights.items():
        np.testing.assert_array_equal(bits(from_wts.weights[name]), bits(array), err_msg=name)


def test_lenet_wts_with_a_wrong_count_names_the_weight(tmp_path):
    from architectures import get

    tensors = dict(Checkpoint.load(LENET))
    tensors["fc1.weight"] = np.asarray(tensors["fc1.weight"]).reshape(-1)[:-1]
    write_wts(tensors, tmp_path / "short.wts")
    with pytest.raises(CheckpointError) as info:
        get("lenet").build_network(Checkpoint.load(tmp_path / "short.wts"), batch=1)
    assert "weight 'fc1.weight': expected shape (500, 800) (400000 values)" in str(info.value)
    assert "(399999,) (399999 values)" in str(info.value)


def test_cli_build_lenet_from_wts(tmp_path):
    from typer.testing import CliRunner

    from netdef.cli import app
    from netdef.engine import Engine

    write_wts(dict(Checkpoint.load(LENET)), tmp_path / "lenet.wts")
    engine = tmp_path / "lenet.engine"
    result = CliRunner().invoke(app, ["build", "lenet", "--weights", str(tmp_path / "lenet.wts"), "-o", str(engine)])
    assert result.exit_code == 0, result.output
    loaded = Engine.load(engine)
    assert loaded.metadata["definition"]["checkpoint"].endswith("lenet.wts")
    assert set(loaded.weight_names) >= {"conv1.weight", "fc2.bias"}


def test_cli_build_resnet18_from_wts(tmp_path):
    """tensorrtx's ResNet-18 export (with num_batches_tracked lines) builds from flat tensors."""
    from typer.testing import CliRunner

    from architectures import get
    from netdef.cli import app

    rng = np.random.default_rng(18)
    tensors = {}
    for name, shape in get("resnet18").expected_weights().items():
        tensors[name] = rng.uniform(0.5, 2, shape) if name.endswith("running_var") else rng.normal(0, 0.05, shape)
        if name.endswith(".running_var"):
            tensors[name.replace("running_var", "num_batches_tracked")] = np.array(7, np.int64)
    write_wts(tensors, tmp_path / "r18.wts")
    engine = tmp_path / "r18.engine"
    result = CliRunner().invoke(app, ["build", "resnet18", "--weights", str(tmp_path / "r18.wts"), "-o", str(engine)])
    assert result.exit_code == 0, result.output
    assert engine.stat().st_size > 4 * 11_000_000  # float32 weights of 11.7M parameters are in the plan

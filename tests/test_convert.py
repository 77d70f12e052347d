"""Checkpoint conversion and renaming: bit-exact round trips per dtype, rename rules, the CLI commands."""

from __future__ import annotations

import json
import re
from pathlib import Path

import ml_dtypes
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from netdef.cli import app
from netdef.errors import CheckpointError, OutputPathError
from netdef.weights import Checkpoint
from netdef.weights.convert import cast_tensors, convert, reshape_like, write_checkpoint
from netdef.weights.rename import make_rules, parse_rule, rename_names, rename_tensors, strip_prefix
from netdef.weights.safetensors_io import write_safetensors
from netdef.weights.wts_io import write_wts

BF16 = np.dtype(ml_dtypes.bfloat16)
RUNNER = CliRunner()


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    a, b = np.ascontiguousarray(a), np.ascontiguousarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def tensors_of(dtype: np.dtype, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    if np.dtype(dtype).kind in "iu":
        info = np.iinfo(dtype)
        return {
            "a.w": rng.integers(info.min, info.max, (3, 4), dtype=dtype, endpoint=True),
            "b": rng.integers(0, 9, 5, dtype=dtype),
        }
    if np.dtype(dtype) == np.bool_:
        return {"mask": rng.random((4, 4)) > 0.5}
    values = rng.standard_normal((3, 4, 5)).astype(np.float32)
    values.flat[:3] = [-0.0, np.inf, np.nan]
    return {"conv.weight": values.astype(dtype), "conv.bias": rng.standard_normal(4).astype(dtype)}


def torch_save(tensors: dict[str, np.ndarray], path: Path) -> None:
    state = {}
    for name, array in tensors.items():
        if array.dtype == BF16:
            state[name] = torch.from_numpy(array.view(np.int16).copy()).view(torch.bfloat16)
        else:
            state[name] = torch.from_numpy(array.copy())
    torch.save(state, path)


SOURCE_WRITERS = {
    ".safetensors": write_safetensors,
    ".npz": lambda t, p: np.savez(p, **t),
    ".pth": torch_save,
}
DTYPES = [np.float32, np.float16, BF16, np.float64, np.int64, np.int32, np.int8, np.uint8, np.bool_]


# np.savez cannot write bfloat16 without pickle, so there is no bfloat16 .npz source to convert.
ROUND_TRIPS = [
    pytest.param(suffix, dtype, out, id=f"{suffix[1:]}-{np.dtype(dtype).name}-{out[1:]}")
    for suffix in SOURCE_WRITERS
    for dtype in DTYPES
    for out in (".safetensors", ".npz")
    if not (suffix == ".npz" and np.dtype(dtype) == BF16)
]


@pytest.mark.parametrize(("suffix", "dtype", "out"), ROUND_TRIPS)
def test_round_trip_is_bit_exact_for_every_dtype(tmp_path, suffix, dtype, out):
    """Every format that can hold a dtype keeps it bit for bit; .npz cannot name bfloat16 and says so."""
    tensors = tensors_of(dtype)
    SOURCE_WRITERS[suffix](tensors, tmp_path / f"in{suffix}")
    target = tmp_path / f"out{out}"
    if out == ".npz" and np.dtype(dtype) == BF16:
        with pytest.raises(CheckpointError, match=r"\.npz cannot store 'conv\.weight' \(bfloat16\)"):
            convert(tmp_path / f"in{suffix}", target)
        return
    summary = convert(tmp_path / f"in{suffix}", target)
    back = Checkpoint.load(target)
    assert list(back) == list(tensors)
    for name, array in tensors.items():
        assert same_bits(back[name], array), name
    assert summary.tensors == len(tensors) and summary.renamed == 0 and summary.cast == 0
    assert summary.parameters == sum(a.size for a in tensors.values())


@pytest.mark.parametrize("out", [".safetensors", ".npz", ".wts"])
def test_wts_float32_comes_through_bit_exact(tmp_path, out):
    tensors = tensors_of(np.float32)
    tensors["special"] = np.array([0x7FC00001, 0x00000001, 0x80000000], np.uint32).view(np.float32)
    write_wts(tensors, tmp_path / "in.wts")
    convert(tmp_path / "in.wts", tmp_path / f"out{out}")
    back = Checkpoint.load(tmp_path / f"out{out}")
    for name, array in tensors.items():
        assert same_bits(back[name], array.reshape(-1)), name  # .wts carries no shapes


def test_to_wts_widens_half_types_exactly_and_refuses_a_narrow_dtype(tmp_path):
    tensors = {**tensors_of(np.float16), "n": np.array([3, 4], np.int64)}
    write_safetensors(tensors, tmp_path / "in.safetensors")
    convert(tmp_path / "in.safetensors", tmp_path / "out.wts")
    back = Checkpoint.load(tmp_path / "out.wts")
    for name, array in tensors.items():
        assert same_bits(back[name], array.astype(np.float32).reshape(-1)), name
    with pytest.raises(CheckpointError, match=r"\.wts stores float32 only"):
        convert(tmp_path / "in.safetensors", tmp_path / "out2.wts", dtype="fp16")


@pytest.mark.parametrize("dtype", ["fp16", "bf16", "fp32"])
def test_cast_converts_floating_tensors_only(tmp_path, dtype):
    tensors = {**tensors_of(np.float32), "bn.num_batches_tracked": np.array(12, np.int64)}
    write_safetensors(tensors, tmp_path / "in.safetensors")
    summary = convert(tmp_path / "in.safetensors", tmp_path / "out.safetensors", dtype=dtype)
    back = Checkpoint.load(tmp_path / "out.safetensors")
    target = {"fp16": np.dtype(np.float16), "bf16": BF16, "fp32": np.dtype(np.float32)}[dtype]
    assert back["conv.weight"].dtype == target
    assert same_bits(back["conv.weight"], tensors["conv.weight"].astype(target))
    assert back["bn.num_batches_tracked"].dtype == np.int64 and int(back["bn.num_batches_tracked"]) == 12
    assert summary.cast == (0 if dtype == "fp32" else 2)


def test_cast_refuses_overflow_listing_every_tensor():
    tensors = {"a": np.array([1e5, -7e4, 1.0], np.float32), "b": np.array([7e4], np.float32), "c": np.ones(2)}
    with pytest.raises(CheckpointError) as info:
        cast_tensors(tensors, "fp16", "m.pth")
    message = str(info.value)
    assert message.startswith("m.pth: cannot cast to float16")
    assert "tensor 'a': 2 of 3 values overflow float16 (largest |x| = 100000)" in message
    assert "tensor 'b': 1 of 1 values" in message and "'c'" not in message
    assert cast_tensors(tensors, "bf16")["a"].dtype == BF16  # bfloat16 has float32's range


def test_output_suffix_and_same_file_are_checked(tmp_path):
    write_safetensors({"a": np.ones(2, np.float32)}, tmp_path / "m.safetensors")
    with pytest.raises(CheckpointError, match="output must end in one of"):
        convert(tmp_path / "m.safetensors", tmp_path / "m.onnx")
    with pytest.raises(OutputPathError, match="same file as the input"):
        convert(tmp_path / "m.safetensors", tmp_path / "m.safetensors")
    with pytest.raises(CheckpointError, match="cannot write '.pt'"):
        write_checkpoint({"a": np.ones(1)}, tmp_path / "x.pt")


# ------------------------------------------------------------------------------------ renaming

NAMES = ["module.backbone.conv1.weight", "module.backbone.bn1.running_mean", "module.head.fc.weight", "step"]


def test_strip_prefix_only_touches_names_with_it():
    assert rename_names(NAMES, [strip_prefix("module.")]) == {
        "module.backbone.conv1.weight": "backbone.conv1.weight",
        "module.backbone.bn1.running_mean": "backbone.bn1.running_mean",
        "module.head.fc.weight": "head.fc.weight",
        "step": "step",
    }


def test_literal_and_regex_rules_apply_in_order():
    rules = make_rules(["backbone.=", r"s/^head\.(\w+)\./\1_/", "s|fc_|classifier.|"], strip_prefixes=["module."])
    assert list(rename_names(NAMES, rules).values()) == [
        "conv1.weight",
        "bn1.running_mean",
        "classifier.weight",
        "step",
    ]


@pytest.mark.parametrize(
    ("rule", "name", "expected"),
    [
        ("s/a/b/", "banana", "bbnbnb"),  # every occurrence, like sed's g
        (r"s/\.(\d+)\./[\1]./", "layer.12.conv", "layer[12].conv"),
        (r"s/(?P<x>conv)(\d)/\g<x>_\2/", "conv1.weight", "conv_1.weight"),
        (r"s#a/b#c#", "xa/b", "xc"),
        (r"s/a\/b/c/", "xa/b", "xc"),  # an escaped delimiter is literal
        ("x.y=z", "x.y.x_y", "z.x_y"),  # literal: the dot is not a wildcard
    ],
)
def test_rule_forms(rule, name, expected):
    assert parse_rule(rule)(name) == expected


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ("nonsense", "expected OLD=NEW (literal) or s/PATTERN/REPL/"),
        ("=x", "expected OLD=NEW"),
        ("s/(unclosed/x/", "bad regular expression '(unclosed'"),
        ("s/a/b/c/", "expected s/PATTERN/REPL/"),
    ],
)
def test_bad_rules_are_explained(rule, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_rule(rule)


def test_bad_group_reference_names_the_rule():
    with pytest.raises(ValueError, match=r"rename rule 's/a/\\\\2/': bad replacement"):
        rename_names(["a"], [r"s/a/\2/"])


def test_collisions_are_listed_all_at_once():
    with pytest.raises(CheckpointError) as info:
        rename_names(["module.a", "a", "module.b", "b", "x"], [strip_prefix("module."), "s/^x$//"], "m.pth")
    message = str(info.value)
    assert message.startswith("m.pth: renaming (strip prefix 'module.'; s/^x$//) gives 3 clash(es):")
    assert "'a' <- 'module.a', 'a'" in message and "'b' <- 'module.b', 'b'" in message
    assert "empty name <- 'x'" in message


def test_rename_tensors_keeps_values_and_order():
    values = {name: np.full(2, i) for i, name in enumerate(NAMES)}
    renamed = rename_tensors(values, make_rules(strip_prefixes=["module."]))
    assert list(renamed) == ["backbone.conv1.weight", "backbone.bn1.running_mean", "head.fc.weight", "step"]
    assert all(renamed[new] is values[old] for old, new in zip(values, renamed, strict=True))


def test_convert_renames_a_dataparallel_checkpoint(tmp_path):
    tensors = {f"module.{k}": v for k, v in tensors_of(np.float32).items()}
    torch_save(tensors, tmp_path / "dp.pth")
    summary = convert(
        tmp_path / "dp.pth", tmp_path / "out.safetensors", strip_prefixes=["module."], rules=["s/^conv/c/"]
    )
    back = Checkpoint.load(tmp_path / "out.safetensors")
    assert list(back) == ["c.weight", "c.bias"] and summary.renamed == 2
    assert same_bits(back["c.weight"], tensors["module.conv.weight"])


# ------------------------------------------------------------------------------------ CLI


def test_cli_convert_with_rules_and_dtype(tmp_path):
    tensors = {f"module.{k}": v for k, v in tensors_of(np.float32).items()}
    torch_save(tensors, tmp_path / "in.pth")
    out = tmp_path / "out.safetensors"
    args = ["convert", str(tmp_path / "in.pth"), "-o", str(out), "--dtype", "bf16", "--strip-prefix", "module."]
    result = RUNNER.invoke(app, [*args, "--rename", "conv=layer", "--rename", r"s/\.bias$/.b/"])
    assert result.exit_code == 0, result.output
    assert "converted" in result.output and "2 renamed" in result.output and "2 cast to bf16" in result.output
    back = Checkpoint.load(out)
    assert list(back) == ["layer.weight", "layer.b"] and back["layer.b"].dtype == BF16
    assert same_bits(back["layer.b"], tensors["module.conv.bias"].astype(BF16))


def test_cli_convert_reports_collisions_and_bad_input(tmp_path):
    write_safetensors({"a.w": np.ones(1, np.float32), "b.w": np.ones(1, np.float32)}, tmp_path / "m.safetensors")
    result = RUNNER.invoke(
        app, ["convert", str(tmp_path / "m.safetensors"), "-o", str(tmp_path / "o.wts"), "--rename", "s/^.//"]
    )
    assert result.exit_code != 0
    assert isinstance(result.exception, CheckpointError) and "'.w' <- 'a.w', 'b.w'" in str(result.exception)
    assert not (tmp_path / "o.wts").exists()
    result = RUNNER.invoke(app, ["convert", str(tmp_path / "missing.pth"), "-o", str(tmp_path / "o.safetensors")])
    assert isinstance(result.exception, CheckpointError) and "no such checkpoint file" in str(result.exception)


def test_cli_weights_table_and_json(tmp_path):
    tensors = {**tensors_of(np.float16), "n": np.array([1, 2, 3], np.int64)}
    write_safetensors(tensors, tmp_path / "m.safetensors")
    result = RUNNER.invoke(app, ["weights", str(tmp_path / "m.safetensors")])
    assert result.exit_code == 0, result.output
    for text in ("conv.weight", "3x4x5", "float16", "int64", "total: 3 tensors", "67"):
        assert text in result.output
    result = RUNNER.invoke(app, ["weights", str(tmp_path / "m.safetensors"), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert [t["name"] for t in data["tensors"]] == list(tensors)
    assert data["tensors"][0] == {
        "name": "conv.weight",
        "shape": [3, 4, 5],
        "dtype": "float16",
        "parameters": 60,
        "bytes": 120,
    }
    assert data["total"] == {
        "tensors": 3,
        "parameters": 67,
        "bytes": 60 * 2 + 4 * 2 + 3 * 8,
        "dtypes": {"float16": 64, "int64": 3},
    }


def test_cli_weights_lists_a_wts_file(tmp_path):
    write_wts({"w": np.arange(6, dtype=np.float32)}, tmp_path / "m.wts")
    result = RUNNER.invoke(app, ["weights", str(tmp_path / "m.wts"), "--json"])
    assert json.loads(result.output)["tensors"] == [
        {"name": "w", "shape": [6], "dtype": "float32", "parameters": 6, "bytes": 24}
    ]


def test_shapes_from_an_architecture_restore_what_wts_lost(tmp_path):
    from architectures import get

    source = Checkpoint.load(Path(__file__).resolve().parents[1] / "weights" / "lenet_digits.safetensors")
    write_wts(dict(source), tmp_path / "lenet.wts")
    out = tmp_path / "lenet.safetensors"
    result = RUNNER.invoke(app, ["convert", str(tmp_path / "lenet.wts"), "-o", str(out), "--shapes-from", "lenet"])
    assert result.exit_code == 0, result.output
    assert "4 reshaped like lenet" in result.output  # the weights; biases are flat already
    back = Checkpoint.load(out)
    assert {n: back[n].shape for n in back} == get("lenet").expected_weights()
    for name in source:
        assert same_bits(back[name], source[name]), name


def test_reshape_refuses_wrong_counts_listing_each():
    tensors = {
        "a": np.zeros(6, np.float32),
        "b": np.zeros(5, np.float32),
        "c": np.zeros(4, np.float32),
        "n": np.ones(1),
    }
    with pytest.raises(CheckpointError) as info:
        reshape_like(tensors, {"a": (2, 3), "b": (2, 3), "c": (3,)}, "x.wts")
    message = str(info.value)
    assert message.startswith("x.wts: cannot reshape:")
    assert "tensor 'b': 5 values cannot take shape (2, 3)" in message and "tensor 'c': 4 values" in message
    assert "'a'" not in message
    reshaped, count = reshape_like({"a": tensors["a"], "n": tensors["n"]}, {"a": (2, 3)})
    assert reshaped["a"].shape == (2, 3) and reshaped["n"].shape == (1,) and count == 1

"""Definitions in the user's own code: register, name them as file.py:fn or module:fn, build, then run,
inspect, explain and refit the engine from any directory; options, fingerprints, unused entries."""

from __future__ import annotations

import logging
import os
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import xxhash
from cli_runner import assert_clean_failure, needs_build, netdef

import netdef as nd
from netdef.definition import DefinitionRecord, record_of, redefine, resolve
from netdef.engine import Engine
from netdef.errors import DefinitionError, NetdefError, RefitError
from netdef.weights.fingerprint import changed_since, fingerprint
from netdef.weights.safetensors_io import write_safetensors

REPO = Path(__file__).resolve().parents[1]

MYNET = '''
"""A small network defined outside the project."""
from netdef import register


@register("mynet_user", input_shape=(1, 8, 8), output="logits")
def mynet(net, x, width: int = 4, bias: bool = True, scale: float = 1.0, note: str = "a"):
    """conv -> relu -> linear."""
    x = net.relu(net.conv2d(x, "conv", width, kernel_size=3, bias=bias))
    return net.linear(net.flatten(x), "fc", 3)


def not_registered(net, x):
    return x
'''


def checkpoint(seed: int, width: int = 4, bias: bool = True) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    tensors = {
        "conv.weight": rng.normal(0, 0.3, (width, 1, 3, 3)),
        "fc.weight": rng.normal(0, 0.3, (3, width * 36)),
        "fc.bias": rng.normal(0, 0.3, (3,)),
    }
    if bias:
        tensors["conv.bias"] = rng.normal(0, 0.3, (width,))
    return {k: v.astype(np.float32) for k, v in tensors.items()}


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """A user's folder: mynet.py, two checkpoints and an input file."""
    root = tmp_path_factory.mktemp("project")
    (root / "mynet.py").write_text(MYNET)
    write_safetensors(checkpoint(0), root / "ck.safetensors")
    write_safetensors(checkpoint(1), root / "new.safetensors")
    np.save(root / "x.npy", np.random.default_rng(2).standard_normal((2, 1, 8, 8)).astype(np.float32))
    return root


@pytest.fixture(scope="module")
def engine_file(project) -> Path:
    """``netdef build mynet.py:mynet`` run from the project folder, as a fresh process."""
    needs_build()
    done = subprocess.run(
        [sys.executable, "-m", "netdef.cli", "build", "mynet.py:mynet", "-w", "ck.safetensors", "-o", "my.engine",
         "-O", "width=4", "-O", "scale=2", "--batch", "1:2:4", "-q"],
        cwd=project, capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return project / "my.engine"


# --------------------------------------------------------------------------------------- registering


def test_register_is_public_and_the_zoo_uses_it():
    import architectures
    from netdef import register

    assert register is nd.register is architectures.register
    assert architectures.get("lenet") is resolve("lenet")


def test_file_and_module_specs_resolve_to_the_registered_definition(project, monkeypatch):
    by_file = resolve(f"{project}/mynet.py:mynet")
    assert by_file.name == "mynet_user" and by_file.family == "mynet"
    assert by_file.options == {"width": 4, "bias": True, "scale": 1.0, "note": "a"}
    monkeypatch.syspath_prepend(str(project))
    by_module = resolve("mynet:mynet")
    assert by_module.name == "mynet_user" and by_module.define.__module__ == "mynet"
    with pytest.raises(DefinitionError, match="not_registered is not registered: decorate it with @netdef.register"):
        resolve(f"{project}/mynet.py:not_registered")
    with pytest.raises(DefinitionError, match="has no 'nothing'"):
        resolve(f"{project}/mynet.py:nothing")
    with pytest.raises(DefinitionError, match="no such definition file"):
        resolve(f"{project}/missing.py:mynet")
    with pytest.raises(DefinitionError, match="cannot import module 'no_such_module_xyz'"):
        resolve("no_such_module_xyz:mynet")


def test_options_are_typed_from_defaults_and_unknown_ones_listed(project):
    arch = resolve(f"{project}/mynet.py:mynet")
    assert arch.parse_options(["width=8", "bias=false", "scale=0.5", "note=b"]) == {
        "width": 8, "bias": False, "scale": 0.5, "note": "b",
    }  # fmt: skip
    with pytest.raises(DefinitionError) as info:
        arch.parse_options(["depth=3", "width=wide", "bias=maybe", "novalue"])
    message = str(info.value)
    assert len(info.value.problems) == 4
    assert "unknown option 'depth'" in message and "width='wide': expected an integer" in message
    assert "bias='maybe': expected true or false" in message and "'novalue': expected key=value" in message
    assert "valid options: bias (default True), note (default 'a'), scale (default 1.0), width (default 4)" in message
    with pytest.raises(DefinitionError, match="has no option.s. depth; valid options: bias"):
        arch.build_network(checkpoint(0), depth=3)


def test_unknown_option_on_the_command_line(monkeypatch, capsys, project):
    code, _, err = netdef(monkeypatch, capsys, "explain", f"{project}/mynet.py:mynet", "-O", "depth=2")
    assert_clean_failure(code, err, "unknown option 'depth'", "valid options: bias (default True)")


def test_every_network_carries_its_record(project):
    arch = resolve(f"{project}/mynet.py:mynet")
    net = arch.build_network(nd.Checkpoint.load(project / "ck.safetensors"), precision="fp16", batch=2, width=4)
    record = net.definition
    assert record.architecture == "mynet_user" and record.function == "mynet" and record.module is None
    assert record.file == str(project / "mynet.py") and record.options == {"width": 4}
    assert record.inputs == {"input": [2, 1, 8, 8]} and record.precision == "fp16" and record.io_dtype == "fp32"
    assert record.checkpoint == str((project / "ck.safetensors").resolve())
    assert record.to_json()["checkpoint_fingerprint"] == fingerprint(project / "ck.safetensors")


# --------------------------------------------------------------------------------------- engines


def test_the_engine_records_how_to_define_its_network(monkeypatch, capsys, engine_file, project):
    engine = Engine.load(engine_file)
    definition = engine.metadata["definition"]
    assert definition["file"] == str(project / "mynet.py") and definition["function"] == "mynet"
    assert definition["options"] == {"width": 4, "scale": 2.0}
    assert definition["inputs"] == {"input": [-1, 1, 8, 8]} and definition["precision"] == "fp32"
    assert definition["checkpoint"] == str(project / "ck.safetensors")
    assert definition["checkpoint_fingerprint"]["size"] == (project / "ck.safetensors").stat().st_size
    code, out, err = netdef(monkeypatch, capsys, "info", engine_file)
    assert code == 0, err
    assert f"defined by mynet_user ({project / 'mynet.py'}:mynet) with scale=2.0 width=4" in " ".join(out.split())


def test_run_refit_inspect_explain_from_another_directory(monkeypatch, capsys, engine_file, project, tmp_path):
    monkeypatch.chdir(tmp_path)
    x = project / "x.npy"
    code, out, err = netdef(monkeypatch, capsys, "run", engine_file, "-i", x, "-o", "y.npy", "--executor", "reference")
    assert code == 0, err
    expected = redefine(Engine.load(engine_file))
    from netdef.reference import run

    np.testing.assert_array_equal(np.load("y.npy"), run(expected.trt_network, {"input": np.load(x)}).outputs["logits"])
    code, out, err = netdef(monkeypatch, capsys, "refit", engine_file, project / "new.safetensors", "--check")
    assert code == 0, err
    assert "plan OK" in out and f"diffed against {project / 'ck.safetensors'}" in " ".join(out.split())
    code, out, err = netdef(monkeypatch, capsys, "inspect", engine_file)
    assert code == 0 and "conv" in out and "fc" in out, err
    code, out, err = netdef(monkeypatch, capsys, "explain", engine_file, "--full")
    assert code == 0 and "CONVOLUTION" in out, err


def test_a_changed_checkpoint_is_refused_unless_given_explicitly(monkeypatch, capsys, engine_file, project, tmp_path):
    copy_dir = tmp_path / "copy"
    copy_dir.mkdir()
    (copy_dir / "ck.safetensors").write_bytes((project / "ck.safetensors").read_bytes())
    engine = Engine.load(engine_file)
    engine.metadata["definition"]["checkpoint"] = str(copy_dir / "ck.safetensors")
    moved = engine.save(tmp_path / "moved.engine")
    assert redefine(Engine.load(moved)).definition.options == {"width": 4, "scale": 2.0}
    write_safetensors(checkpoint(5), copy_dir / "ck.safetensors")  # same size, other values
    for command in (["run", moved, "-i", project / "x.npy", "--executor", "reference"], ["inspect", moved],
                    ["explain", moved]):  # fmt: skip
        code, _, err = netdef(monkeypatch, capsys, *command)
        assert_clean_failure(code, err, "has changed since the engine was built", "give the checkpoint with --weights")
    code, out, err = netdef(monkeypatch, capsys, "refit", moved, project / "new.safetensors", "--check")
    assert code == 0 and "has changed since the engine was built" in err and "diffed against" not in out, err
    code, _, err = netdef(
        monkeypatch, capsys, "run", moved, "-i", project / "x.npy", "--executor", "reference", "-w",
        copy_dir / "ck.safetensors",
    )  # fmt: skip
    assert code == 0, err


def test_python_build_records_the_definition_and_builds_twice(project, tmp_path):
    needs_build()
    script = tmp_path / "build_twice.py"
    script.write_text(
        textwrap.dedent(f"""
        import netdef
        from netdef.definition import resolve

        arch = resolve({str(project / "mynet.py")!r} + ":mynet")
        for i in range(2):
            net = arch.build_network(netdef.Checkpoint.load({str(project / "ck.safetensors")!r}), batch=1)
            engine = netdef.build(net)
            assert callable(netdef.build), netdef.build
        print(engine.metadata["definition"]["function"], engine.metadata["definition"]["file"])
    """)
    )
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(REPO)})  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["mynet", str(project / "mynet.py")]


def test_ad_hoc_networks_warn_at_build_and_name_the_call_that_works(caplog, monkeypatch, capsys, tmp_path):
    needs_build()
    net = nd.Network(checkpoint(0), name="adhoc")
    x = net.input("input", (1, 1, 8, 8))
    net.output(net.linear(net.flatten(net.relu(net.conv2d(x, "conv", 4, kernel_size=3))), "fc", 3), "logits")
    with caplog.at_level(logging.WARNING, logger="netdef.build"):
        engine = nd.build(net)
    assert "assembled ad hoc" in caplog.text and "refit_plan_from_network" in caplog.text
    assert engine.metadata["definition"] is None
    with pytest.raises(RefitError, match="refit_plan_from_network"):
        from netdef.refit import refit_plan

        refit_plan(engine, checkpoint(1))
    path = engine.save(tmp_path / "adhoc.engine")
    np.save(tmp_path / "x.npy", np.zeros((1, 1, 8, 8), np.float32))
    capsys.readouterr()  # the build's warning, printed by a handler an earlier command installed
    code, _, err = netdef(monkeypatch, capsys, "run", path, "-i", tmp_path / "x.npy", "--executor", "reference")
    assert_clean_failure(code, err, "assembled ad hoc", "refit_plan_from_network(engine, network)")


def test_format_1_engines_are_still_read_and_defined_again(tmp_path, lenet_weights):
    needs_build()
    import architectures

    net = architectures.get("lenet").build_network(nd.Checkpoint.load(lenet_weights), batch=1)
    engine = nd.build(net)
    engine.metadata["definition"] = {"architecture": "lenet", "options": {}, "checkpoint": str(lenet_weights)}
    data = bytearray(engine.to_bytes())
    struct.pack_into("<I", data, 8, 1)
    old = Engine.from_bytes(bytes(data), source="v1.engine")
    record = record_of(old)
    assert record == DefinitionRecord("lenet", options={}, inputs={"input": [1, 1, 28, 28]},
                                      checkpoint=str(lenet_weights))  # fmt: skip
    again = redefine(old)
    assert {k: v.tobytes() for k, v in again.weights.items()} == {k: v.tobytes() for k, v in net.weights.items()}


# --------------------------------------------------------------------------------------- unused entries


def test_unused_entries_warn_everywhere_and_fail_with_strict(monkeypatch, capsys, project, tmp_path):
    extra = tmp_path / "extra.safetensors"
    write_safetensors({**checkpoint(0), "ema.conv.weight": np.zeros(3, np.float32)}, extra)
    spec = f"{project}/mynet.py:mynet"
    np.save(tmp_path / "x.npy", np.zeros((1, 1, 8, 8), np.float32))
    for command in (["explain", spec, "-w", extra], ["inspect", spec, "-w", extra],
                    ["run", spec, "-w", extra, "-i", tmp_path / "x.npy"],
                    ["compare", spec, "-w", extra, "--random", "1"]):  # fmt: skip
        code, _, err = netdef(monkeypatch, capsys, *command)
        assert code == 0, err
        assert err.count("entry 'ema.conv.weight' is not used by mynet_user") == 1, (command, err)
        code, _, err = netdef(monkeypatch, capsys, *command, "--strict")
        assert_clean_failure(code, err, "1 checkpoint entry is not used by mynet_user (--strict)", "'ema.conv.weight'")


# --------------------------------------------------------------------------------------- fingerprints


def test_fingerprint_is_memoised_until_the_file_changes(tmp_path, monkeypatch):
    path = tmp_path / "w.bin"
    path.write_bytes(b"abc" * 1000)
    first = fingerprint(path)
    assert first == {"size": 3000, "xxh3_128": xxhash.xxh3_128(b"abc" * 1000).hexdigest()}

    def no_reading(*args, **kwargs):
        raise AssertionError("an unchanged file was read again")

    monkeypatch.setattr("builtins.open", no_reading)
    assert fingerprint(path) == first
    monkeypatch.undo()
    path.write_bytes(b"abd" * 1000)
    os.utime(path, ns=(1, 1))
    assert fingerprint(path)["xxh3_128"] != first["xxh3_128"]
    assert "has changed since the engine was built" in str(changed_since(path, first))
    assert changed_since(path, None) is None


def test_a_fingerprint_recorded_by_an_older_engine_is_checked_with_its_own_digest(tmp_path):
    import hashlib

    path = tmp_path / "w.bin"
    path.write_bytes(b"abc" * 1000)
    legacy = {"size": 3000, "blake2b": hashlib.blake2b(b"abc" * 1000).hexdigest()}
    assert changed_since(path, legacy) is None
    path.write_bytes(b"abd" * 1000)
    os.utime(path, ns=(2, 2))
    assert "BLAKE2B digest differs" in str(changed_since(path, legacy))


def test_record_errors_name_every_reason(tmp_path):
    record = DefinitionRecord("nothing_registered_xyz", function="f", module="no_module_xyz",
                              checkpoint=str(tmp_path / "gone.safetensors"))  # fmt: skip
    with pytest.raises(DefinitionError) as info:
        redefine(record)
    assert len(info.value.problems) == 2
    assert "unknown architecture 'nothing_registered_xyz'" in str(info.value)
    assert "which is not a file here; give the checkpoint with --weights" in str(info.value)
    assert isinstance(info.value, NetdefError)


def test_calibrate_and_polygraphy_export_take_a_file_definition(monkeypatch, capsys, project, tmp_path):
    spec = f"{project}/mynet.py:mynet"
    code, out, err = netdef(
        monkeypatch, capsys, "calibrate", spec, "-w", project / "ck.safetensors", "--data", project / "x.npy",
        "-o", tmp_path / "cache.json", "--method", "max", "-O", "width=4", "-q",
    )  # fmt: skip
    assert code == 0, err
    assert "calibrated" in out and "-O width=4" in " ".join(out.split())
    from netdef.calibration import Calibration

    assert Calibration.load(tmp_path / "cache.json").architecture == "mynet_user"
    script = tmp_path / "net.py"
    code, out, err = netdef(
        monkeypatch, capsys, "export-polygraphy", spec, "-w", project / "ck.safetensors", "-o", script
    )
    assert code == 0, err
    import importlib.util

    loader = importlib.util.spec_from_file_location("exported_net", script)
    module = importlib.util.module_from_spec(loader)
    loader.loader.exec_module(module)
    _, network = module.load_network()
    assert network.get_input(0).shape == (1, 1, 8, 8) and network.num_outputs == 1

"""Nothing is imported that a command does not need: checked in a fresh process through ``sys.modules``.

ml_dtypes costs about a second per process (NumPy registering its ufunc loops) and is needed only
for bf16/fp8; torch only when the user asks for it; TensorRT not at all for commands that only read
checkpoints or list architectures; pydantic never (typer 0.29 validates every option through it, about
85 ms a command, so pyproject.toml keeps typer below 0.29).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LENET = ROOT / "weights" / "lenet_digits.safetensors"
WATCHED = ("ml_dtypes", "torch", "tensorrt_rtx", "tensorrt", "pydantic")

_PROBE = """
import json, sys
from netdef.cli import run_app
sys.argv = ["netdef", *json.loads(sys.argv[1])]
try:
    run_app()
except SystemExit as exc:
    code = exc.code
else:
    code = 0
print("MODULES=" + json.dumps({"code": code, **{m: m in sys.modules for m in WATCHED}}))
""".replace("WATCHED", repr(WATCHED))


def imported_by(*args: object) -> dict[str, bool]:
    """Run ``netdef ARGS`` in a fresh process; which watched modules it imported (and its exit code)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, json.dumps([str(a) for a in args])],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=300,
    )
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("MODULES=")), None)
    assert line is not None, done.stdout + done.stderr
    result = json.loads(line.removeprefix("MODULES="))
    assert result.pop("code") in (0, None), done.stdout + done.stderr
    return result


def test_an_fp16_build_imports_neither_ml_dtypes_nor_torch(tmp_path):
    modules = imported_by("build", "lenet", "-w", LENET, "-p", "fp16", "-o", tmp_path / "l.engine", "-q")
    assert not modules["ml_dtypes"], "an fp16 build imported ml_dtypes (needed for bf16/fp8 only)"
    assert not modules["torch"], "an fp16 build from .safetensors imported torch"
    assert modules["tensorrt_rtx"] or modules["tensorrt"]  # the probe sees imports: a build needs TensorRT
    assert not modules["pydantic"], "the command line imported pydantic (typer >= 0.29 does: see pyproject.toml)"


def test_a_bf16_build_does_import_ml_dtypes(tmp_path):
    pytest.importorskip("ml_dtypes", reason="bf16 needs ml_dtypes")
    modules = imported_by("build", "lenet", "-w", LENET, "-p", "bf16", "-o", tmp_path / "l.engine", "-q")
    assert modules["ml_dtypes"]


@pytest.mark.parametrize(
    "args",
    [
        ("--help",),
        ("list",),
        ("weights", LENET),
        ("convert", LENET, "-o", "{tmp}/l.npz"),
    ],
    ids=["help", "list", "weights", "convert"],
)
def test_commands_that_need_no_tensorrt_do_not_import_it(args, tmp_path):
    modules = imported_by(*(str(a).format(tmp=tmp_path) for a in args))
    assert not modules["tensorrt_rtx"] and not modules["tensorrt"], f"netdef {args[0]} imported TensorRT"
    assert not modules["torch"], f"netdef {args[0]} imported torch"
    assert not modules["ml_dtypes"], f"netdef {args[0]} imported ml_dtypes for an fp32 checkpoint"


def test_command_modules_keep_their_annotations_as_objects():
    """Typer reads every command's signature at each start; string annotations (the ``__future__`` import)
    would be evaluated one by one, about 40 ms a command."""
    with_strings = [
        path.name
        for path in sorted((ROOT / "netdef" / "cli").glob("*.py"))
        if ".command(" in path.read_text() and "from __future__ import annotations" in path.read_text()
    ]
    assert with_strings == []

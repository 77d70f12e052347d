"""Every TensorRT API name netdef uses exists in TensorRT 10's published type stubs.

The ``tensorrt`` backend cannot be installed here, so this is how it is checked: the source of
``netdef/`` and ``architectures/`` is parsed, and

* every ``trt.X`` / ``trt.X.Y`` chain must name a class or function ``X`` of the stubs and a
  member ``Y`` of ``X``;
* every other attribute ``obj.name`` whose name is a member of some class of the live backend
  module (so it is a TensorRT API name, e.g. ``add_convolution_nd``, ``stride_nd``) must be a
  member of some class of the stubs too.

Names a file only uses behind ``hasattr(obj, "name")`` / ``getattr(obj, "name", default)`` are
version-guarded and exempt. The stubs are installed by ``make install`` into
``.venv/tensorrt-stubs`` (outside site-packages, where their stub-only ``tensorrt`` package
would shadow a real TensorRT); ``NETDEF_TRT_STUBS`` may point elsewhere.
"""

from __future__ import annotations

import ast
import os
import re
from collections import defaultdict
from pathlib import Path

import pytest

from netdef.backend import trt

ROOT = Path(__file__).resolve().parents[1]

# Names newer than TensorRT 10 that netdef/backend.py (the one module allowed version branches)
# uses behind a feature check; each with where it is guarded.
BACKEND_ONLY = {
    "cuda_graph_strategy": "TensorRT-RTX runtime config: backend.create_execution_context, if HAS_NATIVE_CUDA_GRAPHS",
}
SOURCES = [ROOT / "netdef", ROOT / "architectures"]


def _stubs_file() -> Path | None:
    base = Path(os.environ.get("NETDEF_TRT_STUBS", ROOT / ".venv" / "tensorrt-stubs"))
    candidate = base / "tensorrt_bindings" / "tensorrt.pyi"
    return candidate if candidate.is_file() else None


@pytest.fixture(scope="module")
def stubs() -> dict[str, set[str]]:
    """Class name -> member names, and ``""`` -> module-level names, from the TensorRT 10 stubs."""
    path = _stubs_file()
    if path is None:
        pytest.skip("tensorrt-stubs not installed: run `make install` (it installs them into .venv/tensorrt-stubs)")
    # The stubs are not valid Python everywhere (e.g. a non-default argument after defaults in
    # add_scale_nd), so read their class structure line by line rather than with ast.
    members: dict[str, set[str]] = defaultdict(set)
    bases: dict[str, list[str]] = {}
    current = None
    in_docstring = False
    for line in path.read_text().splitlines():
        if line.count('"""') % 2:
            in_docstring = not in_docstring
            continue
        if in_docstring:
            continue
        if match := re.match(r"class (\w+)(?:\((.*)\))?:", line):
            current = match.group(1)
            members[""].add(current)
            bases[current] = [b.strip().split(".")[-1] for b in (match.group(2) or "").split(",") if b.strip()]
        elif match := re.match(r"(?:def|async def) (\w+)", line):
            members[""].add(match.group(1))
            current = None
        elif match := re.match(r"from \S+ import (\w+)(?: as (\w+))?$", line):
            members[""].add(match.group(2) or match.group(1))
        elif match := re.match(r"(\w+)\s*[:=]", line):
            members[""].add(match.group(1))
            current = None
        elif current and (match := re.match(r"    (?:def |async def |class )?(\w+)\s*[(:=]", line)):
            members[current].add(match.group(1))
    # Class members are inherited: ILayer's members are members of IConvolutionLayer too.
    for cls in bases:
        stack = list(bases[cls])
        while stack:
            base = stack.pop()
            members[cls] |= members.get(base, set())
            stack.extend(bases.get(base, []))
    return members


def _backend_api_names() -> set[str]:
    """Member names of every class of the live backend module: what counts as a TensorRT API name."""
    names: set[str] = set()
    for value in vars(trt).values():
        if isinstance(value, type):
            names.update(n for n in dir(value) if not n.startswith("_"))
    return names


def _trt_chain(node: ast.Attribute) -> list[str] | None:
    """``trt.A.B`` -> ["A", "B"]; None when the chain is not rooted at the name ``trt``."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if isinstance(node, ast.Name) and node.id == "trt":
        return parts[::-1]
    return None


def _guarded_names(tree: ast.AST) -> set[str]:
    guarded = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("hasattr", "getattr"):
            if len(node.args) >= 2 and isinstance(node.args[1], ast.Constant) and isinstance(node.args[1].value, str):
                guarded.add(node.args[1].value)
    return guarded


def _uses() -> list[tuple[Path, int, list[str] | str, set[str]]]:
    """(file, line, trt chain or plain attribute name, guarded names of that file) for every use."""
    uses = []
    for folder in SOURCES:
        for path in sorted(folder.rglob("*.py")):
            tree = ast.parse(path.read_text(), filename=str(path))
            guarded = _guarded_names(tree)
            chained: set[int] = set()
            for node in ast.walk(tree):
                if isinstance(node, ast.Attribute) and id(node) not in chained:
                    chain = _trt_chain(node)
                    if chain is not None:
                        uses.append((path, node.lineno, chain, guarded))
                        inner = node.value
                        while isinstance(inner, ast.Attribute):  # don't report trt.A of trt.A.B again
                            chained.add(id(inner))
                            inner = inner.value
                    elif not _is_trt_rooted(node):
                        uses.append((path, node.lineno, node.attr, guarded))
    return uses


def _is_trt_rooted(node: ast.Attribute) -> bool:
    while isinstance(node, ast.Attribute):
        node = node.value
    return isinstance(node, ast.Name) and node.id == "trt"


def test_sources_use_tensorrt():
    """Guard against the scan silently finding nothing (which would make the next test vacuous)."""
    chains = [u for u in _uses() if isinstance(u[2], list)]
    assert len(chains) > 20
    assert any(chain[:1] == ["BuilderFlag"] for _, _, chain, _ in chains)


def test_every_tensorrt_name_exists_in_tensorrt10_stubs(stubs):
    api_names = _backend_api_names()
    all_stub_members = set().union(*(m for cls, m in stubs.items() if cls))
    problems = []
    for path, line, use, guarded in _uses():
        where = f"{path.relative_to(ROOT)}:{line}"
        if path.name == "backend.py" and path.parent.name == "netdef":
            guarded = guarded | set(BACKEND_ONLY)
        if isinstance(use, list):
            head = use[0]
            if head in guarded or head.startswith("__"):
                continue
            if head not in stubs[""]:
                problems.append(f"{where}: trt.{head} is not in TensorRT 10's stubs")
            elif len(use) > 1 and use[1] not in guarded and not use[1].startswith("__"):
                cls_members = stubs.get(head, set())
                if cls_members and use[1] not in cls_members:
                    problems.append(f"{where}: trt.{head}.{use[1]} is not in TensorRT 10's stubs")
        elif use in api_names and use not in guarded and use not in all_stub_members:
            problems.append(f"{where}: .{use} is a TensorRT API name missing from TensorRT 10's stubs")
    assert not problems, "\n".join(problems)


def test_the_check_catches_a_missing_name(stubs):
    """The stubs lack TensorRT-RTX-only API (e.g. set_compute_capability): the check must see that."""
    all_stub_members = set().union(*(m for cls, m in stubs.items() if cls))
    assert "set_compute_capability" in _backend_api_names()
    assert "set_compute_capability" not in all_stub_members
    assert "add_convolution_nd" in all_stub_members
    assert "REFIT_INDIVIDUAL" in stubs["BuilderFlag"]

"""The library's import graph: no cycles in ``netdef/``, and no upward imports.

Every ``import`` statement counts, including those inside functions (a cycle hidden in a function
is still a cycle); only imports under ``if TYPE_CHECKING:`` are left out, since they never run.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIBRARY = ROOT / "netdef"


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@functools.cache
def library_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(LIBRARY.rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imported_names(path: Path, modules: dict[str, Path]) -> set[str]:
    """Every module ``path`` imports (absolute names; ``from a import b`` is ``a.b`` when that is a module)."""
    tree = ast.parse(path.read_text(), str(path))
    here = module_name(path)
    package = here if path.name == "__init__.py" else here.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base]) if base else ".".join(anchor)
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                found.add(candidate if candidate in modules else base)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


@functools.cache
def import_graph() -> dict[str, set[str]]:
    modules = library_modules()
    return {name: {m for m in imported_names(path, modules) if m in modules} - {name} for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def _is_package_init(name: str, target: str, modules: dict[str, Path]) -> bool:
    """``a.b`` importing its own package ``a`` (for ``__version__``) is not an edge back down."""
    return modules[target].name == "__init__.py" and name.startswith(target + ".")


def test_no_import_cycle_in_the_library():
    modules = library_modules()
    graph = {
        name: {t for t in targets if not _is_package_init(name, t, modules)} for name, targets in import_graph().items()
    }
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def subpackage(name: str, modules: dict[str, Path]) -> str:
    """``netdef.refit.plan`` -> ``netdef.refit``; a top-level module stands for itself."""
    parts = name.split(".")
    return ".".join(parts[:2]) if len(parts) > 2 or modules[name].name == "__init__.py" else name


def test_no_import_cycle_between_subpackages():
    """runtime may use refit or the reverse, not both: subpackages form layers too."""
    modules = library_modules()
    graph: dict[str, set[str]] = {}
    for name, targets in import_graph().items():
        group = subpackage(name, modules)
        graph.setdefault(group, set())
        graph[group] |= {subpackage(t, modules) for t in targets if not _is_package_init(name, t, modules)} - {group}
    graph.pop("netdef", None)  # the package itself only re-exports
    for targets in graph.values():
        targets.discard("netdef")
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle between subpackages: " + " -> ".join(cycle or [])


def test_the_library_core_never_imports_the_zoo():
    modules = library_modules()
    upward = [
        f"{name} imports {target}"
        for name, path in modules.items()
        if not name.startswith("netdef.cli")
        for target in sorted(imported_names(path, modules))
        if target == "architectures" or target.startswith("architectures.")
    ]
    assert not upward, "; ".join(upward)


def test_the_checker_sees_imports_inside_functions(tmp_path):
    """The walk itself: a function-level import counts, a TYPE_CHECKING one does not."""
    source = tmp_path / "netdef" / "x.py"
    source.parent.mkdir()
    source.write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import netdef.y\n"
        "def f():\n    import architectures\n    from netdef import z\n"
    )
    global ROOT
    saved, ROOT = ROOT, tmp_path
    try:
        names = imported_names(source, {"netdef.z": source})
    finally:
        ROOT = saved
    assert names == {"typing", "architectures", "netdef.z"}


def test_cycle_finder_reports_the_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None

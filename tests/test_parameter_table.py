"""``architectures/parameters.json``, the zoo's index (each architecture's module, and the parameter count
``netdef list`` shows), agrees with the definitions themselves."""

from __future__ import annotations

import json

import pytest

from architectures.registry import PARAMETERS, load_all
from netdef.definition import registered

load_all()
ZOO = sorted(a.name for a in registered() if a.define.__module__.startswith("architectures."))
INDEX = json.loads(PARAMETERS.read_text())
DECLARED = {name: entry["parameters"] for name, entry in INDEX.items()}
FAST = ["lenet", "resnet18", "mobilenet_v2"]
HINT = "run `python -m architectures.parameters` to rewrite architectures/parameters.json"


def test_every_zoo_architecture_has_a_declared_count_and_nothing_else_does():
    assert sorted(set(ZOO) - set(DECLARED)) == [], f"architectures without a declared parameter count; {HINT}"
    assert sorted(set(DECLARED) - set(ZOO)) == [], f"declared counts for unknown architectures; {HINT}"


def test_the_index_names_the_module_that_defines_each_architecture():
    wrong = {
        a.name: (INDEX[a.name]["module"], a.define.__module__)
        for a in registered()
        if a.name in INDEX and f"architectures.{INDEX[a.name]['module']}" != a.define.__module__
    }
    assert wrong == {}, f"(indexed, actual) modules differ; {HINT}"


def test_a_name_is_found_by_importing_its_module_alone():
    import subprocess
    import sys

    probe = (
        "import json, sys, architectures\n"
        "from netdef.definition import get\n"
        "get('resnet50')\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('architectures.'))))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    imported = set(json.loads(done.stdout))
    assert "architectures.resnet" in imported
    assert imported <= {"architectures.registry", "architectures.resnet", "architectures.common"}, imported


def _check(name: str) -> None:
    from netdef.definition import get

    counted = get(name).num_parameters(declared=False)
    assert DECLARED[name] == counted, f"{name}: declared {DECLARED[name]:,}, the definition reads {counted:,}; {HINT}"
    assert get(name).num_parameters() == DECLARED[name]


@pytest.mark.parametrize("name", [n for n in FAST if n in ZOO])
def test_declared_counts_match_the_definitions(name):
    _check(name)


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in ZOO if n not in FAST])
def test_declared_counts_match_the_definitions_everywhere(name):
    _check(name)


def test_options_other_than_the_defaults_are_counted_through_the_definition():
    from netdef.definition import get

    arch = get("resnet18")
    assert arch.num_parameters(num_classes=10) < arch.num_parameters()

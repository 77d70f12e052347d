"""``architectures/parameters.json`` (what ``netdef list`` shows) agrees with the definitions themselves."""

from __future__ import annotations

import json

import pytest

from architectures.registry import PARAMETERS, load_all
from netdef.definition import registered

load_all()
ZOO = sorted(a.name for a in registered() if a.define.__module__.startswith("architectures."))
DECLARED = json.loads(PARAMETERS.read_text())
FAST = ["lenet", "resnet18", "mobilenet_v2"]
HINT = "run `python -m architectures.parameters` to rewrite architectures/parameters.json"


def test_every_zoo_architecture_has_a_declared_count_and_nothing_else_does():
    assert sorted(set(ZOO) - set(DECLARED)) == [], f"architectures without a declared parameter count; {HINT}"
    assert sorted(set(DECLARED) - set(ZOO)) == [], f"declared counts for unknown architectures; {HINT}"


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

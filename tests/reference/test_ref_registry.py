"""The layer-type registry: every TensorRT layer type is supported or deliberately refused, and every entry has
what each consumer (executor, explain, inspect, graph pictures, the docs' coverage table) needs."""

from __future__ import annotations

from pathlib import Path

import pytest
from layer_catalog import BUILDERS, network_with

from netdef.backend import trt
from netdef.inspect import inspect_network, type_colour
from netdef.reference import describe_layer, refused_layer_types, semantics, supported_layer_types
from netdef.reference.costs import data_dependent
from netdef.reference.describe import coverage_table
from netdef.reference.readback import layer_type
from netdef.reference.registry import FAMILY_COLOURS, lookup

ALL_TYPES = list(trt.LayerType.__members__.values())
DOCS = Path(__file__).resolve().parents[2] / "docs" / "reference.md"


def test_every_layer_type_is_supported_or_deliberately_refused():
    supported, refused = set(supported_layer_types()), set(refused_layer_types())
    missing = [kind.name for kind in ALL_TYPES if kind not in supported and kind not in refused]
    assert not missing, f"layer types with neither reference semantics nor a deliberate refusal: {missing}"
    assert {kind.name for kind in refused} <= {"PLUGIN", "PLUGIN_V2", "PLUGIN_V3"}
    print(f"\n{len(supported)} of {len(ALL_TYPES)} layer types supported; refused unless registered: "
          f"{sorted(kind.name for kind in refused)}")  # fmt: skip


@pytest.mark.parametrize("kind", ALL_TYPES, ids=lambda kind: kind.name)
def test_every_entry_has_what_each_consumer_needs(kind):
    entry = lookup(kind)
    assert entry is not None
    assert entry.semantics and entry.doc.startswith(entry.semantics), "explain needs a one-line semantics"
    assert len(entry.doc.splitlines()) >= 1 and entry.semantics == semantics(kind)
    assert entry.family in FAMILY_COLOURS and entry.colour != "white", "graph pictures need a family colour"
    assert callable(entry.detail) and callable(entry.flops) and callable(entry.weights), "inspect needs its facts"
    assert issubclass(entry.layer_class, trt.ILayer)


@pytest.mark.parametrize("name", sorted(BUILDERS), ids=str)
def test_every_supported_type_runs_and_is_inspected_and_explained(name):
    kind = getattr(trt.LayerType, name)
    net = network_with(name)
    layers = [net.network.get_layer(i) for i in range(net.network.num_layers)]
    ours = [i for i, layer in enumerate(layers) if layer_type(layer) == kind]
    assert ours, f"the catalog network for {name} holds no {name} layer"
    summary = inspect_network(net.network)
    entry = lookup(kind)
    for index in ours:
        row = summary.layers[index]
        assert isinstance(row.detail, str) and isinstance(row.params, int)
        assert row.flops is not None or entry.flops is data_dependent, f"{name}: FLOPs unknown"
        assert type_colour(row.type) == entry.colour
        info = describe_layer(net.network.get_layer(index))
        assert info["semantics"] == entry.semantics and isinstance(info["params"], dict)
    net.run()  # every output's shape and dtype checked against TensorRT's inference


def test_catalog_covers_every_supported_type():
    assert {kind.name for kind in supported_layer_types()} == set(BUILDERS)


def test_docs_coverage_table_matches_the_registry():
    assert coverage_table() in DOCS.read_text(), "regenerate docs/reference.md's table with coverage_table()"
    for kind in supported_layer_types():
        assert f"| `{kind.name}` |" in coverage_table()

"""Definition checks and version diffs on their own (no services: pure functions)."""

from __future__ import annotations

from typing import Any

import pytest

from wfmon.model import WorkflowDefinition
from wfmon.workflows.diff import diff_definitions
from wfmon.workflows.errors import InvalidDefinition
from wfmon.workflows.validation import validate_definition

CONNECTIONS = {"pg-1": "postgresql", "redis-1": "redis"}


def problems(
    nodes: list[dict[str, Any]], edges: list[dict[str, str]] | None = None
) -> dict[str, str]:
    with pytest.raises(InvalidDefinition) as caught:
        validate_definition(
            {"id": "x", "name": "x", "nodes": nodes, "edges": edges or []},
            connections=CONNECTIONS,
        )
    return {p.field: p.message for p in caught.value.problems}


def test_component_checks_are_the_components_own() -> None:
    found = problems(
        [
            {"id": "named", "component": "postgresql-query", "connection_id": "pg-1",
             "config": {"sql": "SELECT :a, :b", "params": {"a": 1}}},
            {"id": "set", "component": "redis-command", "connection_id": "redis-1",
             "config": {"command": "set", "args": ["k", "v", "BOGUS"]}},
            {"id": "nested", "component": "cache-aside", "connection_id": "redis-1",
             "config": {"key": "k", "wrapped": {"component": "cache-aside"}}},
            {"id": "plain", "component": "transform", "connection_id": "pg-1"},
        ]
    )  # fmt: skip
    assert "sql uses :b but params has no 'b'" in found["nodes.0.config.params"]
    assert "SET option 'BOGUS' is not supported" in found["nodes.1.config.command"]
    assert "cannot wrap cache-aside" in found["nodes.2.config.wrapped.component"]
    assert "transform uses no connection" in found["nodes.3.connection_id"]


def test_an_accepted_definition_is_the_runtime_model_with_its_defaults() -> None:
    checked = validate_definition(
        {"nodes": [{"id": "a", "component": "transform"}]},
        connections={},
        fixed={"id": "wf", "name": "wf", "version": 4},
    )
    assert isinstance(checked, WorkflowDefinition) and checked.version == 4
    assert checked.nodes[0].retry_policy.describe() == "fail after 3 attempts, 1s apart"


def test_diff_ignores_order_and_names_each_setting() -> None:
    a = {"nodes": [{"id": "x", "component": "t", "config": {"sql": "1", "keep": True}},
                   {"id": "y", "component": "t"}],
         "edges": [{"source": "x", "target": "y"}]}  # fmt: skip
    b = {"nodes": [{"id": "y", "component": "t"},
                   {"id": "x", "component": "t", "config": {"sql": "2", "keep": True}}],
         "edges": [{"source": "x", "target": "y"}, {"source": "x", "target": "y"}]}  # fmt: skip
    d = diff_definitions(a, b, from_version=1, to_version=2)
    assert [
        (c.node_id, [(s.path, s.before, s.after) for s in c.changes]) for c in d.nodes_changed
    ] == [("x", [("config.sql", "1", "2")])]
    assert not (d.nodes_added or d.nodes_removed or d.edges_added or d.edges_removed)
    assert diff_definitions(a, a, from_version=1, to_version=1).unchanged

"""The structural JSON diff (wfmon.compare.diff) and the definition diff (wfmon.compare.runs)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from wfmon.compare.diff import (
    MISSING,
    Change,
    diff,
    diff_capped,
    format_path,
    preview,
)
from wfmon.compare.runs import NodeRun, compare_nodes, diff_definitions
from wfmon.model import WorkflowDefinition


def test_equal_documents_have_no_changes() -> None:
    doc = {"a": [1, {"b": None}], "c": "x", "d": 1.5, "e": True}
    assert diff(doc, json.loads(json.dumps(doc))) == []
    assert diff(None, None) == []
    assert diff(1, 1.0) == [], "1 and 1.0 are the same JSON number"


def test_changed_added_removed_with_paths_and_values() -> None:
    old = {"order": 1, "items": [{"price": 5}], "gone": "x"}
    new = {"order": 2, "items": [{"price": 5, "qty": 2}], "extra": [1]}
    assert diff(old, new) == [
        Change(("order",), "changed", 1, 2),
        Change(("items", 0, "qty"), "added", MISSING, 2),
        Change(("gone",), "removed", "x", MISSING),
        Change(("extra",), "added", MISSING, [1]),
    ]


def test_type_changes_including_null_and_booleans_against_numbers() -> None:
    assert diff({"a": None}, {"a": 3}) == [Change(("a",), "type_changed", None, 3)]
    assert diff({"a": {"x": 1}}, {"a": [1]}) == [Change(("a",), "type_changed", {"x": 1}, [1])]
    # Python says True == 1; JSON does not.
    assert diff({"a": True}, {"a": 1}) == [Change(("a",), "type_changed", True, 1)]
    assert diff([True], [1]) == [Change((0,), "type_changed", True, 1)]
    assert diff(1, "1") == [Change((), "type_changed", 1, "1")]


def test_lists_are_compared_by_index() -> None:
    assert diff([1, 2, 3], [1, 9]) == [
        Change((1,), "changed", 2, 9),
        Change((2,), "removed", 3, MISSING),
    ]
    assert diff([], ["a", "b"]) == [
        Change((0,), "added", MISSING, "a"),
        Change((1,), "added", MISSING, "b"),
    ]
    # An insertion at the front shifts every index (documented: no alignment).
    assert [c.path for c in diff(["b", "c"], ["a", "b", "c"])] == [(0,), (1,), (2,)]


def test_changes_come_in_document_order() -> None:
    old = {"a": {"x": 1, "y": 1}, "b": [0, {"z": 1}], "c": 1}
    new = {"a": {"x": 2, "y": 2}, "b": [1, {"z": 2}], "c": 2}
    assert [c.path for c in diff(old, new)] == [
        ("a", "x"),
        ("a", "y"),
        ("b", 0),
        ("b", 1, "z"),
        ("c",),
    ]


def test_deep_documents_do_not_hit_the_recursion_limit() -> None:
    old: Any = 1
    new: Any = 2
    for _ in range(5000):
        old, new = {"k": old}, {"k": new}
    (change,) = diff(old, new)
    assert len(change.path) == 5000 and change.kind == "changed"


def test_capped_output_counts_the_rest() -> None:
    old = {f"k{i}": i for i in range(1000)}
    new = {f"k{i}": i + 1 for i in range(1000)}
    capped = diff_capped(old, new, limit=200)
    assert len(capped.changes) == 200 and capped.total == 1000 and capped.omitted == 800
    assert capped.changes[0].path == ("k0",) and capped.changes[-1].path == ("k199",)
    assert diff_capped(old, old).total == 0


def test_preview_truncates_values_but_paths_stay_whole() -> None:
    long_key = "k" * 500
    (change,) = diff({long_key: "a" * 1000}, {long_key: "b"})
    assert change.path == (long_key,)
    value, cut = preview(change.old)
    assert cut and len(value) == 201 and value.endswith("…")
    assert preview(change.new) == ("b", False)
    value, cut = preview(list(range(1000)))
    assert cut and isinstance(value, str) and value.startswith("[0,1,2")
    assert preview({"a": 1}) == ({"a": 1}, False)
    assert preview(None) == (None, False)


def test_format_path() -> None:
    assert format_path(()) == "$"
    assert format_path(("items", 0, "price")) == "items[0].price"
    assert format_path((0, "a")) == "[0].a"
    assert format_path(("a.b", "c d")) == '["a.b"]["c d"]'


def test_5000_nodes_where_every_tenth_differs() -> None:
    """5,000 nodes' inputs and outputs where every tenth differs: exactly those are changed.
    (How fast is bench/bench_compare.py's to measure, against a baseline in the same run:
    a time bound here failed CI on a loaded machine.)"""
    base = [
        NodeRun(
            f"n{i}",
            "completed",
            input_json=json.dumps({"i": i, "text": "x" * 200, "nested": {"a": [1, 2, 3]}}),
            output_json=json.dumps({"i": i, "ok": True}),
        )
        for i in range(5000)
    ]
    cur = [
        NodeRun(
            f"n{i}",
            "completed" if i % 10 else "failed",
            input_json=json.dumps(
                {"i": i, "text": "x" * 200, "nested": {"a": [1, 2, 3 if i % 10 else 4]}}
            ),
            output_json=json.dumps({"i": i, "ok": bool(i % 10)}),
        )
        for i in range(5000)
    ]
    result = compare_nodes(base, cur)
    changed = [c for c in result if c.changed]
    assert len(changed) == 500
    assert changed[0].input_diff.changes == [Change(("nested", "a", 2), "changed", 3, 4)]
    assert changed[0].output_diff.changes == [Change(("ok",), "changed", True, False)]


def _definition(version: int, **node_b: Any) -> WorkflowDefinition:
    return WorkflowDefinition.model_validate(
        {
            "id": "w",
            "name": "w",
            "version": version,
            "nodes": [
                {"id": "a", "component": "transform", "config": {"set": {"x": 1}}},
                {"id": "b", "component": "flaky", **node_b},
            ],
            "edges": [{"source": "a", "target": "b"}],
        }
    )


def test_definition_diff_names_node_settings_and_edges() -> None:
    old = _definition(1, retry_policy={"strategy": "fail_after_attempts", "max_attempts": 3})
    new = WorkflowDefinition.model_validate(
        {
            "id": "w",
            "name": "w",
            "version": 2,
            "nodes": [
                {"id": "a", "component": "transform", "config": {"set": {"x": 2}}},
                {
                    "id": "b",
                    "component": "flaky",
                    "retry_policy": {"strategy": "fail_after_attempts", "max_attempts": 5},
                },
                {"id": "c", "component": "transform"},
            ],
            "edges": [{"source": "a", "target": "c"}],
        }
    )
    d = diff_definitions(old, new)
    assert (d.old_version, d.new_version) == (1, 2)
    assert d.nodes_added == ["c"] and d.nodes_removed == []
    assert d.edges_added == [("a", "c")] and d.edges_removed == [("a", "b")]
    by = {(s.node_id, s.setting): s for s in d.settings}
    assert set(by) == {("a", "config"), ("b", "retry_policy")}
    assert by["a", "config"].changes == [Change(("set", "x"), "changed", 1, 2)]
    rp = by["b", "retry_policy"]
    assert rp.changes == [Change(("max_attempts",), "changed", 3, 5)]
    assert rp.old_text == "fail after 3 attempts, 1s apart"
    assert rp.new_text == "fail after 5 attempts, 1s apart"
    assert d.changed and not diff_definitions(old, old).changed


def test_definition_diff_fills_defaults_before_comparing() -> None:
    spelled = _definition(2, retry_policy={"strategy": "fail_after_attempts", "max_attempts": 3})
    implicit = _definition(1)
    assert diff_definitions(implicit, spelled).settings == []


@pytest.mark.parametrize("kind", ["baseline_only", "current_only"])
def test_nodes_that_ran_in_only_one_run(kind: str) -> None:
    one = [NodeRun("a", "completed"), NodeRun("b", "completed")]
    other = [NodeRun("a", "completed")]
    base, cur = (one, other) if kind == "baseline_only" else (other, one)
    result = {c.node_id: c for c in compare_nodes(base, cur)}
    assert result["b"].presence == kind and result["b"].changed
    assert result["a"].presence == "both" and not result["a"].changed

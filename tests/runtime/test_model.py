"""Definitions, retry policies and their one mapping to Temporal."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import temporalio.common
from pydantic import ValidationError

from wfmon.model import (
    ExponentialBackoff,
    FailAfterAttempts,
    KeepTrying,
    NoRetries,
    WorkflowDefinition,
    format_duration,
    parse_duration,
)


def definition(
    nodes: list[dict[str, Any]], edges: list[dict[str, str]] | None = None
) -> WorkflowDefinition:
    return WorkflowDefinition.model_validate(
        {"id": "w", "name": "W", "nodes": nodes, "edges": edges or []}
    )


def error_of(nodes: list[dict[str, Any]], edges: list[dict[str, str]] | None = None) -> str:
    with pytest.raises(ValidationError) as info:
        definition(nodes, edges)
    (err,) = info.value.errors()
    return ".".join(str(p) for p in err["loc"]) + ": " + str(err["msg"])


def test_every_strategy_maps_to_one_temporal_policy() -> None:
    s = timedelta(seconds=1)
    assert KeepTrying().to_temporal() == temporalio.common.RetryPolicy(
        initial_interval=s, backoff_coefficient=1.0, maximum_interval=s, maximum_attempts=0
    )
    quarter = timedelta(milliseconds=250)
    assert FailAfterAttempts(max_attempts=4, interval=quarter).to_temporal(["Bad"]) == (
        temporalio.common.RetryPolicy(
            initial_interval=timedelta(milliseconds=250),
            backoff_coefficient=1.0,
            maximum_interval=timedelta(milliseconds=250),
            maximum_attempts=4,
            non_retryable_error_types=["Bad"],
        )
    )
    # Exponential defaults are Temporal's own defaults.
    assert ExponentialBackoff().to_temporal() == temporalio.common.RetryPolicy(
        initial_interval=s,
        backoff_coefficient=2.0,
        maximum_interval=timedelta(seconds=100),
        maximum_attempts=0,
    )
    assert NoRetries().to_temporal().maximum_attempts == 1
    node = definition([{"id": "a", "component": "flaky"}]).nodes[0]
    assert node.temporal_retry_policy().maximum_attempts == 3  # documented default policy


def test_policies_read_as_sentences() -> None:
    assert FailAfterAttempts(max_attempts=3).describe() == "fail after 3 attempts, 1s apart"
    assert FailAfterAttempts(max_attempts=3).attempt_label(2) == "attempt 2 of 3"
    assert KeepTrying(interval=timedelta(seconds=90)).describe() == (
        "keep trying until success, every 1m30s"
    )
    assert KeepTrying().attempt_label(7) == "attempt 7"
    assert NoRetries().attempt_label(1) == "attempt 1 of 1"
    assert ExponentialBackoff(max_attempts=5).describe() == (
        "fail after 5 attempts, waiting 1s then x2 per retry, at most 1m40s"
    )


@pytest.mark.parametrize(
    ("node", "expected"),
    [
        (
            {"retry_policy": {"strategy": "exponential_backoff", "initial_interval": "5 parsecs"}},
            "nodes.0.retry_policy.exponential_backoff.initial_interval: Value error, '5 parsecs' "
            "is not a duration",
        ),
        (
            {"retry_policy": {"strategy": "fail_after_attempts", "max_attempts": -1}},
            "nodes.0.retry_policy.fail_after_attempts.max_attempts: Input should be greater than "
            "or equal to 1",
        ),
        (
            {"retry_policy": {"strategy": "sometimes"}},
            "nodes.0.retry_policy: Input tag 'sometimes' found using 'strategy' does not match",
        ),
        (
            {"timeouts": {"start_to_close": "-3s"}},
            "nodes.0.timeouts.start_to_close: Value error, '-3s' is not a duration",
        ),
        (
            {"timeouts": {"heartbeat": -1}},
            "nodes.0.timeouts.heartbeat: Value error, a duration cannot be negative",
        ),
        (
            {"retry_policy": {"strategy": "keep_trying", "tries": 3}},
            "nodes.0.retry_policy.keep_trying.tries: Extra inputs are not permitted",
        ),
    ],
)
def test_bad_policies_and_timeouts_name_the_field(node: dict[str, Any], expected: str) -> None:
    assert error_of([{"id": "a", "component": "flaky", **node}]).startswith(expected)


def test_graph_errors_name_the_field() -> None:
    a, b = {"id": "a", "component": "t"}, {"id": "b", "component": "t"}
    assert "nodes.1.id: duplicate node id 'a'" in error_of([a, a])
    assert "edges.0.target: unknown node 'zz'" in error_of([a], [{"source": "a", "target": "zz"}])
    assert "edges: the graph has a cycle through nodes ['a', 'b']" in error_of(
        [a, b], [{"source": "a", "target": "b"}, {"source": "b", "target": "a"}]
    )


def test_topological_order_is_stable_and_respects_edges() -> None:
    d = definition(
        [{"id": i, "component": "t"} for i in ("c", "a", "b", "d")],
        [{"source": "d", "target": "c"}, {"source": "a", "target": "b"}],
    )
    assert [n.id for n in d.topological_order()] == ["a", "b", "d", "c"]
    assert d.upstream("c") == ["d"]


def test_upstream_keeps_edge_order_without_repeats() -> None:
    d = definition(
        [{"id": i, "component": "t"} for i in ("x", "y", "z")],
        [
            {"source": "y", "target": "z"},
            {"source": "x", "target": "z"},
            {"source": "y", "target": "z"},
        ],
    )
    assert d.upstream("z") == ["y", "x"]
    assert d.upstream("x") == [] and d.upstream("missing") == []
    node = d.node("y")
    assert node is not None and node.id == "y" and d.node("missing") is None


def test_definitions_round_trip_through_json() -> None:
    d = definition(
        [
            {
                "id": "a",
                "component": "sleep",
                "timeouts": {"start_to_close": 90},
                "retry_policy": {"strategy": "keep_trying", "interval": "0.5s"},
            }
        ]
    )
    text = d.model_dump_json()
    assert '"start_to_close":"1m30s"' in text and '"interval":"500ms"' in text
    assert WorkflowDefinition.model_validate_json(text) == d


def test_durations() -> None:
    assert parse_duration("1h30m") == timedelta(minutes=90)
    assert parse_duration(" 1m 30s ") == timedelta(seconds=90)
    assert parse_duration(2.5) == timedelta(seconds=2.5)
    assert format_duration(timedelta(days=1, milliseconds=5)) == "1d5ms"
    for bad in ("", "5", "5 parsecs", "1s2", True, None):
        with pytest.raises(ValueError):
            parse_duration(bad)

"""The search box's language: what each term means, and bad input named with its position."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from wfmon.model.vocabulary import FAILURE_STATUSES, ExecutionStatus
from wfmon.search.query import (
    JsonMatch,
    JsonSide,
    SearchSyntaxError,
    TextMatch,
    parse_search,
)

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def test_fields_phrases_and_free_text() -> None:
    q = parse_search(
        "status:failed workflow:checkout node:charge component:postgresql-query "
        'error:"card declined" timeout',
        now=NOW,
    )
    assert q.statuses == {ExecutionStatus.FAILED}
    assert q.workflows == ["checkout"] and q.nodes == ["charge"]
    assert q.components == ["postgresql-query"]
    assert q.texts == [
        TextMatch("card declined", in_errors=True, in_inputs=False, in_outputs=False),
        TextMatch("timeout"),
    ]
    assert q.looks_into_components and not q.is_empty


def test_status_failure_means_every_failure_status() -> None:
    assert parse_search("status:failure").statuses == set(FAILURE_STATUSES)
    assert parse_search("status:FAILED status:running").statuses == {
        ExecutionStatus.FAILED,
        ExecutionStatus.RUNNING,
    }


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ('input.order_id:"A-17"', JsonMatch(JsonSide.INPUT, ("order_id",), "A-17")),
        ('order_id = "A-17"', JsonMatch(JsonSide.EITHER, ("order_id",), "A-17")),
        ("output.customer.id = 42", JsonMatch(JsonSide.OUTPUT, ("customer", "id"), 42)),
        ('output.customer.id:"42"', JsonMatch(JsonSide.OUTPUT, ("customer", "id"), "42")),
        ("input.items.0.sku:ab-1", JsonMatch(JsonSide.INPUT, ("items", "0", "sku"), "ab-1")),
        ("input.paid:true", JsonMatch(JsonSide.INPUT, ("paid",), True)),
        ("input.note=null", JsonMatch(JsonSide.INPUT, ("note",), None)),
    ],
)
def test_json_paths(query: str, expected: JsonMatch) -> None:
    assert parse_search(query).json == [expected]


def test_times_absolute_relative_and_ranges() -> None:
    q = parse_search("since:7d until:2026-12-01T10:00", now=NOW)
    assert q.started_from == NOW - timedelta(days=7)
    assert q.started_before == datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
    q = parse_search("time:2026-11-01..2026-11-02", now=NOW)
    assert (q.started_from, q.started_before) == (
        datetime(2026, 11, 1, tzinfo=UTC),
        datetime(2026, 11, 2, tzinfo=UTC),
    )
    assert parse_search("time:2026-11-01..", now=NOW).started_before is None
    # Two lower bounds: the later one wins (AND).
    assert parse_search("since:2026-11-01 since:3d", now=NOW).started_from == NOW - timedelta(
        days=3
    )


def test_escaped_quotes_inside_a_phrase() -> None:
    assert parse_search(r'error:"said \"no\""').texts[0].text == 'said "no"'


@pytest.mark.parametrize(
    ("query", "problem", "position"),
    [
        ("stauts:failed", "unknown field 'stauts'", 1),
        ("status:broken", "unknown status 'broken'", 8),
        ('error:"card declined', "a quote is not closed", 7),
        ("since:yesterday", "'yesterday' is not a time", 7),
        ("time:2026-11-02..2026-11-01", "the time range ends before it starts", 1),
        ("time:2026-11-01", "time needs a range", 6),
        ("error:ab", "at least 3 characters", 7),
        ("node:", "'node:' needs a value", 6),
        ("= 5", "'=' needs a path", 1),
        ("input.order_id =", "needs a value", 16),
        ("input. = 3", "needs a key", 1),
        ("input.a b = 3", "'input.a' needs a value", 1),
        ('input.we!rd:"x"', "'we!rd' is not a key", 1),
        (":value", "needs a field name", 1),
    ],
)
def test_bad_queries_name_the_problem_and_where(query: str, problem: str, position: int) -> None:
    with pytest.raises(SearchSyntaxError) as err:
        parse_search(query, now=NOW)
    assert problem in str(err.value)
    assert f"at position {position}" in str(err.value), str(err.value)


def test_limits() -> None:
    with pytest.raises(SearchSyntaxError, match="longer than"):
        parse_search("x" * 2001)
    with pytest.raises(SearchSyntaxError, match="more than 32 terms"):
        parse_search(" ".join(f"node:n{i}" for i in range(33)))


def test_an_empty_query_is_empty() -> None:
    assert parse_search("   ").is_empty

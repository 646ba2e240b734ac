"""postgresql-query end to end: a builder workflow on the real Temporal dev server runs
queries on a real PostgreSQL through a project connection resolved on the worker."""

from __future__ import annotations

import logging

import pytest

from tests.components.conftest import Runner, World, node


def test_positional_and_named_params_and_json_safe_rows(run_nodes: Runner, world: World) -> None:
    out = run_nodes(
        [
            node(
                "by_id",
                "postgresql-query",
                {
                    "sql": "SELECT * FROM items WHERE id = $1",
                    "params": [{"path": "workflow.item"}],
                },
                world.pg,
            ),
            node(
                "named",
                "postgresql-query",
                {
                    "sql": "SELECT name, :label::text AS label, ':not_a_param' AS lit "
                    "FROM items WHERE name = :name OR id = :id ORDER BY id",
                    "params": {"name": {"path": "workflow.name"}, "id": 2, "label": "x"},
                },
                world.pg,
            ),
        ],
        workflow_input={"item": 1, "name": "apple"},
    )
    row = out.output("by_id")["rows"][0]
    assert row == {
        "id": 1,
        "name": "apple",
        "price": "1.2500",
        "created": "2026-01-02T03:04:05+00:00",
        "day": "2026-01-02",
        "ref": "6f1c1c1e-8f5e-4a53-9a7b-0d1c2b3a4f5e",
        "blob": {"base64": "AP8Q"},
        "doc": {"tags": ["red"]},
        "span": 5400.0,
        "addr": "10.1.2.3",
    }
    assert out.output("by_id")["columns"][:3] == ["id", "name", "price"]
    named = out.output("named")
    assert [r["name"] for r in named["rows"]] == ["apple", "pear"]
    assert named["rows"][0]["label"] == "x" and named["rows"][0]["lit"] == ":not_a_param"
    for secret in world.secrets:
        assert secret not in out.history_json


def test_row_cap_and_writes(run_nodes: Runner, world: World) -> None:
    out = run_nodes(
        [
            node(
                "capped",
                "postgresql-query",
                {"sql": "SELECT id FROM items ORDER BY id", "max_rows": 5},
                world.pg,
            ),
            node(
                "write",
                "postgresql-query",
                {
                    "sql": "UPDATE items SET price = price WHERE id <= $1",
                    "params": [3],
                },
                world.pg,
            ),
        ]
    )
    capped = out.output("capped")
    assert capped["row_count"] == 5 and capped["truncated"] is True
    assert [r["id"] for r in capped["rows"]] == [1, 2, 3, 4, 5]
    assert out.output("write") == {"columns": [], "rows": [], "row_count": 3, "truncated": False}


def test_bad_sql_fails_once_not_retried(
    run_nodes: Runner, world: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    out = run_nodes([node("bad", "postgresql-query", {"sql": "SELEC 1"}, world.pg, attempts=3)])
    assert out.error is not None and out.error.type == "SqlError"
    assert out.error.non_retryable
    assert "syntax error" in out.error.message
    assert out.attempts == {"bad": 1}
    for secret in world.secrets:
        assert secret not in out.history_json
        assert secret not in caplog.text  # worker, SDK and driver logs included


def test_read_only_and_statement_timeout(run_nodes: Runner, world: World) -> None:
    ro = run_nodes(
        [
            node(
                "ro",
                "postgresql-query",
                {
                    "sql": "DELETE FROM items",
                    "read_only": True,
                },
                world.pg,
                attempts=1,
            )
        ]
    )
    assert ro.error is not None and ro.error.type == "SqlError"
    assert "read-only transaction" in ro.error.message
    slow = run_nodes(
        [
            node(
                "slow",
                "postgresql-query",
                {
                    "sql": "SELECT pg_sleep(5)",
                    "statement_timeout_ms": 100,
                },
                world.pg,
                attempts=1,
            )
        ]
    )
    assert slow.error is not None and slow.error.type == "SqlTimeout"
    assert not slow.error.non_retryable  # a timeout may pass: the node's policy decides


def test_bad_config_and_foreign_connection(run_nodes: Runner, world: World) -> None:
    out = run_nodes(
        [
            node(
                "mismatch",
                "postgresql-query",
                {"sql": "SELECT $1, $2", "params": [1]},
                world.pg,
                attempts=3,
            ),
        ]
    )
    assert out.error is not None and out.error.type == "InvalidConfig"
    assert "2 positional parameter(s) but params has 1" in out.error.message
    assert out.attempts == {"mismatch": 1}
    # A redis connection where a postgres one is needed, and another project's connection.
    wrong = run_nodes([node("w", "postgresql-query", {"sql": "SELECT 1"}, world.redis)])
    assert wrong.error is not None and "is redis, not postgresql" in wrong.error.message
    theirs = run_nodes([node("t", "redis-command", {"command": "PING"}, world.other_redis)])
    assert theirs.error is not None and theirs.error.type == "ConnectionNotFound"
    assert theirs.attempts == {"t": 1}

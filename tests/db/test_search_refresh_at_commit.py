"""Migration 0540: the search refresh moved to commit for writers that ask for it (the sync),
and the cheaper path-term walk giving 0401's terms exactly."""

from __future__ import annotations

import re
from uuid import UUID

from psycopg.types.json import Jsonb

from wfmon.db import Database, DbConnection
from wfmon.db import sync as sync_rows
from wfmon.db.executions import replace_component_executions, upsert_execution
from wfmon.db.rows import ComponentExecutionRow
from wfmon.migrate import MIGRATIONS_DIR

from .conftest import World, execution_row


def _component(sku: str) -> ComponentExecutionRow:
    return ComponentExecutionRow(
        node_id="pick", scheduled_event_id=5, status="completed", input_data={"sku": sku}
    )


def _state(conn: DbConnection, execution_id: UUID) -> tuple[list[int] | None, set[int]]:
    doc = conn.execute(
        "SELECT terms FROM execution_search_documents WHERE execution_id = %s", (execution_id,)
    ).fetchone()
    rows = conn.execute(
        "SELECT term FROM execution_search_terms WHERE execution_id = %s", (execution_id,)
    )
    return (doc["terms"] if doc else None), {int(r["term"]) for r in rows}


def _term(conn: DbConnection, body: str) -> int:
    row = conn.execute("SELECT wfmon_search_term('i', %s) AS t", (body,)).fetchone()
    assert row is not None
    return int(row["t"])


def test_commit_mode_refreshes_once_at_commit(fresh_db: Database, world: World) -> None:
    row = execution_row("at-commit", created_by=world.ids["A"], project_id=world.ids["pa"])
    with fresh_db.as_system() as conn:
        # The sync's first statement asks for the refresh at commit (no row yet: None).
        assert sync_rows.lock_for_sync_write(conn, "default", "at-commit", "r", "o") is None
        execution_id = upsert_execution(conn, row)
        replace_component_executions(conn, execution_id, [_component("S-1")])
        # Nothing refreshed before the commit.
        assert _state(conn, execution_id) == (None, set())
    with fresh_db.as_system() as conn:
        terms, rows = _state(conn, execution_id)
        assert terms is not None and set(terms) == rows
        assert _term(conn, "sku=sS-1") in rows
    with fresh_db.as_system() as conn:
        sync_rows.lock_for_sync_write(conn, "default", "at-commit", row.temporal_run_id, "o")
        replace_component_executions(conn, execution_id, [_component("S-2")])
        replace_component_executions(conn, execution_id, [_component("S-3")])
        assert _term(conn, "sku=sS-1") in _state(conn, execution_id)[1]  # still the old ones
    with fresh_db.as_system() as conn:
        terms, rows = _state(conn, execution_id)
        assert terms is not None and set(terms) == rows
        assert _term(conn, "sku=sS-3") in rows
        assert not {_term(conn, "sku=sS-1"), _term(conn, "sku=sS-2")} & rows
        # Without the setting, a writer reads its own writes at once, as before 0540.
        replace_component_executions(conn, execution_id, [_component("S-4")])
        assert _term(conn, "sku=sS-4") in _state(conn, execution_id)[1]


def test_a_rolled_back_savepoint_queues_nothing(fresh_db: Database, world: World) -> None:
    row = execution_row("at-commit-rb", created_by=world.ids["A"], project_id=world.ids["pa"])
    with fresh_db.as_system() as conn:
        sync_rows.lock_for_sync_write(conn, "default", "x", "y", "o")
        execution_id = upsert_execution(conn, row)
        replace_component_executions(conn, execution_id, [_component("S-5")])
        try:
            with conn.transaction():
                replace_component_executions(conn, execution_id, [_component("S-6")])
                raise RuntimeError("roll the savepoint back")
        except RuntimeError:
            pass
    with fresh_db.as_system() as conn:
        rows = _state(conn, execution_id)[1]
        assert _term(conn, "sku=sS-5") in rows and _term(conn, "sku=sS-6") not in rows


_DOCS = [
    [{"a": {"b": [1, 2.50, {"c": None}]}, "d.e": True, "": "empty key"}],
    [[1, [2, [3]]], "top", 7, None, {}, []],
    [{"items": [{"sku": "S-1", "qty": 1}, {"sku": "S-1", "qty": 1.0}]}, {"x": "ü ñ"}],
    [{"0": {"1": [{"2": False}]}}, {"0": {"1": [{"2": False}]}}],
    [],
]


def test_the_walk_gives_0401s_bodies(fresh_db: Database) -> None:
    text = (MIGRATIONS_DIR / "0401_search_terms.sql").read_text()
    found = re.search(
        r"CREATE FUNCTION public\.wfmon_json_leaf_bodies\(docs jsonb\).*?\n\$\$;", text, re.S
    )
    assert found is not None
    old = found.group(0).replace(
        "CREATE FUNCTION public.wfmon_json_leaf_bodies", "CREATE FUNCTION pg_temp.bodies_0401"
    )
    with fresh_db.as_system() as conn:
        conn.execute(old)
        for doc in _DOCS:
            new = conn.execute(
                "SELECT array(SELECT x FROM wfmon_json_leaf_bodies(%s) x ORDER BY x) AS b",
                (Jsonb(doc),),
            ).fetchone()
            ref = conn.execute(
                "SELECT array(SELECT x FROM pg_temp.bodies_0401(%s) x ORDER BY x) AS b",
                (Jsonb(doc),),
            ).fetchone()
            assert new is not None and ref is not None
            assert new["b"] == ref["b"], doc
        assert len(new["b"]) == 0
        many = conn.execute(
            "SELECT count(*) AS n FROM wfmon_json_leaf_bodies(%s)", (Jsonb(_DOCS[0]),)
        ).fetchone()
        assert many is not None and many["n"] == 5

"""The query functions in wfmon.db, against real PostgreSQL, in the roles that use them."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from uuid import UUID

import psycopg
import pytest

from wfmon.db import Database
from wfmon.db.accounts import save_workflow_version
from wfmon.db.executions import (
    insert_attempts,
    mark_history_sync_failed,
    mark_history_synced,
    page_executions,
    replace_component_executions,
    upsert_execution,
)
from wfmon.db.rows import DISCOVERED_PROJECT_ID, AttemptRow, ComponentExecutionRow
from wfmon.db.statistics import get_project_statistics, get_workflow_statistics

from .conftest import T0, World, execution_row


def component_rows(n: int, status: str = "completed") -> list[ComponentExecutionRow]:
    return [
        ComponentExecutionRow(
            node_id=f"node-{i}",
            scheduled_event_id=10 + i,
            status=status,  # type: ignore[arg-type]
            started_at=T0,
            completed_at=T0 + timedelta(milliseconds=5),
            duration_ms=5,
            input_data={"i": i, "nested": [1, "two", None]},
            output_data=None,
            retry_policy={"maximum_attempts": 3},
        )
        for i in range(n)
    ]


def stored_components(db: Database, execution_id: UUID) -> list[tuple[str, str, object]]:
    with db.as_system() as conn:
        return [
            (r["node_id"], r["status"], r["input_data"])
            for r in conn.execute(
                "SELECT node_id, status, input_data FROM component_executions"
                " WHERE workflow_execution_id = %s ORDER BY scheduled_event_id",
                (execution_id,),
            )
        ]


@pytest.fixture
def execution_id(fresh_db: Database, world: World, request: pytest.FixtureRequest) -> UUID:
    with fresh_db.as_system() as conn:
        return upsert_execution(
            conn,
            execution_row(
                f"q-{request.node.name}", created_by=world.ids["A"], project_id=world.ids["pa"]
            ),
        )


# -- replace_component_executions ---------------------------------------------------------


def test_replace_twice_gives_no_duplicates(fresh_db: Database, execution_id: UUID) -> None:
    for _ in range(2):
        with fresh_db.as_system() as conn:
            assert replace_component_executions(conn, execution_id, component_rows(3)) == 3
    stored = stored_components(fresh_db, execution_id)
    assert [s[0] for s in stored] == ["node-0", "node-1", "node-2"]
    assert stored[1][2] == {"i": 1, "nested": [1, "two", None]}


def test_replace_swaps_the_whole_set(fresh_db: Database, execution_id: UUID) -> None:
    with fresh_db.as_system() as conn:
        replace_component_executions(conn, execution_id, component_rows(3))
    with fresh_db.as_system() as conn:
        replace_component_executions(conn, execution_id, component_rows(1, status="failed"))
    assert stored_components(fresh_db, execution_id) == [
        ("node-0", "failed", {"i": 0, "nested": [1, "two", None]})
    ]
    with fresh_db.as_system() as conn:
        replace_component_executions(conn, execution_id, [])
    assert stored_components(fresh_db, execution_id) == []


def test_failure_mid_replace_keeps_the_previous_rows(
    fresh_db: Database, execution_id: UUID
) -> None:
    with fresh_db.as_system() as conn:
        replace_component_executions(conn, execution_id, component_rows(2))
    before = stored_components(fresh_db, execution_id)
    good = component_rows(3, status="running")
    broken = [*good, replace(good[0], node_id="dup")]  # same scheduled_event_id twice
    # The caller catches the error and carries on: the savepoint has restored the old rows.
    with fresh_db.as_system() as conn:
        with pytest.raises(psycopg.errors.UniqueViolation):
            replace_component_executions(conn, execution_id, broken)
        assert conn.execute(
            "SELECT count(*) AS n FROM component_executions WHERE workflow_execution_id = %s",
            (execution_id,),
        ).fetchone() == {"n": 2}
    # The unit of work fails as a whole: nothing changes either.
    with pytest.raises(psycopg.errors.UniqueViolation), fresh_db.as_system() as conn:
        replace_component_executions(conn, execution_id, broken)
    assert stored_components(fresh_db, execution_id) == before


def test_users_cannot_replace_component_rows(
    fresh_db: Database, world: World, execution_id: UUID
) -> None:
    with (
        pytest.raises(psycopg.errors.InsufficientPrivilege),
        fresh_db.as_user(world.auth["A"]) as conn,
    ):
        replace_component_executions(conn, execution_id, component_rows(1))


def test_naive_timestamps_are_refused(fresh_db: Database, execution_id: UUID) -> None:
    naive = replace(component_rows(1)[0], started_at=T0.replace(tzinfo=None))
    with pytest.raises(ValueError, match="time zone"), fresh_db.as_system() as conn:
        replace_component_executions(conn, execution_id, [naive])


# -- insert_attempts ----------------------------------------------------------------------


def attempt(n: int, **changes: object) -> AttemptRow:
    row = AttemptRow(
        temporal_namespace="default",
        temporal_workflow_id="att-wf",
        temporal_run_id="att-run",
        activity_id="node-1",
        attempt=n,
        started_at=T0 + timedelta(seconds=n),
        worker_identity="worker@host",
    )
    return replace(row, **changes)  # type: ignore[arg-type]


def stored_attempts(db: Database) -> list[tuple[int, str, str | None]]:
    with db.as_system() as conn:
        return [
            (r["attempt"], r["outcome"], r["failure_message"])
            for r in conn.execute(
                "SELECT attempt, outcome, failure_message FROM component_execution_attempts"
                " WHERE temporal_workflow_id = 'att-wf' ORDER BY attempt"
            )
        ]


def test_attempts_are_idempotent_and_updated_in_place(fresh_db: Database) -> None:
    with fresh_db.as_system() as conn:
        insert_attempts(conn, [attempt(1), attempt(2)])
    failed = attempt(1, outcome="failed", ended_at=T0 + timedelta(seconds=2),
                     failure_type="ApplicationError", failure_message="boom")  # fmt: skip
    for _ in range(2):
        with fresh_db.as_system() as conn:
            insert_attempts(
                conn, [failed, attempt(2, outcome="completed", ended_at=T0 + timedelta(seconds=3))]
            )
    assert stored_attempts(fresh_db) == [(1, "failed", "boom"), (2, "completed", None)]
    # A late "started" write never undoes the outcome; duplicates in one batch are merged.
    with fresh_db.as_system() as conn:
        insert_attempts(conn, [attempt(1), attempt(1), attempt(3)])
    assert stored_attempts(fresh_db) == [
        (1, "failed", "boom"),
        (2, "completed", None),
        (3, "running", None),
    ]


# -- upsert_execution and sync bookkeeping ---------------------------------------------


def test_upsert_updates_the_same_row_and_keeps_its_owner(fresh_db: Database, world: World) -> None:
    first = execution_row(
        "up-1", status="running", closed_at=None, duration_ms=None,
        created_by=world.ids["A"], project_id=world.ids["pa"], input={"x": 1},
    )  # fmt: skip
    with fresh_db.as_system() as conn:
        execution_id = upsert_execution(conn, first)
    # Sync later sees the closed run but does not know who started it (system defaults).
    closed = execution_row("up-1", status="failed", error_message="bad", output=None)
    with fresh_db.as_system() as conn:
        assert upsert_execution(conn, closed) == execution_id
        row = conn.execute(
            "SELECT status, created_by, project_id, input, error_message"
            " FROM workflow_executions WHERE id = %s",
            (execution_id,),
        ).fetchone()
    assert row == {
        "status": "failed",
        "created_by": world.ids["A"],
        "project_id": world.ids["pa"],
        "input": {"x": 1},
        "error_message": "bad",
    }


def test_history_sync_marks(fresh_db: Database, execution_id: UUID) -> None:
    with fresh_db.as_system() as conn:
        mark_history_sync_failed(conn, execution_id, "temporal unavailable")
        mark_history_synced(
            conn, execution_id, history_json={"events": []}, event_count=0, history_bytes=2
        )
        row = conn.execute(
            "SELECT history_sync_status, history_sync_error, history_synced_at IS NOT NULL AS at,"
            " temporal_history_json FROM workflow_executions WHERE id = %s",
            (execution_id,),
        ).fetchone()
    assert row == {"history_sync_status": "synced", "history_sync_error": None, "at": True,
                   "temporal_history_json": {"events": []}}  # fmt: skip


# -- page_executions ----------------------------------------------------------------------


def test_page_executions_filters_sorts_and_pages(fresh_db: Database, world: World) -> None:
    with fresh_db.as_user(world.auth["A"]) as conn:
        version = save_workflow_version(
            conn, workflow_id=world.ids["wa"], definition={"v": 2}, created_by=world.ids["A"]
        )
    assert version == 2
    with fresh_db.as_system() as conn:
        for i in range(7):
            upsert_execution(
                conn,
                execution_row(
                    f"page-{i}",
                    status="failed" if i % 3 == 0 else "completed",
                    started_at=T0 + timedelta(minutes=i),
                    closed_at=T0 + timedelta(minutes=i, seconds=i),
                    duration_ms=1000 * i,
                    created_by=world.ids["A"],
                    project_id=world.ids["pa"],
                    workflow_id=world.ids["wa"],
                    workflow_version=2,
                ),
            )
    with fresh_db.as_user(world.auth["A"]) as conn:
        first = page_executions(conn, world.ids["wa"], page=1, page_size=3)
        last = page_executions(conn, world.ids["wa"], page=3, page_size=3)
        failed = page_executions(conn, world.ids["wa"], status="failed", sort="duration_desc")
        oldest = page_executions(conn, world.ids["wa"], sort="started_at_asc", page_size=1)
    assert first.total == 7
    assert [e.temporal_workflow_id for e in first.items] == ["page-6", "page-5", "page-4"]
    assert [e.temporal_workflow_id for e in last.items] == ["page-0"]
    assert [e.duration_ms for e in failed.items] == [6000, 3000, 0] and failed.total == 3
    assert oldest.items[0].temporal_workflow_id == "page-0"
    assert oldest.items[0].workflow_version == 2
    # B sees none of them.
    with fresh_db.as_user(world.auth["B"]) as conn:
        assert page_executions(conn, world.ids["wa"]).total == 0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"page": 0}, "page must"), ({"page_size": 0}, "page_size"), ({"sort": "id"}, "sort")],
)
def test_page_executions_names_bad_arguments(
    fresh_db: Database, world: World, kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message), fresh_db.as_user(world.auth["A"]) as conn:
        page_executions(conn, world.ids["wa"], **kwargs)  # type: ignore[arg-type]


# -- statistics ------------------------------------------------------------------------


def test_statistics_readers(fresh_db: Database, world: World) -> None:
    with fresh_db.as_user(world.auth["A"]) as conn:
        mine = get_workflow_statistics(conn, world.ids["wa"])
        theirs = get_workflow_statistics(conn, world.ids["wb"])
        project = get_project_statistics(conn, world.ids["pa"])
        other_project = get_project_statistics(conn, world.ids["pb"])
    assert mine is not None and mine.workflow_id == world.ids["wa"] and mine.total_runs == 1
    assert theirs is None
    assert project is not None and project.total_executions == 1
    assert other_project is None


def test_session_db_fixture_is_migrated_and_under_rls(db: Database) -> None:
    """The shared ``db`` fixture (tests/conftest.py) other test packages use."""
    with db.as_anonymous() as conn:
        assert conn.execute("SELECT current_user AS u").fetchone() == {"u": "wfmon_user"}
        assert conn.execute("SELECT count(*) AS n FROM projects").fetchone() == {"n": 0}
    with db.as_system() as conn:
        discovered = conn.execute(
            "SELECT name FROM projects WHERE id = %s", (DISCOVERED_PROJECT_ID,)
        ).fetchone()
    assert discovered == {"name": "Discovered"}

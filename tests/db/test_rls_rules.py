"""Row-level security rules that the matrix does not spell out on its own.

All checks run inside ``as_user`` / ``as_system`` / ``as_anonymous``: never as the table
owner or a superuser, for whom row-level security would prove nothing.
"""

from __future__ import annotations

import psycopg
import pytest

from wfmon.db import Database, DbConnection
from wfmon.db.accounts import create_project, create_workflow, current_user_id
from wfmon.db.executions import page_executions, upsert_execution
from wfmon.db.statistics import get_workflow_statistics

from .conftest import Actor, World, execution_row, unit_of_work

Denied = psycopg.errors.InsufficientPrivilege


# -- the roles requests run as -----------------------------------------------------------


@pytest.mark.parametrize("actor", ["A", "system", "anon"])
def test_requests_run_as_a_role_that_owns_nothing_and_cannot_bypass_rls(
    fresh_db: Database, world: World, actor: Actor
) -> None:
    with unit_of_work(fresh_db, world, actor) as conn:
        role = conn.execute(
            "SELECT current_user AS name, rolsuper, rolbypassrls FROM pg_roles"
            " WHERE rolname = current_user"
        ).fetchone()
        owned = conn.execute(
            "SELECT count(*) AS n FROM pg_tables WHERE schemaname = 'public'"
            " AND tableowner = current_user"
        ).fetchone()
        unprotected = conn.execute(
            "SELECT count(*) AS n FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = 'public' AND c.relkind = 'r' AND c.relname NOT LIKE '%yoyo%'"
            " AND NOT (c.relrowsecurity AND c.relforcerowsecurity)"
        ).fetchone()
    assert role == {
        "name": "wfmon_system" if actor == "system" else "wfmon_user",
        "rolsuper": False,
        "rolbypassrls": False,
    }
    assert owned == {"n": 0}
    assert unprotected == {"n": 0}


def test_identity_is_transaction_local(fresh_db: Database, world: World) -> None:
    """A pooled connection never carries one caller's identity into the next unit of work."""
    with fresh_db.as_user(world.auth["A"]) as conn:
        assert current_user_id(conn) == world.ids["A"]
    for _ in range(4):  # the pool has several connections: cover them
        with fresh_db.as_anonymous() as conn:
            assert current_user_id(conn) is None
            assert conn.execute("SELECT count(*) AS n FROM projects").fetchone() == {"n": 0}


def test_rollback_on_exception(fresh_db: Database, world: World) -> None:
    with pytest.raises(RuntimeError), fresh_db.as_user(world.auth["A"]) as conn:
        create_project(conn, name="rolled-back", created_by=world.ids["A"])
        raise RuntimeError("boom")
    with fresh_db.as_user(world.auth["A"]) as conn:
        assert conn.execute("SELECT 1 FROM projects WHERE name = 'rolled-back'").fetchone() is None


# -- a user cannot write what is not theirs ----------------------------------------------


def test_user_cannot_create_a_project_owned_by_another_user(
    fresh_db: Database, world: World
) -> None:
    with (
        pytest.raises(Denied, match="row-level security"),
        fresh_db.as_user(world.auth["A"]) as conn,
    ):
        create_project(conn, name="for-b", created_by=world.ids["B"])


def test_user_cannot_add_a_workflow_to_another_users_project(
    fresh_db: Database, world: World
) -> None:
    with (
        pytest.raises(Denied, match="row-level security"),
        fresh_db.as_user(world.auth["A"]) as conn,
    ):
        create_workflow(
            conn, project_id=world.ids["pb"], created_by=world.ids["A"], name="x", definition={}
        )


def test_user_cannot_record_an_execution_for_another_user(fresh_db: Database, world: World) -> None:
    row = execution_row("stolen", created_by=world.ids["B"], project_id=world.ids["pb"])
    with pytest.raises(Denied), fresh_db.as_user(world.auth["A"]) as conn:
        upsert_execution(conn, row)


def test_user_cannot_move_their_project_to_another_user(fresh_db: Database, world: World) -> None:
    with (
        pytest.raises(Denied, match="row-level security"),
        fresh_db.as_user(world.auth["A"]) as conn,
    ):
        conn.execute("UPDATE projects SET created_by = %s", (world.ids["B"],))


def test_user_cannot_add_a_connection_to_another_users_project(
    fresh_db: Database, world: World
) -> None:
    with (
        pytest.raises(Denied, match="row-level security"),
        fresh_db.as_user(world.auth["A"]) as conn,
    ):
        conn.execute(
            """
            INSERT INTO project_connections (project_id, connection_type, name,
                connection_url_encrypted, encryption_key_id, masked_url, created_by)
            VALUES (%s, 'redis', 'sneaky', '\\x00', 'k1', 'redis://***', %s)
            """,
            (world.ids["pb"], world.ids["A"]),
        )


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE workflow_executions SET status = 'failed'",
        "INSERT INTO workflow_statistics (workflow_id) VALUES ('{wa}')",
        "UPDATE workflow_statistics SET total_runs = 1000",
        "INSERT INTO component_executions (workflow_execution_id, node_id, scheduled_event_id,"
        " status) VALUES ('{exec_ea}', 'x', 1000, 'completed')",
        "INSERT INTO task_queues (name) VALUES ('mine')",
    ],
)
def test_user_cannot_write_as_the_system(fresh_db: Database, world: World, statement: str) -> None:
    """System-only writes are refused even for the user's own executions and workflows."""
    with pytest.raises(Denied), fresh_db.as_user(world.auth["A"]) as conn:
        conn.execute(statement.format(**{k: str(v) for k, v in world.ids.items()}))


def test_user_cannot_give_themselves_the_system_role(fresh_db: Database, world: World) -> None:
    with pytest.raises(Denied), fresh_db.as_user(world.auth["A"]) as conn:
        conn.execute("UPDATE users SET role_id = (SELECT id FROM user_roles WHERE name = 'system')")
    with pytest.raises(Denied), fresh_db.as_user(world.auth["A"]) as conn:
        conn.execute("INSERT INTO user_roles (name) VALUES ('system')")
    with pytest.raises(Denied), fresh_db.as_user(world.auth["A"]) as conn:
        conn.execute(
            "INSERT INTO users (auth_user_id, email, role_id)"
            " SELECT gen_random_uuid(), 'evil@test', id FROM user_roles WHERE name = 'system'"
        )


def test_user_may_rename_themselves(fresh_db: Database, world: World) -> None:
    with fresh_db.as_user(world.auth["B"]) as conn:
        updated = conn.execute(
            "UPDATE users SET display_name = 'Bee' RETURNING display_name"
        ).fetchall()
        assert updated == [{"display_name": "Bee"}]
        conn.execute("UPDATE users SET display_name = 'B'")


def test_system_writes_do_not_depend_on_the_rows_owner(fresh_db: Database, world: World) -> None:
    """The system role may write rows of any user because of who the CALLER is."""
    with fresh_db.as_system() as conn:
        execution_id = upsert_execution(
            conn, execution_row("ea", created_by=world.ids["A"], project_id=world.ids["pa"])
        )
        assert execution_id == world.ids["exec_ea"]


@pytest.mark.parametrize(("project", "owner"), [("pa", "system"), ("disc", "A"), ("pa", "A")])
def test_system_creates_workflows_only_in_the_discovered_project_as_itself(
    fresh_db: Database, world: World, project: str, owner: str
) -> None:
    """Sync registers unknown workflow types under Discovered (migration 0010), nowhere else."""
    with pytest.raises(Denied, match="row-level security"), fresh_db.as_system() as conn:
        conn.execute(
            "INSERT INTO workflows (project_id, created_by, name, visibility_id)"
            " SELECT %s, %s, 'sneaky', id FROM component_visibility WHERE name = 'private'",
            (world.ids[project], world.ids[owner]),
        )


# -- no existence oracles: a write never tells whether someone else's row exists ----------


def _add_component(conn: DbConnection, name: str, owner: object) -> None:
    conn.execute(
        "INSERT INTO components (name, created_by, visibility_id)"
        " SELECT %s, %s, id FROM component_visibility WHERE name = 'private'",
        (name, owner),
    )


def test_naming_a_component_like_another_users_private_one_tells_nothing(
    fresh_db: Database, world: World
) -> None:
    """A's private component "ca" exists; B naming one "ca" too succeeds like any name."""
    with fresh_db.as_user(world.auth["B"]) as conn:
        _add_component(conn, "ca", world.ids["B"])
        _add_component(conn, "fresh-name", world.ids["B"])
        assert {
            r["name"]
            for r in conn.execute(
                "SELECT name FROM components WHERE created_by = %s", (world.ids["B"],)
            )
        } >= {"ca", "fresh-name"}
        conn.execute(
            "DELETE FROM components WHERE name IN ('ca', 'fresh-name') AND created_by = %s",
            (world.ids["B"],),
        )
    # Unique per owner still: a user's own duplicate is refused.
    with (
        pytest.raises(psycopg.errors.UniqueViolation),
        fresh_db.as_user(world.auth["A"]) as conn,
    ):
        _add_component(conn, "ca", world.ids["A"])


@pytest.mark.parametrize("temporal_ids", ["B's", "fresh"])
def test_users_cannot_record_executions_whatever_the_temporal_ids(
    fresh_db: Database, world: World, temporal_ids: str
) -> None:
    """An execution row is the system's record of Temporal: a user insert is refused the same
    way for B's Temporal ids as for fresh ones (no unique violation to learn from)."""
    workflow_id, run_id = ("eb", "run-eb") if temporal_ids == "B's" else ("brand-new", "r1")
    row = execution_row(
        workflow_id,
        temporal_run_id=run_id,
        created_by=world.ids["A"],
        project_id=world.ids["pa"],
        workflow_id=world.ids["wa"],
    )
    with (
        pytest.raises(Denied, match="permission denied for table workflow_executions"),
        fresh_db.as_user(world.auth["A"]) as conn,
    ):
        upsert_execution(conn, row)


# -- public workflows share definition and statistics, nothing else ---------------------


def test_public_workflow_shares_definition_and_statistics_only(
    fresh_db: Database, world: World
) -> None:
    wa_pub = world.ids["wa_pub"]
    with fresh_db.as_user(world.auth["B"]) as conn:
        workflow = conn.execute(
            "SELECT definition FROM workflows WHERE id = %s", (wa_pub,)
        ).fetchone()
        versions = conn.execute(
            "SELECT version FROM workflow_versions WHERE workflow_id = %s", (wa_pub,)
        ).fetchall()
        stats = get_workflow_statistics(conn, wa_pub)
        page = page_executions(conn, wa_pub)
        components = conn.execute("SELECT count(*) AS n FROM component_executions").fetchone()
        attempts = conn.execute(
            "SELECT count(*) AS n FROM component_execution_attempts"
            " WHERE temporal_workflow_id = 'ea'"
        ).fetchone()
        histories = conn.execute(
            "SELECT count(*) AS n FROM workflow_executions WHERE workflow_id = %s", (wa_pub,)
        ).fetchone()
    assert workflow == {"definition": {"label": "wa_pub"}}
    assert versions == [{"version": 1}]
    assert stats is not None and stats.total_runs == 1
    assert page.total == 0 and page.items == []
    assert components == {"n": 1}  # B's own execution's row only
    assert attempts == {"n": 0}
    assert histories == {"n": 0}
    # ...while the owner sees the execution of the same workflow.
    with fresh_db.as_user(world.auth["A"]) as conn:
        assert page_executions(conn, wa_pub).total == 1


def test_public_workflows_are_not_shared_with_anonymous_callers(
    fresh_db: Database, world: World
) -> None:
    with fresh_db.as_anonymous() as conn:
        assert conn.execute("SELECT count(*) AS n FROM workflows").fetchone() == {"n": 0}
        assert get_workflow_statistics(conn, world.ids["wa_pub"]) is None

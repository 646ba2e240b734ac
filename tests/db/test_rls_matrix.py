"""Row-level security, cell by cell: who may select, insert, update, delete what.

Every cell runs in the actor's own unit of work (``as_user`` for users A and B,
``as_system``, ``as_anonymous``) and is rolled back afterwards, so cells are independent.
An expected set lists exactly the rows (by label, see ``World``) the actor sees / updates /
deletes; ``DENIED`` means PostgreSQL refuses (no grant, or a WITH CHECK violation); ``OK``
means the insert went through.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest

from wfmon.db import Database, DbConnection
from wfmon.db.rows import SYSTEM_USER_ID

from .conftest import ACTORS, Actor, World, unit_of_work

DENIED = "DENIED"
OK = "OK"

Insert = Callable[[DbConnection, World, Actor], object]


@dataclass(frozen=True)
class Table:
    label: str  # SQL expression that names a row (ids are mapped back via World.names)
    touch: str  # a SET clause that changes nothing, for the update column
    insert: Insert  # inserts one row "owned" by the actor


def _sql(
    statement: str, params: Callable[[World, Actor], tuple[Any, ...]] = lambda w, a: ()
) -> Insert:
    return lambda conn, w, actor: conn.execute(statement, params(w, actor))


#: The execution a search document or term belongs to, by its label.
_EXECUTION_LABEL = (
    "(SELECT x.temporal_workflow_id FROM workflow_executions x WHERE x.id = execution_id)"
)

TABLES: dict[str, Table] = {
    "user_roles": Table("name", "description = description",
                        _sql("INSERT INTO user_roles (name) VALUES ('admin')")),
    "component_visibility": Table(
        "name", "name = name", _sql("INSERT INTO component_visibility (name) VALUES ('public')")),
    "users": Table("id::text", "display_name = display_name", _sql(
        "INSERT INTO users (auth_user_id, email, role_id) "
        "SELECT gen_random_uuid(), 'new@test', id FROM user_roles WHERE name = 'member'")),
    "projects": Table("coalesce(nullif(name, 'Discovered'), 'disc')", "description = description",
                      _sql("INSERT INTO projects (name, created_by) VALUES ('new', %s)",
                           lambda w, a: (w.user_id(a),))),
    "workflows": Table("name", "description = description", _sql(
        "INSERT INTO workflows (project_id, created_by, name, visibility_id) "
        "SELECT %s, %s, 'new', id FROM component_visibility WHERE name = 'private'",
        lambda w, a: (w.project(a), w.user_id(a)))),
    "workflow_versions": Table("definition->>'label'", "definition = definition", _sql(
        "INSERT INTO workflow_versions (workflow_id, version, definition, created_by) "
        "VALUES (%s, 99, '{}', %s)", lambda w, a: (w.workflow(a), w.user_id(a)))),
    # Built-in components (seeded by migrations, owned by the system user) are all "builtin".
    "components": Table(
        f"CASE WHEN created_by = '{SYSTEM_USER_ID}' THEN 'builtin' ELSE name END",
        "description = description", _sql(
        "INSERT INTO components (name, created_by, visibility_id) "
        "SELECT 'new', %s, id FROM component_visibility WHERE name = 'private'",
        lambda w, a: (w.user_id(a),))),
    "task_queues": Table("name", "name = name",
                         _sql("INSERT INTO task_queues (name) VALUES ('new')")),
    "workflow_executions": Table("temporal_workflow_id", "error_message = error_message", _sql(
        "INSERT INTO workflow_executions (temporal_namespace, temporal_workflow_id,"
        " temporal_run_id, workflow_type, task_queue, status, started_at, created_by, project_id)"
        " VALUES ('default', 'new', 'r', 't', 'tq', 'running', now(), %s, %s)",
        lambda w, a: (w.user_id(a), w.project(a)))),
    "component_executions": Table("node_id", "error_message = error_message", _sql(
        "INSERT INTO component_executions (workflow_execution_id, node_id, scheduled_event_id,"
        " status) VALUES (%s, 'new', 99, 'completed')",
        lambda w, a: (w.ids[f"exec_{w.execution(a)}"],))),
    "component_execution_attempts": Table("activity_id", "failure_message = failure_message", _sql(
        "INSERT INTO component_execution_attempts (temporal_namespace, temporal_workflow_id,"
        " temporal_run_id, activity_id, attempt, started_at)"
        " VALUES ('default', %s, %s, 'new', 1, now())",
        lambda w, a: (w.execution(a), f"run-{w.execution(a)}"))),
    "project_connections": Table("name", "config = config", _sql(
        "INSERT INTO project_connections (project_id, connection_type, name,"
        " connection_url_encrypted, encryption_key_id, masked_url, created_by)"
        " VALUES (%s, 'redis', 'new', '\\x00', 'k1', 'redis://***', %s)",
        lambda w, a: (w.project(a), w.user_id(a)))),
    "workflow_statistics": Table("workflow_id::text", "updated_at = updated_at", _sql(
        "INSERT INTO workflow_statistics (workflow_id, total_runs) VALUES (%s, 2)"
        " ON CONFLICT (workflow_id) DO UPDATE SET total_runs = EXCLUDED.total_runs",
        lambda w, a: (w.workflow(a),))),
    "project_statistics": Table("project_id::text", "updated_at = updated_at", _sql(
        "INSERT INTO project_statistics (project_id, total_executions) VALUES (%s, 2)"
        " ON CONFLICT (project_id) DO UPDATE SET total_executions = EXCLUDED.total_executions",
        lambda w, a: (w.project(a),))),
    "workflow_daily_trends": Table("workflow_id::text", "updated_at = updated_at", _sql(
        "INSERT INTO workflow_daily_trends (workflow_id, day, project_id, runs,"
        " successful_runs, failed_runs) SELECT id, DATE '2026-02-01', project_id, 1, 1, 0"
        " FROM workflows WHERE id = %s",
        lambda w, a: (w.workflow(a),))),
    "component_daily_trends": Table("workflow_id::text", "updated_at = updated_at", _sql(
        "INSERT INTO component_daily_trends (workflow_id, day, component_name, project_id,"
        " runs, failures, retries, expected_retries)"
        " SELECT id, DATE '2026-02-01', 'flaky', project_id, 1, 0, 0, 0"
        " FROM workflows WHERE id = %s",
        lambda w, a: (w.workflow(a),))),
    # Search (0400, 0401): built by the triggers for every execution of the world; only the
    # system writes, users read their own executions' rows.
    "execution_search_documents": Table(_EXECUTION_LABEL, "updated_at = updated_at", _sql(
        "INSERT INTO execution_search_documents (execution_id, created_by) VALUES (%s, %s)"
        " ON CONFLICT (execution_id) DO NOTHING",
        lambda w, a: (w.ids[f"exec_{w.execution(a)}"], w.user_id(a)))),
    "execution_search_terms": Table(_EXECUTION_LABEL, "term = term", _sql(
        "INSERT INTO execution_search_terms (created_by, term, execution_id) VALUES (%s, 42, %s)",
        lambda w, a: (w.user_id(a), w.ids[f"exec_{w.execution(a)}"]))),
    "execution_search_errors": Table(_EXECUTION_LABEL, "errors = errors", _sql(
        "INSERT INTO execution_search_errors (execution_id, created_by, errors)"
        " VALUES (%s, %s, 'x') ON CONFLICT (execution_id) DO NOTHING",
        lambda w, a: (w.ids[f"exec_{w.execution(a)}"], w.user_id(a)))),
    # Failure groups (0410): the matrix world holds none, so selects see nothing; the
    # owner-only read rule is tested on seeded rows in test_failure_groups_tables.py.
    "failure_groups": Table("workflow_id::text", "updated_at = updated_at", _sql(
        "INSERT INTO failure_groups (workflow_id, node_id, fingerprint, project_id, failures,"
        " executions, first_seen, last_seen) SELECT id, 'n', 'E: x', project_id, 1, 1, now(),"
        " now() FROM workflows WHERE id = %s", lambda w, a: (w.workflow(a),))),
    "failure_group_days": Table("workflow_id::text", "updated_at = updated_at", _sql(
        "INSERT INTO failure_group_days (workflow_id, node_id, fingerprint, day, project_id,"
        " failures, executions, first_seen, last_seen) SELECT id, 'n', 'E: x', DATE"
        " '2026-02-01', project_id, 1, 1, now(), now() FROM workflows WHERE id = %s",
        lambda w, a: (w.workflow(a),))),
    "failure_group_executions": Table("execution_id::text", "failures = failures", _sql(
        "INSERT INTO failure_group_executions (execution_id, node_id, fingerprint, workflow_id,"
        " project_id, day, failures, first_seen, last_seen) SELECT gen_random_uuid(), 'n',"
        " 'E: x', id, project_id, DATE '2026-02-01', 1, now(), now() FROM workflows"
        " WHERE id = %s", lambda w, a: (w.workflow(a),))),
    "failure_group_builds": Table("model", "built_at = built_at", _sql(
        "INSERT INTO failure_group_builds (model, built_at) VALUES ('failure_groups', now())")),
    # Re-runs (0510): written by the source execution's owner, never updated or deleted.
    "execution_reruns": Table(
        "(SELECT x.temporal_workflow_id FROM workflow_executions x"
        " WHERE x.id = source_execution_id)", "kind = kind", _sql(
        "INSERT INTO execution_reruns (source_execution_id, kind, temporal_namespace,"
        " temporal_workflow_id, temporal_run_id, created_by)"
        " VALUES (%s, 'run_again', 'default', 'new', 'r', %s)",
        lambda w, a: (w.ids[f"exec_{w.execution(a)}"], w.user_id(a)))),
    # Namespace assignments (0551): the operator's, written as the system only.
    "temporal_namespace_owners": Table("temporal_namespace", "created_at = created_at", _sql(
        "INSERT INTO temporal_namespace_owners (temporal_namespace, project_id, created_by)"
        " VALUES ('new-ns', %s, %s)", lambda w, a: (w.project(a), w.user_id(a)))),
    # Alerts (0500): rules managed by the project's owner; deliveries written by the system
    # (the world holds none; a test delivery needs its rule, created in the same statement).
    "alert_rules": Table("name", "enabled = enabled", _sql(
        "INSERT INTO alert_rules (id, project_id, created_by, name, kind, channel_type,"
        " channel_masked, channel_secret_encrypted, encryption_key_id)"
        " VALUES (gen_random_uuid(), %s, %s, 'new', 'execution_failed', 'webhook', 'x',"
        " '\\x00', 'k1')", lambda w, a: (w.project(a), w.user_id(a)))),
    "alert_deliveries": Table("event_key", "reason = reason", _sql(
        "WITH r AS (INSERT INTO alert_rules (id, project_id, created_by, name, kind,"
        " channel_type, channel_masked, channel_secret_encrypted, encryption_key_id)"
        " VALUES (gen_random_uuid(), %s, %s, 'new', 'execution_failed', 'webhook', 'x',"
        " '\\x00', 'k1') RETURNING id, project_id)"
        " INSERT INTO alert_deliveries (rule_id, project_id, event_key, dedupe_key, status,"
        " is_test, alert) SELECT id, project_id, 'k', 'k', 'sent', true, '{}' FROM r",
        lambda w, a: (w.project(a), w.user_id(a)))),
    # The live channel's secret name (0525): nobody but its owner reads or writes it.
    "wfmon_live_channel_name": Table("channel", "channel = channel", _sql(
        "INSERT INTO wfmon_live_channel_name (singleton, channel) VALUES (false, 'x')")),
}  # fmt: skip

D = DENIED
ROLES = {"admin", "member", "system"}
VIS = {"private", "public"}
NONE: set[str] = set()

EXECS = {"ea", "eb", "es"}
WORKFLOWS = {"wa", "wa_pub", "wb"}
PROJECTS = {"pa", "pb", "disc"}
USERS = {"system", "A", "B"}
BI = "builtin"  # the built-in components: public, owned by the system user

# fmt: off
MATRIX: dict[str, dict[Actor, tuple[object, object, object, object]]] = {
    "user_roles": {
        # actor    select                   insert  update                  delete
        "A":       (ROLES,                  D,      D,                      D),
        "B":       (ROLES,                  D,      D,                      D),
        "system":  (ROLES,                  D,      D,                      D),
        "anon":    (ROLES,                  D,      D,                      D),
    },
    "component_visibility": {
        # actor    select                   insert  update                  delete
        "A":       (VIS,                    D,      D,                      D),
        "B":       (VIS,                    D,      D,                      D),
        "system":  (VIS,                    D,      D,                      D),
        "anon":    (VIS,                    D,      D,                      D),
    },
    "users": {
        # actor    select                   insert  update                  delete
        "A":       ({"A"},                  D,      {"A"},                  D),
        "B":       ({"B"},                  D,      {"B"},                  D),
        "system":  (USERS,                  OK,     USERS,                  D),
        "anon":    (NONE,                   D,      NONE,                   D),
    },
    "projects": {
        # actor    select                   insert  update                  delete
        "A":       ({"pa"},                 OK,     {"pa"},                 {"pa"}),
        "B":       ({"pb"},                 OK,     {"pb"},                 {"pb"}),
        "system":  (PROJECTS,               D,      D,                      D),
        "anon":    (NONE,                   D,      NONE,                   NONE),
    },
    "workflows": {
        # actor    select                   insert  update                  delete
        "A":       ({"wa", "wa_pub"},       OK,     {"wa", "wa_pub"},       {"wa", "wa_pub"}),
        "B":       ({"wb", "wa_pub"},       OK,     {"wb"},                 {"wb"}),
        "system":  (WORKFLOWS,              OK,     D,                      D),  # Discovered only
        "anon":    (NONE,                   D,      NONE,                   NONE),
    },
    "workflow_versions": {
        # actor    select                   insert  update                  delete
        "A":       ({"wa", "wa_pub"},       OK,     D,                      D),
        "B":       ({"wb", "wa_pub"},       OK,     D,                      D),
        "system":  (WORKFLOWS,              D,      D,                      D),
        "anon":    (NONE,                   D,      D,                      D),
    },
    "components": {
        # actor    select                   insert  update                  delete
        "A":       ({"ca", "cb_pub", BI},   OK,     {"ca"},                 {"ca"}),
        "B":       ({"cb_pub", BI},         OK,     {"cb_pub"},             {"cb_pub"}),
        "system":  ({"ca", "cb_pub", BI},   D,      D,                      D),
        "anon":    (NONE,                   D,      NONE,                   NONE),
    },
    "task_queues": {
        # actor    select                   insert  update                  delete
        "A":       ({"tq"},                 D,      D,                      D),
        "B":       ({"tq"},                 D,      D,                      D),
        "system":  ({"tq"},                 OK,     {"tq"},                 D),
        "anon":    ({"tq"},                 D,      D,                      D),
    },
    "workflow_executions": {
        # actor    select                   insert  update                  delete
        "A":       ({"ea"},                 D,      D,                      {"ea"}),
        "B":       ({"eb"},                 D,      D,                      {"eb"}),
        "system":  (EXECS,                  OK,     EXECS,                  EXECS),
        "anon":    (NONE,                   D,      D,                      NONE),
    },
    "component_executions": {
        # actor    select                   insert  update                  delete
        "A":       ({"ea"},                 D,      D,                      D),
        "B":       ({"eb"},                 D,      D,                      D),
        "system":  (EXECS,                  OK,     EXECS,                  EXECS),
        "anon":    (NONE,                   D,      D,                      D),
    },
    "component_execution_attempts": {
        # actor    select                   insert  update                  delete
        "A":       ({"ea"},                 D,      D,                      D),
        "B":       ({"eb"},                 D,      D,                      D),
        "system":  (EXECS,                  OK,     EXECS,                  EXECS),
        "anon":    (NONE,                   D,      D,                      D),
    },
    "project_connections": {
        # actor    select                   insert  update                  delete
        "A":       ({"conn_a"},             OK,     {"conn_a"},             {"conn_a"}),
        "B":       ({"conn_b"},             OK,     {"conn_b"},             {"conn_b"}),
        "system":  ({"conn_a", "conn_b"},   D,      D,                      D),
        "anon":    (NONE,                   D,      NONE,                   NONE),
    },
    "workflow_statistics": {
        # actor    select                   insert  update                  delete
        "A":       ({"wa", "wa_pub"},       D,      D,                      D),
        "B":       ({"wb", "wa_pub"},       D,      D,                      D),
        "system":  (WORKFLOWS,              OK,     WORKFLOWS,              WORKFLOWS),
        "anon":    (NONE,                   D,      D,                      D),
    },
    "project_statistics": {
        # actor    select                   insert  update                  delete
        "A":       ({"pa"},                 D,      D,                      D),
        "B":       ({"pb"},                 D,      D,                      D),
        "system":  (PROJECTS,               OK,     PROJECTS,               PROJECTS),
        "anon":    (NONE,                   D,      D,                      D),
    },
    # Trends are read like workflow statistics: own workflows and public ones.
    "workflow_daily_trends": {
        # actor    select                   insert  update                  delete
        "A":       ({"wa", "wa_pub"},       D,      D,                      D),
        "B":       ({"wb", "wa_pub"},       D,      D,                      D),
        "system":  (WORKFLOWS,              OK,     WORKFLOWS,              WORKFLOWS),
        "anon":    (NONE,                   D,      D,                      D),
    },
    "component_daily_trends": {
        # actor    select                   insert  update                  delete
        "A":       ({"wa", "wa_pub"},       D,      D,                      D),
        "B":       ({"wb", "wa_pub"},       D,      D,                      D),
        "system":  (WORKFLOWS,              OK,     WORKFLOWS,              WORKFLOWS),
        "anon":    (NONE,                   D,      D,                      D),
    },
    "execution_search_documents": {
        # actor    select                   insert  update                  delete
        "A":       ({"ea"},                 D,      D,                      D),
        "B":       ({"eb"},                 D,      D,                      D),
        "system":  (EXECS,                  OK,     EXECS,                  EXECS),
        "anon":    (NONE,                   D,      D,                      D),
    },
    # The world's executions have no error, input or output, so no terms: the owner-only
    # read rule is tested on seeded terms in test_search_terms.py.
    "execution_search_terms": {
        # actor    select                   insert  update                  delete
        "A":       (NONE,                   D,      D,                      D),
        "B":       (NONE,                   D,      D,                      D),
        "system":  (NONE,                   OK,     NONE,                   NONE),
        "anon":    (NONE,                   D,      D,                      D),
    },
    # 0560: the world's executions have no error text, so no rows: the owner-only read
    # rule is tested on synced errors in test_search_terms.py.
    "execution_search_errors": {
        # actor    select                   insert  update                  delete
        "A":       (NONE,                   D,      D,                      D),
        "B":       (NONE,                   D,      D,                      D),
        "system":  (NONE,                   OK,     NONE,                   NONE),
        "anon":    (NONE,                   D,      D,                      D),
    },
    "failure_groups": {
        # actor    select                   insert  update                  delete
        "A":       (NONE,                   D,      D,                      D),
        "B":       (NONE,                   D,      D,                      D),
        "system":  (NONE,                   OK,     NONE,                   NONE),
        "anon":    (NONE,                   D,      D,                      D),
    },
    "failure_group_days": {
        # actor    select                   insert  update                  delete
        "A":       (NONE,                   D,      D,                      D),
        "B":       (NONE,                   D,      D,                      D),
        "system":  (NONE,                   OK,     NONE,                   NONE),
        "anon":    (NONE,                   D,      D,                      D),
    },
    # 0630: wfmon_system only (the models' own table; the pages read the two above).
    "failure_group_executions": {
        # actor    select                   insert  update                  delete
        "A":       (D,                      D,      D,                      D),
        "B":       (D,                      D,      D,                      D),
        "system":  (NONE,                   OK,     D,                      NONE),
        "anon":    (D,                      D,      D,                      D),
    },
    "failure_group_builds": {
        # actor    select                   insert  update                  delete
        "A":       (NONE,                   D,      D,                      D),
        "B":       (NONE,                   D,      D,                      D),
        "system":  (NONE,                   OK,     NONE,                   NONE),
        "anon":    (NONE,                   D,      D,                      D),
    },
    # The world holds no re-runs: the owner-only read rule is tested in tests/rerun.
    "execution_reruns": {
        # actor    select                   insert  update                  delete
        "A":       (NONE,                   OK,     D,                      D),
        "B":       (NONE,                   OK,     D,                      D),
        "system":  (NONE,                   D,      D,                      D),
        "anon":    (NONE,                   D,      D,                      D),
    },
    "temporal_namespace_owners": {
        # actor    select                   insert  update                  delete
        "A":       (NONE,                   D,      D,                      D),
        "B":       (NONE,                   D,      D,                      D),
        "system":  (NONE,                   OK,     NONE,                   NONE),
        "anon":    (NONE,                   D,      D,                      D),
    },
    "alert_rules": {
        # actor    select                   insert  update                  delete
        "A":       (NONE,                   OK,     NONE,                   NONE),
        "B":       (NONE,                   OK,     NONE,                   NONE),
        "system":  (NONE,                   D,      D,                      D),
        "anon":    (NONE,                   D,      NONE,                   NONE),
    },
    "wfmon_live_channel_name": {
        # actor    select                   insert  update                  delete
        "A":       (D,                      D,      D,                      D),
        "B":       (D,                      D,      D,                      D),
        "system":  (D,                      D,      D,                      D),
        "anon":    (D,                      D,      D,                      D),
    },
    # The system's insert is refused by the rule it needs; its writes: tests/alerts.
    "alert_deliveries": {
        # actor    select                   insert  update                  delete
        "A":       (NONE,                   OK,     D,                      D),
        "B":       (NONE,                   OK,     D,                      D),
        "system":  (NONE,                   D,      NONE,                   NONE),
        "anon":    (NONE,                   D,      D,                      D),
    },
}
# fmt: on

OPERATIONS = ("select", "insert", "update", "delete")
CELLS = [
    pytest.param(table, actor, op, expected, id=f"{table}-{actor}-{op}")
    for table, by_actor in MATRIX.items()
    for actor, outcomes in by_actor.items()
    for op, expected in zip(OPERATIONS, outcomes, strict=True)
]


class _RollBack(Exception):
    """Raised at the end of a cell so its unit of work rolls back."""


def run_cell(db: Database, world: World, actor: Actor, table: str, op: str) -> object:
    """What ``actor`` gets for ``op`` on ``table``: a set of row labels, OK, or DENIED."""
    spec = TABLES[table]
    result: object = None
    try:
        with unit_of_work(db, world, actor) as conn:
            if op == "insert":
                spec.insert(conn, world, actor)
                result = OK
            else:
                statement = {
                    "select": f"SELECT {spec.label} AS label FROM {table}",
                    "update": f"UPDATE {table} SET {spec.touch} RETURNING {spec.label} AS label",
                    "delete": f"DELETE FROM {table} RETURNING {spec.label} AS label",
                }[op]
                result = {world.label(r["label"]) for r in conn.execute(statement)}
            raise _RollBack
    except _RollBack:
        return result
    except psycopg.errors.InsufficientPrivilege:
        return DENIED


def test_matrix_covers_every_table_and_actor(fresh_db: Database) -> None:
    with fresh_db.as_system() as conn:
        tables = {
            r["tablename"]
            for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        }
    tables.discard("_yoyo_migration")
    tables -= {t for t in tables if t.startswith("_yoyo") or t.startswith("yoyo")}
    assert tables == set(TABLES)
    assert set(MATRIX) == set(TABLES)
    assert all(set(by_actor) == set(ACTORS) for by_actor in MATRIX.values())


@pytest.mark.parametrize(("table", "actor", "op", "expected"), CELLS)
def test_cell(
    fresh_db: Database, world: World, table: str, actor: Actor, op: str, expected: object
) -> None:
    assert run_cell(fresh_db, world, actor, table, op) == expected

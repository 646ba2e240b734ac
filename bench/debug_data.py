"""A realistic, generated data set for benchmarks (search, compare, export, failure groups).

:func:`generate` writes, server-side (``INSERT ... SELECT generate_series`` as
``wfmon_system``, one unit of work), two users with a project and ``WORKFLOWS_PER_USER``
workflows each, ``executions`` executions (alternating between the users) over the last 30
days, ``components`` component rows (spread evenly, nested JSON inputs and outputs, about
8% failing with realistic error texts) and ``attempts`` retry attempts (failed first
attempts with the same kinds of error text). The search documents and terms (migrations
0400, 0401) are built by the sync's triggers as the rows go in, exactly as a sync would.

Known values to search for: execution ``k`` has input ``{"order_id": "A-k", "order":
{"id": "A-k", "customer": {"id": "C-(k % 5000)", ...}, ...}}`` and so do its components;
error texts are :data:`ERRORS` (``CardDeclined`` is one in eight failing components).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Final
from uuid import UUID

import psycopg
from psycopg import sql

from wfmon.db import Database
from wfmon.db.accounts import create_project, create_user, create_workflow
from wfmon.migrate import libpq_url

WORKFLOWS_PER_USER: Final = 10
#: Executions per generating statement.
CHUNK: Final = 2500
NAMESPACE: Final = "bench-data"
#: The tables generate() writes (ANALYZEd afterwards), and the workflows it creates: a
#: never-analyzed workflows table is estimated at ~390 rows, which planned the failure
#: groups' owner join as nested loops (10.9 s instead of 1.5 s).
TABLES: Final = (
    "workflows",
    "workflow_executions",
    "component_executions",
    "component_execution_attempts",
    "execution_search_documents",
    "execution_search_terms",
)

#: Error texts (type, message), as failing components and attempts report them.
ERRORS: Final = (
    ("TimeoutError", "activity StartToClose timeout after 30s (attempt deadline exceeded)"),
    ("CardDeclined", "stripe.error.CardDeclined: Your card was declined (insufficient_funds)"),
    ("UniqueViolation", 'duplicate key value violates unique constraint "orders_pkey"'),
    ("ConnectionRefusedError", "[Errno 111] Connection refused (redis-cache:6379)"),
    ("HTTPError", "503 Service Unavailable from https://api.example.com/v1/charge"),
    ("ValueError", "invalid literal for int() with base 10: 'twelve'"),
    ("KeyError", "'customer_id' missing from upstream.fetch.rows[0]"),
    ("ApplicationError", "inventory check failed: SKU-4411 out of stock in warehouse eu-2"),
)


@dataclass(frozen=True)
class DebugUser:
    auth_user_id: UUID
    user_id: UUID
    project_id: UUID
    workflow_ids: list[UUID]


@dataclass
class DebugData:
    users: list[DebugUser]
    executions: int
    components: int
    attempts: int
    seconds: dict[str, float] = field(default_factory=dict)


def _errors_sql() -> str:
    """``(VALUES (k, type, message), ...)`` of :data:`ERRORS`, for joining by number."""
    rows = ", ".join(
        f"({i}, '{t}', '{m.replace(chr(39), chr(39) * 2)}')" for i, (t, m) in enumerate(ERRORS)
    )
    return f"(VALUES {rows}) AS err(k, type, message)"


def generate(
    db: Database,
    executions: int = 50_000,
    components: int = 1_000_000,
    attempts: int = 200_000,
    *,
    owner_url: str | None = None,
    tag: str | None = None,
) -> DebugData:
    """Write the data set (see the module) and return its users and sizes.

    ``owner_url`` (the migrations URL): ANALYZE the tables as their owner afterwards, so
    plans see the new sizes (``wfmon_system`` may not ANALYZE tables it does not own).
    """
    tag = tag or uuid.uuid4().hex[:8]
    per_execution = max(1, components // max(1, executions))
    users: list[DebugUser] = []
    for name in ("ada", "bo"):
        auth = uuid.uuid4()
        with db.as_system() as conn:
            user = create_user(
                conn, auth_user_id=auth, email=f"{name}-{tag}@example.com", display_name=name
            )
        with db.as_user(auth) as conn:
            project = create_project(conn, name=f"{name} shop {tag}", created_by=user.id)
            workflows = [
                create_workflow(
                    conn,
                    project_id=project.id,
                    created_by=user.id,
                    name=f"checkout-{i}",
                    definition={},
                ).id
                for i in range(WORKFLOWS_PER_USER)
            ]
        users.append(DebugUser(auth, user.id, project.id, workflows))
    seconds: dict[str, float] = {}
    # Written in chunks of CHUNK executions (one statement each, as syncs of many
    # executions would be), so the search triggers' per-statement work stays bounded.
    chunks = [(lo, min(executions, lo + CHUNK)) for lo in range(0, executions, CHUNK)]
    errors = _errors_sql()
    n_errors = len(ERRORS)
    with db.as_system() as conn:
        t0 = time.perf_counter()
        conn.execute(
            """
            CREATE TEMP TABLE debug_owner ON COMMIT DROP AS
            SELECT u - 1 AS u, user_id, project_id, workflow_ids
            FROM unnest(%(users)s::uuid[], %(projects)s::uuid[]) WITH ORDINALITY
                 AS t(user_id, project_id, u)
            CROSS JOIN LATERAL (SELECT %(workflows)s::uuid[] AS all_ids) a
            CROSS JOIN LATERAL (
                SELECT array_agg(x) AS workflow_ids
                FROM unnest(a.all_ids[(u - 1) * %(per_user)s + 1 : u * %(per_user)s]) x) w
            """,
            {
                "users": [u.user_id for u in users],
                "projects": [u.project_id for u in users],
                "workflows": [w for u in users for w in u.workflow_ids],
                "per_user": WORKFLOWS_PER_USER,
            },
        )
        for lo, hi in chunks:
            conn.execute(
                f"""
            INSERT INTO workflow_executions (
                temporal_namespace, temporal_workflow_id, temporal_run_id, workflow_type,
                task_queue, status, started_at, closed_at, duration_ms, created_by, project_id,
                workflow_id, input, output, error_message, history_sync_status,
                history_synced_at)
            SELECT %(ns)s, 'debug-' || %(tag)s || '-' || g, md5(%(tag)s || g), 'checkout',
                   'wfmon-builder',
                   CASE WHEN g %% 10 = 0 THEN 'failed' WHEN g %% 97 = 0 THEN 'timed_out'
                        ELSE 'completed' END,
                   s.started, s.started + s.d * interval '1 millisecond', s.d,
                   o.user_id, o.project_id, o.workflow_ids[1 + (g / 2) %% {WORKFLOWS_PER_USER}],
                   jsonb_build_object('order_id', 'A-' || g, 'order', jsonb_build_object(
                       'id', 'A-' || g, 'total', (g %% 500) + 0.99,
                       'customer', jsonb_build_object(
                           'id', 'C-' || (g %% 5000),
                           'country', (ARRAY['DE','FR','US','JP'])[1 + g %% 4]))),
                   CASE WHEN g %% 10 = 0 THEN NULL
                        ELSE jsonb_build_object('charged', true, 'receipt', 'R-' || g) END,
                   CASE WHEN g %% 10 = 0 THEN err.type || ': ' || err.message END,
                   'synced', now()
            FROM generate_series(%(lo)s, %(hi)s - 1) g
            CROSS JOIN LATERAL (SELECT now() - (g::float / %(n)s) * interval '30 days' AS started,
                                       (200 + (g * 7919) %% 20000)::bigint AS d) s
            JOIN debug_owner o ON o.u = g %% 2
            JOIN {errors} ON err.k = (g / 10) %% {n_errors}
            """,
                {"ns": NAMESPACE, "tag": tag, "n": executions, "lo": lo, "hi": hi},
            )
        seconds["executions"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        for lo, hi in chunks:
            conn.execute(
                f"""
            INSERT INTO component_executions (
                workflow_execution_id, node_id, component_name, activity_type,
                scheduled_event_id, status, started_at, completed_at, duration_ms,
                input_data, output_data, error_type, error_message, temporal_activity_id)
            SELECT e.id, 'step-' || i, (ARRAY['transform','postgresql-query','redis-command',
                   'typescript-processor'])[1 + i %% 4], 'component', 5 + i * 6,
                   CASE WHEN f.fails THEN 'failed' ELSE 'completed' END,
                   e.started_at, e.started_at + interval '10 milliseconds', 10 + (i * 7) %% 100,
                   jsonb_build_object('order_id', e.input->>'order_id', 'step', i,
                       'order', e.input->'order',
                       'items', jsonb_build_array(jsonb_build_object(
                           'sku', 'SKU-' || (i * 13 + e.k) %% 9000, 'qty', 1 + i %% 3))),
                   CASE WHEN f.fails THEN NULL
                        ELSE jsonb_build_object('rows', i %% 7, 'status', 'ok', 'step', i) END,
                   CASE WHEN f.fails THEN err.type END,
                   CASE WHEN f.fails THEN err.message END,
                   'step-' || i
            FROM (SELECT id, started_at, input,
                         (row_number() OVER (ORDER BY started_at, id))::int AS k
                  FROM workflow_executions WHERE temporal_namespace = %(ns)s
                    AND temporal_workflow_id LIKE 'debug-' || %(tag)s || '-%%') e
            CROSS JOIN generate_series(0, %(per)s - 1) i
            CROSS JOIN LATERAL (SELECT (e.k * 31 + i * 17) %% 100 < 8 AS fails) f
            JOIN {errors} ON err.k = (e.k + i) %% {n_errors}
            WHERE e.k > %(lo)s AND e.k <= %(hi)s
            """,
                {"ns": NAMESPACE, "tag": tag, "per": per_execution, "lo": lo, "hi": hi},
            )
        seconds["components"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        per_attempts = max(1, attempts // max(1, executions // 5))
        for lo, hi in chunks:
            conn.execute(
                f"""
            INSERT INTO component_execution_attempts (
                temporal_namespace, temporal_workflow_id, temporal_run_id, activity_id, attempt,
                activity_type, started_at, ended_at, outcome, failure_type, failure_message)
            SELECT e.temporal_namespace, e.temporal_workflow_id, e.temporal_run_id,
                   'step-' || (j / 2), 1 + j %% 2, 'component', e.started_at,
                   e.started_at + interval '5 milliseconds',
                   CASE WHEN j %% 2 = 0 THEN 'failed' ELSE 'completed' END,
                   CASE WHEN j %% 2 = 0 THEN err.type END,
                   CASE WHEN j %% 2 = 0 THEN err.message END
            FROM (SELECT *, (row_number() OVER (ORDER BY started_at, id))::int AS k
                  FROM workflow_executions WHERE temporal_namespace = %(ns)s
                    AND temporal_workflow_id LIKE 'debug-' || %(tag)s || '-%%') e
            CROSS JOIN generate_series(0, %(per)s - 1) j
            JOIN {errors} ON err.k = (e.k * 3 + j) %% {n_errors}
            WHERE e.k %% 5 = 0 AND e.k > %(lo)s AND e.k <= %(hi)s
            """,
                {"ns": NAMESPACE, "tag": tag, "per": per_attempts, "lo": lo, "hi": hi},
            )
        seconds["attempts"] = time.perf_counter() - t0
    if owner_url is not None:
        t0 = time.perf_counter()
        with psycopg.connect(libpq_url(owner_url), autocommit=True) as owner:
            for table in TABLES:
                owner.execute(sql.SQL("ANALYZE {}").format(sql.Identifier(table)))
        seconds["analyze"] = time.perf_counter() - t0
    with db.as_system() as conn:
        counts = conn.execute(
            """
            SELECT (SELECT count(*) FROM workflow_executions
                     WHERE temporal_namespace = %(ns)s) AS e,
                   (SELECT count(*) FROM component_executions c JOIN workflow_executions x
                      ON x.id = c.workflow_execution_id AND x.temporal_namespace = %(ns)s) AS c,
                   (SELECT count(*) FROM component_execution_attempts
                     WHERE temporal_namespace = %(ns)s) AS a
            """,
            {"ns": NAMESPACE},
        ).fetchone()
    assert counts is not None
    return DebugData(users, counts["e"], counts["c"], counts["a"], seconds)

"""Alert rules, what they watch, and their delivery log (migrations/0500).

Rule management and the delivery log run in the caller's unit of work
(``Database.as_user``): row-level security shows a project's rules and deliveries to the
project's owner only, so another user's rule is simply not found. Evaluation and delivery
run as the system (``Database.as_system``). Channel secrets are only ever stored and read
as ciphertext here; :mod:`wfmon.alerts.rules` encrypts and decrypts them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final
from uuid import UUID

from psycopg import sql
from psycopg.types.json import Jsonb

from wfmon.db.database import DbConnection
from wfmon.db.vocabulary import FAILED

Row = dict[str, Any]

#: What a rule is to its users (no ciphertext, no watermark).
_RULE: Final = """
    r.id, r.project_id, r.workflow_id, r.name, r.kind, r.params, r.channel_type,
    r.channel_config, r.channel_masked, r.quiet_period_seconds, r.enabled, r.created_by,
    r.created_at, r.updated_at,
    (SELECT w.name FROM workflows w WHERE w.id = r.workflow_id) AS workflow_name
"""
#: What the evaluator and the sender also need.
_RULE_SECRET: Final = (
    _RULE
    + """,
    r.channel_secret_encrypted, r.encryption_key_id, r.scanned_until,
    (SELECT p.name FROM projects p WHERE p.id = r.project_id) AS project_name
"""
)
_DELIVERY: Final = """
    d.id, d.rule_id, d.project_id, d.event_key, d.status, d.reason, d.is_test, d.alert,
    d.execution_id, d.attempts, d.next_attempt_at, d.sent_at, d.created_at, d.updated_at,
    r.name AS rule_name, r.channel_type
"""

#: Columns a user may set on a rule (the column grants of migrations/0500).
RULE_FIELDS: Final = (
    "workflow_id",
    "name",
    "kind",
    "params",
    "channel_type",
    "channel_config",
    "channel_masked",
    "channel_secret_encrypted",
    "encryption_key_id",
    "quiet_period_seconds",
    "enabled",
)
_JSON_FIELDS: Final = frozenset({"params", "channel_config"})


def _value(column: str, value: Any) -> Any:
    return Jsonb(value) if column in _JSON_FIELDS else value


# -- rules (as the project's owner) -----------------------------------------------------------


def insert_rule(conn: DbConnection, rule_id: UUID, project_id: UUID, values: dict[str, Any]) -> Row:
    """Insert a rule created by the caller in ``project_id``; return it (no ciphertext).

    Raises psycopg's ``UniqueViolation`` for a name the project already has,
    ``InsufficientPrivilege`` when the project (or workflow) is not the caller's, and
    ``ForeignKeyViolation`` / ``NotNullViolation`` when they do not exist."""
    columns = ["id", "project_id", "created_by", *values]
    row = conn.execute(
        sql.SQL(
            "WITH r AS (INSERT INTO alert_rules ({}) VALUES (%s, %s, "
            "(SELECT wfmon_current_user_id()), {}) RETURNING *) SELECT {} FROM r"
        ).format(
            sql.SQL(", ").join(map(sql.Identifier, columns)),
            sql.SQL(", ").join(sql.Placeholder() for _ in values),
            sql.SQL(_RULE),
        ),
        (rule_id, project_id, *(_value(c, v) for c, v in values.items())),
    ).fetchone()
    assert row is not None
    return row


def list_rules(conn: DbConnection, project_id: UUID) -> list[Row]:
    """The project's rules visible to the caller, by name."""
    return conn.execute(
        sql.SQL(
            "SELECT {} FROM alert_rules r WHERE r.project_id = %s ORDER BY r.name, r.id"
        ).format(sql.SQL(_RULE)),
        (project_id,),
    ).fetchall()


def get_rule(conn: DbConnection, rule_id: UUID) -> Row | None:
    """One rule (no ciphertext), or None when missing or not visible."""
    return conn.execute(
        sql.SQL("SELECT {} FROM alert_rules r WHERE r.id = %s").format(sql.SQL(_RULE)), (rule_id,)
    ).fetchone()


def get_rule_secret(conn: DbConnection, rule_id: UUID) -> Row | None:
    """One rule with its channel ciphertext and project name, or None when not visible."""
    return conn.execute(
        sql.SQL("SELECT {} FROM alert_rules r WHERE r.id = %s").format(sql.SQL(_RULE_SECRET)),
        (rule_id,),
    ).fetchone()


def update_rule(conn: DbConnection, rule_id: UUID, values: dict[str, Any]) -> Row | None:
    """Set ``values`` (keys from :data:`RULE_FIELDS`) and ``updated_at``; the rule, or None
    when missing or not the caller's. Raises ``UniqueViolation`` for a taken name and
    ``InsufficientPrivilege`` when a policy refuses the write."""
    unknown = set(values) - set(RULE_FIELDS)
    if unknown:
        raise ValueError(f"not rule fields: {sorted(unknown)}")
    sets = sql.SQL(", ").join(
        [sql.SQL("updated_at = now()")]
        + [sql.SQL("{} = %s").format(sql.Identifier(c)) for c in values]
    )
    return conn.execute(
        sql.SQL(
            "WITH r AS (UPDATE alert_rules SET {} WHERE id = %s RETURNING *) SELECT {} FROM r"
        ).format(sets, sql.SQL(_RULE)),
        (*(_value(c, v) for c, v in values.items()), rule_id),
    ).fetchone()


def delete_rule(conn: DbConnection, rule_id: UUID) -> bool:
    """Delete a rule and its deliveries; False when missing or not the caller's."""
    row = conn.execute("DELETE FROM alert_rules WHERE id = %s RETURNING id", (rule_id,)).fetchone()
    return row is not None


# -- evaluation (as the system) ---------------------------------------------------------------


def enabled_rule_ids(conn: DbConnection) -> list[UUID]:
    """Every enabled rule, oldest first."""
    rows = conn.execute(
        "SELECT id FROM alert_rules WHERE enabled ORDER BY created_at, id"
    ).fetchall()
    return [r["id"] for r in rows]


def lock_rule_for_scan(conn: DbConnection, rule_id: UUID) -> Row | None:
    """Lock an enabled rule for this transaction's evaluation (None: gone, disabled, or
    being evaluated by a concurrent tick, which then does the work)."""
    return conn.execute(
        sql.SQL(
            "SELECT {} FROM alert_rules r WHERE r.id = %s AND r.enabled "
            "FOR NO KEY UPDATE SKIP LOCKED"
        ).format(sql.SQL(_RULE_SECRET)),
        (rule_id,),
    ).fetchone()


def set_scanned_until(conn: DbConnection, rule_id: UUID) -> None:
    """Move the rule's watermark to this transaction's start."""
    conn.execute("UPDATE alert_rules SET scanned_until = now() WHERE id = %s", (rule_id,))


def database_now(conn: DbConnection) -> datetime:
    """The transaction's ``now()`` (the clock every stored timestamp uses)."""
    row = conn.execute("SELECT now() AS now").fetchone()
    assert row is not None
    return row["now"]  # type: ignore[no-any-return]


_SCOPE: Final = (
    "e.project_id = %(project)s AND (%(workflow)s::uuid IS NULL OR e.workflow_id = %(workflow)s)"
)
_EXECUTION: Final = """
    e.id AS execution_id, e.workflow_id, w.name AS workflow_name, e.temporal_workflow_id,
    e.status, e.started_at, e.closed_at, e.error_message
"""


def failed_executions(
    conn: DbConnection, project_id: UUID, workflow_id: UUID | None, written_after: datetime
) -> list[Row]:
    """Executions of the scope that closed as a failure and were written after
    ``written_after``, oldest close first, each with ``streak`` (failures in a row of its
    workflow up to and including it) and ``streak_start`` (the first of them)."""
    return conn.execute(
        f"""
        SELECT {_EXECUTION}, s.streak, s.streak_start
        FROM workflow_executions e
        LEFT JOIN workflows w ON w.id = e.workflow_id
        LEFT JOIN LATERAL (
            SELECT count(*) AS streak,
                   (array_agg(f.id ORDER BY f.closed_at, f.id))[1] AS streak_start
            FROM workflow_executions f
            WHERE f.workflow_id = e.workflow_id AND f.closed_at <= e.closed_at
              AND f.status IN {FAILED}
              AND f.closed_at > coalesce((
                  SELECT max(o.closed_at) FROM workflow_executions o
                  WHERE o.workflow_id = e.workflow_id AND o.closed_at <= e.closed_at
                    AND o.status NOT IN {FAILED}), '-infinity')
        ) s ON true
        WHERE {_SCOPE} AND e.updated_at > %(after)s
          AND e.closed_at IS NOT NULL AND e.status IN {FAILED}
        ORDER BY e.closed_at, e.id
        """,
        {"project": project_id, "workflow": workflow_id, "after": written_after},
    ).fetchall()


def unexpected_retry_executions(
    conn: DbConnection, project_id: UUID, workflow_id: UUID | None, written_after: datetime
) -> list[Row]:
    """Executions of the scope written after ``written_after`` with a component whose
    retries its policy did not expect, naming the first such component."""
    return conn.execute(
        f"""
        SELECT {_EXECUTION}, u.node_id, u.component_name, u.retry_count, u.error_type,
               u.component_error
        FROM workflow_executions e
        LEFT JOIN workflows w ON w.id = e.workflow_id
        JOIN LATERAL (
            SELECT c.node_id, coalesce(c.component_name, c.activity_type) AS component_name,
                   c.retry_count, c.error_type, c.error_message AS component_error
            FROM component_executions c
            WHERE c.workflow_execution_id = e.id AND c.retry_count > 0
              AND NOT c.is_expected_retry
            ORDER BY c.started_at NULLS LAST, c.scheduled_event_id
            LIMIT 1
        ) u ON true
        WHERE {_SCOPE} AND e.updated_at > %(after)s
        ORDER BY e.updated_at, e.id
        """,
        {"project": project_id, "workflow": workflow_id, "after": written_after},
    ).fetchall()


def new_failure_groups(
    conn: DbConnection,
    project_id: UUID,
    workflow_id: UUID | None,
    first_seen_after: datetime,
    built_after: datetime,
) -> list[Row]:
    """Failure groups of the scope first seen after ``first_seen_after`` (the rule's
    creation) and (re)built after ``built_after``."""
    return conn.execute(
        """
        SELECT g.workflow_id, w.name AS workflow_name, g.node_id, g.fingerprint,
               g.component_name, g.failure_type, g.failures, g.first_seen,
               g.latest_execution_id AS execution_id, g.latest_message
        FROM failure_groups g
        LEFT JOIN workflows w ON w.id = g.workflow_id
        WHERE g.project_id = %(project)s
          AND (%(workflow)s::uuid IS NULL OR g.workflow_id = %(workflow)s)
          AND g.first_seen > %(first_seen)s AND g.updated_at > %(built)s
        ORDER BY g.first_seen, g.workflow_id, g.node_id, g.fingerprint
        """,
        {
            "project": project_id,
            "workflow": workflow_id,
            "first_seen": first_seen_after,
            "built": built_after,
        },
    ).fetchall()


def failure_rates(
    conn: DbConnection, project_id: UUID, workflow_id: UUID | None, closed_after: datetime
) -> list[Row]:
    """Per workflow of the scope: executions closed after ``closed_after``, how many of
    them failed, and the newest of them (id, close time)."""
    return conn.execute(
        f"""
        SELECT e.workflow_id, max(w.name) AS workflow_name, count(*) AS executions,
               count(*) FILTER (WHERE e.status IN {FAILED}) AS failures,
               (array_agg(e.id ORDER BY e.closed_at DESC, e.id))[1] AS latest_id,
               (array_agg(e.id ORDER BY e.closed_at DESC, e.id)
                    FILTER (WHERE e.status IN {FAILED}))[1] AS latest_failed_id,
               max(e.closed_at) AS latest_closed_at
        FROM workflow_executions e
        JOIN workflows w ON w.id = e.workflow_id
        WHERE {_SCOPE} AND e.closed_at > %(after)s
        GROUP BY e.workflow_id
        ORDER BY e.workflow_id
        """,
        {"project": project_id, "workflow": workflow_id, "after": closed_after},
    ).fetchall()


def running_executions(conn: DbConnection, project_id: UUID, workflow_id: UUID | None) -> list[Row]:
    """Running executions of the scope with their most retried component: retries from the
    synced component rows or the worker's attempt rows, whichever is further."""
    return conn.execute(
        f"""
        SELECT {_EXECUTION}, m.node_id, coalesce(m.retries, 0) AS retries
        FROM workflow_executions e
        LEFT JOIN workflows w ON w.id = e.workflow_id
        LEFT JOIN LATERAL (
            SELECT x.node_id, x.retries FROM (
                SELECT c.node_id, greatest(c.retry_count, c.temporal_attempt - 1) AS retries
                FROM component_executions c WHERE c.workflow_execution_id = e.id
                UNION ALL
                SELECT a.activity_id, max(a.attempt) - 1
                FROM component_execution_attempts a
                WHERE a.temporal_namespace = e.temporal_namespace
                  AND a.temporal_workflow_id = e.temporal_workflow_id
                  AND a.temporal_run_id = e.temporal_run_id
                GROUP BY a.activity_id
            ) x ORDER BY x.retries DESC, x.node_id LIMIT 1
        ) m ON true
        WHERE {_SCOPE} AND e.status = 'running'
        ORDER BY e.started_at, e.id
        """,
        {"project": project_id, "workflow": workflow_id},
    ).fetchall()


# -- deliveries -------------------------------------------------------------------------------


def record_delivery(
    conn: DbConnection,
    *,
    rule_id: UUID,
    project_id: UUID,
    event_key: str,
    dedupe_key: str,
    alert: dict[str, Any],
    execution_id: UUID | None,
    quiet_period_seconds: int,
) -> Row | None:
    """Record an event of a rule (as the system): ``pending`` (due now), or ``suppressed``
    when the subject was already alerted (``duplicate``) or another alert of the rule is
    younger than the quiet period. None when the event was already recorded (or a
    concurrent tick recorded the subject first): the unique indexes decide."""
    return conn.execute(
        """
        WITH verdict AS (
            SELECT CASE
                WHEN EXISTS (SELECT 1 FROM alert_deliveries d
                             WHERE d.rule_id = %(rule)s AND d.dedupe_key = %(dedupe)s
                               AND d.status <> 'suppressed')
                    THEN 'duplicate of an alert already delivered'
                WHEN EXISTS (SELECT 1 FROM alert_deliveries d
                             WHERE d.rule_id = %(rule)s AND NOT d.is_test
                               AND d.status <> 'suppressed'
                               AND d.created_at > now() - make_interval(secs => %(quiet)s))
                    THEN 'inside the rule''s quiet period'
            END AS reason
        )
        INSERT INTO alert_deliveries (rule_id, project_id, event_key, dedupe_key, status,
                                      reason, alert, execution_id, next_attempt_at)
        SELECT %(rule)s, %(project)s, %(event)s, %(dedupe)s,
               CASE WHEN v.reason IS NULL THEN 'pending' ELSE 'suppressed' END,
               v.reason, %(alert)s,
               (SELECT e.id FROM workflow_executions e WHERE e.id = %(execution)s),
               CASE WHEN v.reason IS NULL THEN now() END
        FROM verdict v
        ON CONFLICT DO NOTHING
        RETURNING id, status, reason
        """,
        {
            "rule": rule_id,
            "project": project_id,
            "event": event_key,
            "dedupe": dedupe_key,
            "alert": Jsonb(alert),
            "execution": execution_id,
            "quiet": quiet_period_seconds,
        },
    ).fetchone()


def record_test_delivery(
    conn: DbConnection,
    *,
    delivery_id: UUID,
    rule_id: UUID,
    project_id: UUID,
    alert: dict[str, Any],
    status: str,
    reason: str | None,
) -> Row:
    """Record a test alert the caller sent (as the project's owner), already sent or failed."""
    row = conn.execute(
        """
        INSERT INTO alert_deliveries (id, rule_id, project_id, event_key, dedupe_key, status,
                                      reason, is_test, alert, attempts, sent_at)
        VALUES (%(id)s, %(rule)s, %(project)s, %(key)s, %(key)s, %(status)s, %(reason)s, true,
                %(alert)s, 1, CASE WHEN %(status)s = 'sent' THEN now() END)
        RETURNING id
        """,
        {
            "id": delivery_id,
            "rule": rule_id,
            "project": project_id,
            "key": f"test:{delivery_id}",
            "status": status,
            "reason": reason,
            "alert": Jsonb(alert),
        },
    ).fetchone()
    assert row is not None
    got = get_delivery(conn, row["id"])
    assert got is not None
    return got


def claim_due_deliveries(conn: DbConnection, *, limit: int, lease_seconds: float) -> list[Row]:
    """Take up to ``limit`` deliveries of enabled rules that are due (pending, or failed and
    due again), oldest first, and push their due time ``lease_seconds`` ahead, so a concurrent tick
    leaves them alone and a crashed sender's deliveries become due again. Each row carries
    its rule's channel (ciphertext) and ``attempts`` so far."""
    return conn.execute(
        """
        WITH due AS (
            SELECT d.id FROM alert_deliveries d
            WHERE d.next_attempt_at <= now() AND d.status IN ('pending', 'failed')
              -- A disabled rule's alerts wait (muted, not lost) until it is enabled again.
              AND EXISTS (SELECT 1 FROM alert_rules r WHERE r.id = d.rule_id AND r.enabled)
            ORDER BY d.next_attempt_at, d.created_at
            LIMIT %(limit)s
            FOR UPDATE SKIP LOCKED
        ), claimed AS (
            UPDATE alert_deliveries d
            SET next_attempt_at = now() + make_interval(secs => %(lease)s)
            FROM due WHERE d.id = due.id
            RETURNING d.id, d.rule_id, d.alert, d.attempts, d.created_at
        )
        SELECT c.id, c.alert, c.attempts, c.created_at, r.id AS rule_id, r.channel_type,
               r.channel_config, r.channel_secret_encrypted, r.encryption_key_id
        FROM claimed c JOIN alert_rules r ON r.id = c.rule_id
        ORDER BY c.created_at, c.id
        """,
        {"limit": limit, "lease": lease_seconds},
    ).fetchall()


def mark_sent(conn: DbConnection, delivery_id: UUID) -> None:
    conn.execute(
        "UPDATE alert_deliveries SET status = 'sent', reason = NULL, attempts = attempts + 1, "
        "sent_at = now(), next_attempt_at = NULL, updated_at = now() WHERE id = %s",
        (delivery_id,),
    )


def mark_failed(
    conn: DbConnection, delivery_id: UUID, reason: str, retry_in_seconds: float | None
) -> None:
    """One more failed attempt; due again in ``retry_in_seconds`` (None: given up)."""
    conn.execute(
        """
        UPDATE alert_deliveries SET status = 'failed', reason = %(reason)s,
            attempts = attempts + 1, updated_at = now(),
            next_attempt_at = now() + make_interval(secs => %(retry)s)
        WHERE id = %(id)s
        """,
        {"id": delivery_id, "reason": reason, "retry": retry_in_seconds},
    )


def get_delivery(conn: DbConnection, delivery_id: UUID) -> Row | None:
    return conn.execute(
        sql.SQL(
            "SELECT {} FROM alert_deliveries d JOIN alert_rules r ON r.id = d.rule_id "
            "WHERE d.id = %s"
        ).format(sql.SQL(_DELIVERY)),
        (delivery_id,),
    ).fetchone()


def list_deliveries(
    conn: DbConnection, project_id: UUID, *, rule_id: UUID | None = None, limit: int = 50
) -> list[Row]:
    """The project's (or one rule's) deliveries visible to the caller, newest first."""
    return conn.execute(
        sql.SQL(
            "SELECT {} FROM alert_deliveries d JOIN alert_rules r ON r.id = d.rule_id "
            "WHERE d.project_id = %(project)s "
            "AND (%(rule)s::uuid IS NULL OR d.rule_id = %(rule)s) "
            "ORDER BY d.created_at DESC, d.id LIMIT %(limit)s"
        ).format(sql.SQL(_DELIVERY)),
        {"project": project_id, "rule": rule_id, "limit": limit},
    ).fetchall()

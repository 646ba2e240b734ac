"""Failure groups: failures grouped by workflow, node and error fingerprint.

The groups are built by the dbt models ``failure_group_days`` and ``failure_groups``
(``dbt_project/models/failures``) into tables of migration 0410, readable by the
workflow's owner only. The fingerprint is the SQL function ``wfmon_error_fingerprint``
(migration 0410): :func:`error_fingerprint` calls it, so the rules exist once.

Every statement runs on the caller's connection: ``Database.as_user`` for the pages and the
API (row-level security decides what is visible), ``as_system`` for checks.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Any, Final
from uuid import UUID

from wfmon.db.database import DbConnection

#: Days of the sparkline (the last N UTC days, today included).
SPARK_DAYS: Final = 14
#: Most groups a page or an API answer lists.
MAX_GROUPS: Final = 200


class GroupSort(StrEnum):
    """Orders of a failure-group list: most recent failure first, or most failures first."""

    NEWEST = "newest"
    BIGGEST = "biggest"


_ORDER: Final[dict[GroupSort, str]] = {
    GroupSort.NEWEST: "g.last_seen DESC, g.failures DESC, g.fingerprint",
    GroupSort.BIGGEST: "g.failures DESC, g.last_seen DESC, g.fingerprint",
}


def error_fingerprint(conn: DbConnection, failure_type: str | None, message: str | None) -> str:
    """The fingerprint of one error, computed by the database's ``wfmon_error_fingerprint``."""
    row = conn.execute(
        "SELECT wfmon_error_fingerprint(%(type)s, %(message)s) AS fp",
        {"type": failure_type, "message": message},
    ).fetchone()
    assert row is not None
    return str(row["fp"])


def _groups(
    conn: DbConnection, scope: str, scope_id: UUID, sort: GroupSort, limit: int, today: date
) -> list[dict[str, Any]]:
    first_day = today - timedelta(days=SPARK_DAYS - 1)
    rows = conn.execute(
        f"""
        WITH g AS (
            SELECT g.* FROM failure_groups g
            WHERE g.{scope} = %(scope_id)s
            ORDER BY {_ORDER[sort]}
            LIMIT %(limit)s
        )
        SELECT g.workflow_id, w.name AS workflow_name, g.node_id, g.fingerprint,
               g.component_name, g.failure_type, g.failures, g.executions,
               g.retried_failures, g.expected_retry_failures, g.first_seen, g.last_seen,
               g.latest_execution_id, g.latest_message, g.updated_at,
               coalesce((
                   SELECT array_agg(coalesce(d.failures, 0) ORDER BY s.day)
                   FROM generate_series(%(first_day)s::date, %(today)s::date, interval '1 day')
                        AS s(day)
                   LEFT JOIN failure_group_days d
                     ON d.workflow_id = g.workflow_id AND d.node_id = g.node_id
                    AND d.fingerprint = g.fingerprint AND d.day = s.day::date
               ), '{{}}') AS per_day
        FROM g
        LEFT JOIN workflows w ON w.id = g.workflow_id
        ORDER BY {_ORDER[sort]}
        """,
        {"scope_id": scope_id, "limit": limit, "first_day": first_day, "today": today},
    ).fetchall()
    return [dict(r) for r in rows]


def workflow_failure_groups(
    conn: DbConnection,
    workflow_id: UUID,
    *,
    sort: GroupSort = GroupSort.NEWEST,
    limit: int = MAX_GROUPS,
    today: date | None = None,
) -> list[dict[str, Any]]:
    """The failure groups of one workflow, each with ``per_day`` (``SPARK_DAYS`` counts,
    oldest first) and its latest example (``latest_execution_id``, ``latest_message``)."""
    return _groups(conn, "workflow_id", workflow_id, sort, limit, today or _today())


def project_failure_groups(
    conn: DbConnection,
    project_id: UUID,
    *,
    sort: GroupSort = GroupSort.NEWEST,
    limit: int = MAX_GROUPS,
    today: date | None = None,
) -> list[dict[str, Any]]:
    """The failure groups of every workflow of a project (see :func:`workflow_failure_groups`)."""
    return _groups(conn, "project_id", project_id, sort, limit, today or _today())


def last_built(conn: DbConnection) -> datetime | None:
    """When the failure groups were last built (None: never)."""
    row = conn.execute(
        "SELECT built_at FROM failure_group_builds WHERE model = 'failure_groups'"
    ).fetchone()
    return None if row is None else row["built_at"]


def failure_group_mismatches(conn: DbConnection, limit: int = 100) -> list[dict[str, Any]]:
    """Groups whose failure count differs from the sum of their days (as the system role);
    groups changed after the last build are skipped (the next build covers them)."""
    rows = conn.execute(
        """
        SELECT g.workflow_id, g.node_id, g.fingerprint, g.failures, d.failures AS day_failures
        FROM failure_groups g
        JOIN LATERAL (
            SELECT coalesce(sum(d.failures), 0)::integer AS failures, max(d.updated_at) AS t
            FROM failure_group_days d
            WHERE d.workflow_id = g.workflow_id AND d.node_id = g.node_id
              AND d.fingerprint = g.fingerprint
        ) d ON true
        WHERE g.failures <> d.failures AND d.t <= g.updated_at
        LIMIT %(limit)s
        """,
        {"limit": limit},
    ).fetchall()
    return [dict(r) for r in rows]


def count_failure_groups(conn: DbConnection) -> int:
    """How many failure groups exist (as the system role: all of them)."""
    row = conn.execute("SELECT count(*) AS n FROM failure_groups").fetchone()
    return 0 if row is None else int(row["n"])


def _today() -> date:
    return datetime.now(UTC).date()

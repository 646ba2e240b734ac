"""Failure groups: failures grouped by workflow, node and error fingerprint.

The groups are built by the dbt models ``failure_group_days`` and ``failure_groups``
(``dbt_project/models/failures``) into tables of migration 0410, readable by the
workflow's owner only. The fingerprint is the SQL function ``wfmon_error_fingerprint``
(migration 0410): :func:`error_fingerprint` calls it, so the rules exist once.

Lists are paged: :func:`group_counts` says how many groups a project (per workflow) has,
:func:`failure_group_page` reads one page in one of the two total orders of
:class:`GroupSort`, each served by an index of migration 0590 (an index scan of the
page's offset plus its size, then one range scan of ``failure_group_days`` per listed
group for its sparkline).

Every statement runs on the caller's connection: ``Database.as_user`` for the pages and the
API (row-level security decides what is visible), ``as_system`` for checks.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Any, Final
from uuid import UUID

from wfmon.db.database import DbConnection

#: Days of the sparkline (the last N UTC days, today included).
SPARK_DAYS: Final = 14
#: Most groups one page lists.
MAX_PAGE_SIZE: Final = 200


class GroupSort(StrEnum):
    """Orders of a failure-group list: most recent failure first, or most failures first."""

    NEWEST = "newest"
    BIGGEST = "biggest"


# Total orders (ties broken by the primary key): a group is on exactly one page. Each is the
# column order of an index of migration 0590 (workflow_id is constant under the workflow
# filter, so the workflow indexes serve the same ORDER BY).
_ORDER: Final[dict[GroupSort, str]] = {
    GroupSort.NEWEST: "g.last_seen DESC, g.failures DESC, g.workflow_id, g.node_id, g.fingerprint",
    GroupSort.BIGGEST: "g.failures DESC, g.last_seen DESC, g.workflow_id, g.node_id, g.fingerprint",
}


@dataclass(frozen=True)
class GroupScope:
    """Whose groups: a project's (``workflow_id`` None) or one workflow's of the project.

    ``project_id`` None with a ``workflow_id``: that workflow's, wherever it is."""

    project_id: UUID | None
    workflow_id: UUID | None = None

    def where(self) -> str:
        """The WHERE clause on ``failure_groups g`` (parameters ``project``, ``workflow``)."""
        parts = []
        if self.project_id is not None:
            parts.append("g.project_id = %(project)s")
        if self.workflow_id is not None:
            parts.append("g.workflow_id = %(workflow)s")
        return " AND ".join(parts) or "false"

    def params(self) -> dict[str, Any]:
        return {"project": self.project_id, "workflow": self.workflow_id}


@dataclass(frozen=True)
class WorkflowGroups:
    """How many failure groups one workflow has (the page's workflow filter)."""

    workflow_id: UUID
    workflow_name: str | None
    groups: int


def error_fingerprint(conn: DbConnection, failure_type: str | None, message: str | None) -> str:
    """The fingerprint of one error, computed by the database's ``wfmon_error_fingerprint``."""
    row = conn.execute(
        "SELECT wfmon_error_fingerprint(%(type)s, %(message)s) AS fp",
        {"type": failure_type, "message": message},
    ).fetchone()
    assert row is not None
    return str(row["fp"])


def group_counts(conn: DbConnection, scope: GroupScope) -> list[WorkflowGroups]:
    """The number of visible groups of each workflow in ``scope`` that has any, by name.

    Their sum is the scope's total (one index-only range of migration 0590's indexes)."""
    rows = conn.execute(
        f"""
        SELECT c.workflow_id, w.name AS workflow_name, c.groups
        FROM (SELECT g.workflow_id, count(*)::integer AS groups
              FROM failure_groups g WHERE {scope.where()}
              GROUP BY g.workflow_id) c
        LEFT JOIN workflows w ON w.id = c.workflow_id
        ORDER BY w.name, c.workflow_id
        """,
        scope.params(),
    ).fetchall()
    return [WorkflowGroups(**r) for r in rows]


def _page_sql(scope: GroupScope, sort: GroupSort) -> str:
    return f"""
        WITH g AS MATERIALIZED (
            SELECT g.* FROM failure_groups g
            WHERE {scope.where()}
            ORDER BY {_ORDER[sort]}
            LIMIT %(limit)s OFFSET %(offset)s
        )
        SELECT g.workflow_id, w.name AS workflow_name, g.node_id, g.fingerprint,
               g.component_name, g.failure_type, g.failures, g.executions,
               g.retried_failures, g.expected_retry_failures, g.first_seen, g.last_seen,
               g.latest_execution_id, g.latest_message, g.updated_at, s.days, s.counts
        FROM g
        LEFT JOIN workflows w ON w.id = g.workflow_id
        CROSS JOIN LATERAL (
            SELECT array_agg(d.day ORDER BY d.day) AS days,
                   array_agg(d.failures ORDER BY d.day) AS counts
            FROM failure_group_days d
            WHERE d.workflow_id = g.workflow_id AND d.node_id = g.node_id
              AND d.fingerprint = g.fingerprint
              AND d.day BETWEEN %(first_day)s AND %(today)s
        ) s
        ORDER BY {_ORDER[sort]}
        """


def _page_params(scope: GroupScope, offset: int, limit: int, today: date) -> dict[str, Any]:
    first_day = today - timedelta(days=SPARK_DAYS - 1)
    return {**scope.params(), "limit": limit, "offset": offset, "first_day": first_day,
            "today": today}  # fmt: skip


def failure_group_page(
    conn: DbConnection,
    scope: GroupScope,
    *,
    sort: GroupSort = GroupSort.NEWEST,
    offset: int = 0,
    limit: int = 50,
    today: date | None = None,
) -> list[dict[str, Any]]:
    """Groups ``offset`` .. ``offset + limit`` of ``scope`` in ``sort`` order, each with
    ``per_day`` (``SPARK_DAYS`` counts up to ``today``, oldest first) and its latest example
    (``latest_execution_id``, ``latest_message``)."""
    today = today or _today()
    rows = conn.execute(
        _page_sql(scope, sort), _page_params(scope, offset, limit, today)
    ).fetchall()
    first_day = today - timedelta(days=SPARK_DAYS - 1)
    out = []
    for r in rows:
        group = dict(r)
        counts = dict(zip(group.pop("days") or [], group.pop("counts") or [], strict=True))
        group["per_day"] = [counts.get(first_day + timedelta(days=i), 0) for i in range(SPARK_DAYS)]
        out.append(group)
    return out


def explain_failure_group_page(
    conn: DbConnection, scope: GroupScope, sort: GroupSort, offset: int, limit: int
) -> dict[str, Any]:
    """PostgreSQL's plan (EXPLAIN ANALYZE, JSON) of :func:`failure_group_page` as the caller
    runs it, row-level security included (for the benchmark: the reads are index scans)."""
    row = conn.execute(
        "EXPLAIN (ANALYZE, FORMAT JSON) " + _page_sql(scope, sort),
        _page_params(scope, offset, limit, _today()),
    ).fetchone()
    assert row is not None
    plan = next(iter(row.values()))
    return dict((json.loads(plan) if isinstance(plan, str) else plan)[0])


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

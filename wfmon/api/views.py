"""What the API and the pages show, built from rows read under the caller's RLS.

Both the JSON endpoints and the HTML pages call these functions, so a page never shows
anything the API would not return to the same user. Each function takes the caller's
connection (``Database.as_user``) and raises :class:`~wfmon.api.errors.NotFound` for
anything missing or not visible.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any, Final
from uuid import UUID

import orjson

from wfmon.api.errors import NotFound
from wfmon.api.models import (
    ComponentOut,
    ComponentPageOut,
    CountItem,
    ExecutionDetailOut,
    ExecutionListItem,
    ExecutionOut,
    ExecutionPageOut,
    LiveStats,
    LongestRun,
    NotRunNodeOut,
    ProjectDetail,
    ProjectOut,
    ProjectStatsOut,
    TimelineOut,
    TrendPoint,
    WorkflowOut,
    WorkflowStatsOut,
)
from wfmon.api.retry_words import Policy, explain_attempts, policy_from_recorded, retry_summary
from wfmon.db import DbConnection
from wfmon.db import details as d
from wfmon.db import projects as projects_db
from wfmon.db import reruns as reruns_db
from wfmon.db import statistics as st
from wfmon.db.executions import page_executions
from wfmon.history import builder_definition
from wfmon.model import BUILDER_WORKFLOW_TYPE, ExecutionSort, ExecutionStatus

_OPEN = ("running", "retrying", "pending")


# -- projects and workflows -------------------------------------------------------------


def project_detail(conn: DbConnection, project_id: UUID) -> ProjectDetail:
    row = projects_db.get_project(conn, project_id)
    if row is None:
        raise NotFound(f"project {project_id} not found")
    workflows = [WorkflowOut(**w) for w in projects_db.list_workflows(conn, project_id)]
    return ProjectDetail(**row, workflows=workflows)


def projects(conn: DbConnection) -> list[ProjectOut]:
    return [ProjectOut(**r) for r in projects_db.list_projects(conn)]


def workflow(conn: DbConnection, workflow_id: UUID) -> WorkflowOut:
    row = projects_db.get_workflow(conn, workflow_id)
    if row is None:
        raise NotFound(f"workflow {workflow_id} not found")
    return WorkflowOut(**row)


# -- execution history ----------------------------------------------------------------


def execution_page(
    conn: DbConnection,
    workflow_id: UUID,
    *,
    status: ExecutionStatus | None,
    page: int,
    page_size: int,
    sort: ExecutionSort,
) -> ExecutionPageOut:
    return ExecutionPageOut.model_validate(
        execution_page_data(
            conn, workflow_id, status=status, page=page, page_size=page_size, sort=sort
        )
    )


#: A history item's fields, in the model's order.
_LISTED_FIELDS: Final = tuple(ExecutionListItem.model_fields)


def execution_page_data(
    conn: DbConnection,
    workflow_id: UUID,
    *,
    status: ExecutionStatus | None,
    page: int,
    page_size: int,
    sort: ExecutionSort,
) -> dict[str, Any]:
    """The fields of :class:`ExecutionPageOut` as plain values (what the API writes)."""
    if projects_db.get_workflow(conn, workflow_id) is None:
        raise NotFound(f"workflow {workflow_id} not found")
    result = page_executions(
        conn,
        workflow_id,
        status=status,
        page=page,
        page_size=page_size,
        sort=sort,
    )
    listed = [e.id for e in result.items]
    counts = d.count_components_by_execution(conn, listed)
    marks = reruns_db.rerun_marks(conn, listed)
    items = []
    for e in result.items:
        n, failed = counts.get(e.id, (0, 0))
        mark = marks.get(e.id)
        values = {
            **e.__dict__,  # a ListedExecution's fields
            "component_count": n,
            "failed_components": failed,
            "rerun_of": None if mark is None else asdict(mark),
        }
        items.append({f: values[f] for f in _LISTED_FIELDS})
    return {
        "items": items,
        "total": result.total,
        "page": result.page,
        "page_size": result.page_size,
        "pages": max(1, math.ceil(result.total / result.page_size)),
    }


# -- one execution ------------------------------------------------------------------------
#
# Each response is built as plain values (dicts, lists, rows' own values and the few
# models other modules return), which the API writes as JSON directly
# (:func:`wfmon.api.models.dump_json`); the model-returning functions validate the same
# values into the response models for the pages. So the API and the pages show the same
# fields, built once.


def _execution_row(conn: DbConnection, execution_id: UUID) -> dict[str, Any]:
    row = d.get_execution(conn, execution_id)
    if row is None:
        raise NotFound(f"execution {execution_id} not found")
    return row


def _execution_data(row: Mapping[str, Any], name: str | None, synced_now: bool) -> dict[str, Any]:
    """The fields of :class:`ExecutionOut`."""
    return {
        "id": row["id"],
        "project_id": row["project_id"],
        "workflow_id": row["workflow_id"],
        "workflow_name": name,
        "workflow_version": row["workflow_version"],
        "temporal_namespace": row["temporal_namespace"],
        "temporal_workflow_id": row["temporal_workflow_id"],
        "temporal_run_id": row["temporal_run_id"],
        "workflow_type": row["workflow_type"],
        "task_queue": row["task_queue"],
        "status": row["status"],
        "started_at": row["started_at"],
        "closed_at": row["closed_at"],
        "duration_ms": row["duration_ms"],
        "input": row["input"],
        "output": row["output"],
        "error_message": row["error_message"],
        "sync": {
            "status": row["history_sync_status"],
            "synced_at": row["history_synced_at"],
            "error": row["history_sync_error"],
            "event_count": row["history_event_count"],
            "history_bytes": row["history_bytes"],
            "synced_now": synced_now,
        },
    }


def execution_out(row: Mapping[str, Any], name: str | None, synced_now: bool) -> ExecutionOut:
    return ExecutionOut.model_validate(_execution_data(row, name, synced_now))


class _Policies:
    """Each distinct recorded retry policy of one response, read once: the components of
    an execution repeat a handful of policies."""

    def __init__(self) -> None:
        self._seen: dict[bytes | str, Policy] = {}

    def __call__(self, recorded: Mapping[str, Any] | None) -> Policy:
        # Equal JSON texts mean equal values (the converse need not hold: then it is only
        # read twice); orjson writes a small dict several times faster than repr, and
        # what it refuses (integers beyond 64 bits) is keyed by its repr.
        try:
            key: bytes | str = orjson.dumps(recorded)
        except TypeError:
            key = repr(recorded)
        policy = self._seen.get(key)
        if policy is None:
            policy = self._seen[key] = policy_from_recorded(recorded)
        return policy


def _component_data(
    row: Mapping[str, Any], attempts: Sequence[Mapping[str, Any]], policy: Policy
) -> dict[str, Any]:
    """The fields of :class:`ComponentOut` (and of its :class:`PolicyOut` and
    :class:`AttemptOut` entries)."""
    explained = explain_attempts(row, attempts, policy)
    return {
        "id": row["id"],
        "node_id": row["node_id"],
        "component_name": row["component_name"],
        "activity_type": row["activity_type"],
        "kind": row["kind"],
        "status": row["status"],
        "started_at": row["started_at"],
        "completed_at": row["completed_at"],
        "duration_ms": row["duration_ms"],
        "input": row["input_data"],
        "output": row["output_data"],
        "error_message": row["error_message"],
        "error_type": row["error_type"],
        "retry_count": row["retry_count"],
        "is_expected_retry": row["is_expected_retry"],
        "attempt": row["temporal_attempt"],
        "next_retry_at": row["next_retry_at"],
        "retry_state": row["retry_state"],
        "policy": dict(policy.fields),
        "attempts": explained,
        "retry_summary": retry_summary(row, policy, len(explained)),
    }


def component_out(row: Mapping[str, Any], attempts: Sequence[Mapping[str, Any]]) -> ComponentOut:
    policy = policy_from_recorded(row["retry_policy"])
    return ComponentOut.model_validate(_component_data(row, attempts, policy))


def _components_data(
    rows: Sequence[Mapping[str, Any]], attempts: Mapping[str, Sequence[Mapping[str, Any]]]
) -> list[dict[str, Any]]:
    policies = _Policies()
    return [
        _component_data(
            r,
            attempts.get(r["temporal_activity_id"] or r["node_id"], []),
            policies(r["retry_policy"]),
        )
        for r in rows
    ]


def _components(
    conn: DbConnection,
    execution: dict[str, Any],
    *,
    offset: int,
    limit: int,
    status: str | None,
) -> tuple[list[dict[str, Any]], dict[str, list[dict[str, Any]]]]:
    rows = d.page_component_executions(
        conn, execution["id"], offset=offset, limit=limit, status=status
    )
    ids = [r["temporal_activity_id"] or r["node_id"] for r in rows]
    return rows, d.list_activity_attempts(conn, execution, ids)


def _pct(t: datetime, start: datetime, span: float) -> float:
    return max(0.0, min(100.0, (t - start).total_seconds() / span * 100.0))


def timeline(
    execution: Mapping[str, Any],
    rows: Sequence[Mapping[str, Any]],
    attempts: Mapping[str, Sequence[Mapping[str, Any]]],
    now: datetime,
) -> TimelineOut:
    """Bars in percent of the execution's span (start to close, or to now while running).

    A component's bar has one segment per recorded attempt and a ``wait`` segment for each
    gap between attempts (the policy's retry interval), so retries are visible.
    """
    return TimelineOut.model_validate(_timeline_data(execution, rows, attempts, now))


def _timeline_data(
    execution: Mapping[str, Any],
    rows: Sequence[Mapping[str, Any]],
    attempts: Mapping[str, Sequence[Mapping[str, Any]]],
    now: datetime,
) -> dict[str, Any]:
    """The fields of :class:`TimelineOut` (see :func:`timeline`)."""
    start: datetime = execution["started_at"]
    end: datetime = execution["closed_at"] or now
    live = execution["closed_at"] is None
    span = max((end - start).total_seconds(), 0.001)
    bars: list[dict[str, Any]] = []
    for c in rows:
        tries = attempts.get(c["temporal_activity_id"] or c["node_id"])
        open_ = c["status"] in _OPEN
        if not tries:
            # Most components: no recorded attempts, so one segment, the bar itself
            # (what the general case below computes for them, with less work).
            bar = _plain_bar(c, start, span, now, open_)
            if bar is not None:
                bars.append(bar)
            continue
        starts = [t for t in [c["started_at"], *(a["started_at"] for a in tries)] if t]
        if not starts:
            continue
        ends = [t for t in [c["completed_at"], *(a["ended_at"] for a in tries)] if t]
        b_start = min(starts)
        b_end = now if open_ or not ends else max(ends)
        segments: list[dict[str, Any]] = []
        previous_end: datetime | None = None
        for a in tries:
            a_start = a["started_at"]
            a_end = a["ended_at"] or (now if open_ else b_end)
            if previous_end is not None and a_start > previous_end:
                segments.append(
                    _segment(
                        previous_end,
                        a_start,
                        start,
                        span,
                        "wait",
                        "wait",
                        f"waiting to retry before attempt {a['attempt']}",
                    )
                )
            segments.append(
                _segment(
                    a_start,
                    a_end,
                    start,
                    span,
                    "attempt",
                    a["outcome"],
                    f"attempt {a['attempt']}: {a['outcome']}",
                )
            )
            previous_end = a_end
        if open_ and previous_end is not None and c["status"] == "retrying":
            segments.append(
                _segment(previous_end, now, start, span, "wait", "wait", "waiting to retry")
            )
        if not segments:
            segments.append(
                _segment(
                    b_start,
                    b_end,
                    start,
                    span,
                    "attempt",
                    c["status"],
                    f"{c['node_id']}: {c['status']}",
                )
            )
        left = _pct(b_start, start, span)
        bars.append(
            {
                "component_id": c["id"],
                "node_id": c["node_id"],
                "status": c["status"],
                "left": round(left, 3),
                "width": round(max(_pct(b_end, start, span) - left, 0.2), 3),
                "segments": segments,
            }
        )
    return {"start": start, "end": end, "live": live, "bars": bars}


def _plain_bar(
    c: Mapping[str, Any], start: datetime, span: float, now: datetime, open_: bool
) -> dict[str, Any] | None:
    """The bar of a component without recorded attempts (None when it has not started):
    from its start to its end (to ``now`` while it is open or when its end is unknown),
    one segment as wide as the bar."""
    b_start: datetime | None = c["started_at"]
    if b_start is None:
        return None
    completed: datetime | None = c["completed_at"]
    b_end = now if open_ or completed is None else completed
    # _pct of both ends, inline (max(0, min(100, x)) written as comparisons).
    left = (b_start - start).total_seconds() / span * 100.0
    left = 0.0 if left <= 0.0 else 100.0 if left >= 100.0 else left
    right = (b_end - start).total_seconds() / span * 100.0
    right = 0.0 if right <= 0.0 else 100.0 if right >= 100.0 else right
    at, width = round(left, 3), round(max(right - left, 0.2), 3)
    status = c["status"]
    return {
        "component_id": c["id"],
        "node_id": c["node_id"],
        "status": status,
        "left": at,
        "width": width,
        "segments": [
            {
                "left": at,
                "width": width,
                "kind": "attempt",
                "outcome": status,
                "label": f"{c['node_id']}: {status}",
            }
        ],
    }


def _segment(
    a: datetime, b: datetime, start: datetime, span: float, kind: str, outcome: str, label: str
) -> dict[str, Any]:
    """The fields of :class:`TimelineSegment`."""
    left = _pct(a, start, span)
    return {
        "left": round(left, 3),
        "width": round(max(_pct(b, start, span) - left, 0.2), 3),
        "kind": kind,
        "outcome": outcome,
        "label": label,
    }


def never_stale(detail: Mapping[str, Any]) -> bool:
    """True when the execution of :func:`execution_detail_data` is closed and synced: its
    stored copy is final (the cache-aside freshness rule of
    :class:`~wfmon.sync.service.ExecutionService`), so reading it needs no freshness check."""
    e = detail["execution"]
    return _settled(e) and e["sync"]["synced_at"] is not None


def _settled(execution: Mapping[str, Any]) -> bool:
    return bool(execution["status"] != "running" and execution["sync"]["status"] == "synced")


def note_sync(detail: dict[str, Any], synced_now: bool, sync_error: str | None) -> dict[str, Any]:
    """``detail`` (:func:`execution_detail_data`) saying whether this read synced first and
    why its data may be old."""
    e = detail["execution"]
    e["sync"]["synced_now"] = synced_now
    if sync_error and not e["sync"]["error"] and not _settled(e):
        # A closed, synced execution is final: a failed freshness check says nothing about it.
        e["sync"]["error"] = sync_error
    return detail


def execution_detail_data(
    conn: DbConnection,
    execution_id: UUID,
    *,
    offset: int = 0,
    limit: int = 100,
    status: str | None = None,
) -> dict[str, Any]:
    """The fields of :class:`ExecutionDetailOut` as plain values, as read (no sync now:
    :func:`note_sync` says otherwise)."""
    row = _execution_row(conn, execution_id)
    counts = d.count_components_by_status(conn, execution_id)
    rows, attempts = _components(conn, row, offset=offset, limit=limit, status=status)
    name = projects_db.get_workflow_name(conn, row["workflow_id"])
    total = counts.get(status, 0) if status else sum(counts.values())
    return {
        "execution": _execution_data(row, name, False),
        "component_total": total,
        "component_counts": counts,
        "offset": offset,
        "limit": limit,
        "components": _components_data(rows, attempts),
        "timeline": _timeline_data(row, rows, attempts, datetime.now(UTC)),
        "not_run": not_run_nodes(conn, row),
    }


def execution_detail(
    conn: DbConnection,
    execution_id: UUID,
    *,
    offset: int = 0,
    limit: int = 100,
    status: str | None = None,
    synced_now: bool = False,
    sync_error: str | None = None,
) -> ExecutionDetailOut:
    data = execution_detail_data(conn, execution_id, offset=offset, limit=limit, status=status)
    return ExecutionDetailOut.model_validate(note_sync(data, synced_now, sync_error))


def not_run_nodes(conn: DbConnection, row: Mapping[str, Any]) -> list[NotRunNodeOut]:
    """The definition's nodes without a component execution, each with why: the upstream
    nodes that did not complete, or the execution ending (or, while it runs, not yet).
    Only wfmon's builder executions have a definition; others cost no query."""
    if row["workflow_type"] != BUILDER_WORKFLOW_TYPE:
        return []
    try:
        definition = builder_definition(row["input"])
    except ValueError:
        return []
    last_status = d.last_status_by_node(conn, row["id"])
    running = row["status"] == "running"
    out = []
    for node in definition.topological_order():
        if node.id in last_status:
            continue
        blocked_by = [u for u in definition.upstream(node.id) if last_status.get(u) != "completed"]
        names = ", ".join(blocked_by)
        if running:
            reason = f"waiting for {names}" if blocked_by else "not started yet"
        elif blocked_by:
            reason = f"not run: upstream {names} did not complete"
        else:
            reason = f"not run: the execution ended ({row['status'].replace('_', ' ')}) first"
        out.append(
            NotRunNodeOut(
                node_id=node.id,
                component=node.component,
                waiting=running,
                blocked_by=blocked_by,
                reason=reason,
            )
        )
    return out


def component_page(
    conn: DbConnection, execution_id: UUID, *, offset: int, limit: int, status: str | None
) -> ComponentPageOut:
    return ComponentPageOut.model_validate(
        component_page_data(conn, execution_id, offset=offset, limit=limit, status=status)
    )


def component_page_data(
    conn: DbConnection, execution_id: UUID, *, offset: int, limit: int, status: str | None
) -> dict[str, Any]:
    """The fields of :class:`ComponentPageOut` as plain values."""
    row = _execution_row(conn, execution_id)
    counts = d.count_components_by_status(conn, execution_id)
    rows, attempts = _components(conn, row, offset=offset, limit=limit, status=status)
    return {
        "total": counts.get(status, 0) if status else sum(counts.values()),
        "offset": offset,
        "limit": limit,
        "components": _components_data(rows, attempts),
    }


# -- statistics ----------------------------------------------------------------------------


def _live(conn: DbConnection, column: st.Scope, key: UUID) -> LiveStats:
    s = st.live_summary(conn, column, key)
    return LiveStats(
        total_runs=s["total_runs"],
        by_status=s["by_status"],
        failures=s["failures"],
        avg_duration_ms=s["avg_duration_ms"],
        max_duration_ms=s["max_duration_ms"],
        last_run_at=s["last_run_at"],
        top_components=[CountItem(**r) for r in st.top_components(conn, column, key)],
        trend=[TrendPoint(**r) for r in st.trend(conn, column, key)],
    )


def _jsonable(obj: object | None) -> dict[str, Any] | None:
    return None if obj is None else asdict(obj)  # type: ignore[call-overload]


def workflow_stats(conn: DbConnection, workflow_id: UUID) -> WorkflowStatsOut:
    workflow(conn, workflow_id)
    return WorkflowStatsOut(
        workflow_id=workflow_id,
        stored=_jsonable(st.get_workflow_statistics(conn, workflow_id)),
        stored_trend=[TrendPoint(**r) for r in st.stored_trend(conn, "workflow_id", workflow_id)],
        live=_live(conn, "workflow_id", workflow_id),
    )


def project_stats(conn: DbConnection, project_id: UUID) -> ProjectStatsOut:
    if projects_db.get_project(conn, project_id) is None:
        raise NotFound(f"project {project_id} not found")
    longest = st.longest_run(conn, project_id)
    return ProjectStatsOut(
        project_id=project_id,
        stored=_jsonable(st.get_project_statistics(conn, project_id)),
        stored_trend=[TrendPoint(**r) for r in st.stored_trend(conn, "project_id", project_id)],
        live=_live(conn, "project_id", project_id),
        top_workflows=[CountItem(**r) for r in st.top_workflows(conn, project_id)],
        top_task_queues=[CountItem(**r) for r in st.top_task_queues(conn, project_id)],
        longest_run=LongestRun(**longest) if longest else None,
    )

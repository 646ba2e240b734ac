"""Re-runs: the execution a re-run starts from, the workflow's latest definition, and the
links between an execution and the runs started from it (``execution_reruns``).

Every function runs one parameterised statement inside the caller's unit of work
(``Database.as_user``): row-level security limits it to the caller's own executions,
workflows and links. A new run is named by its Temporal ids, so a link holds whatever
the sync does with the new run's ``workflow_executions`` row (see migration 0510).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Final
from uuid import UUID

from wfmon.db.database import DbConnection


class RerunKind(StrEnum):
    """The two ways of running an execution again (``execution_reruns.kind``)."""

    RUN_AGAIN = "run_again"
    RETRY_FROM_FAILED = "retry_from_failed"


@dataclass(frozen=True)
class SourceExecution:
    """What a re-run needs to know about the execution it starts from."""

    id: UUID
    temporal_namespace: str
    temporal_workflow_id: str
    temporal_run_id: str
    workflow_type: str
    task_queue: str
    status: str
    project_id: UUID
    workflow_id: UUID | None
    workflow_version: int | None
    created_by: UUID
    #: The caller started it (the only one who may run it again).
    is_mine: bool


def source_execution(conn: DbConnection, execution_id: UUID) -> SourceExecution | None:
    """The execution, or None when it does not exist or the caller may not see it."""
    row = conn.execute(
        """
        SELECT id, temporal_namespace, temporal_workflow_id, temporal_run_id, workflow_type,
               task_queue, status, project_id, workflow_id, workflow_version, created_by,
               created_by = wfmon_current_user_id() AS is_mine
        FROM workflow_executions WHERE id = %s
        """,
        (execution_id,),
    ).fetchone()
    return SourceExecution(**row) if row else None


def lock_source(conn: DbConnection, execution_id: UUID) -> None:
    """Serialise re-runs of one execution until the unit of work ends (a transaction-level
    advisory lock): two clicks at once cannot both reset the same run."""
    conn.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended('wfmon-rerun:' || %s::text, 0))",
        (execution_id,),
    )


@dataclass(frozen=True)
class LatestDefinition:
    """A workflow's current definition (as its owner edits it) and its version number."""

    definition: Any
    version: int
    name: str


def latest_definition(conn: DbConnection, workflow_id: UUID) -> LatestDefinition | None:
    """The caller's own workflow's current definition, or None (gone, or not theirs)."""
    row = conn.execute(
        """
        SELECT definition, current_version AS version, name FROM workflows
        WHERE id = %s AND created_by = wfmon_current_user_id()
        """,
        (workflow_id,),
    ).fetchone()
    return LatestDefinition(**row) if row else None


@dataclass(frozen=True)
class NewRun:
    """One row of ``execution_reruns`` to write."""

    source_execution_id: UUID
    kind: str
    temporal_namespace: str
    temporal_workflow_id: str
    temporal_run_id: str
    definition_version: int | None
    created_by: UUID
    failed_node_id: str | None = None
    reset_event_id: int | None = None


def insert_rerun(conn: DbConnection, run: NewRun) -> UUID:
    """Record the link; returns its id. RLS: only the source execution's owner may."""
    row = conn.execute(
        """
        INSERT INTO execution_reruns (source_execution_id, kind, temporal_namespace,
            temporal_workflow_id, temporal_run_id, definition_version, failed_node_id,
            reset_event_id, created_by)
        VALUES (%(source_execution_id)s, %(kind)s, %(temporal_namespace)s,
            %(temporal_workflow_id)s, %(temporal_run_id)s, %(definition_version)s,
            %(failed_node_id)s, %(reset_event_id)s, %(created_by)s)
        RETURNING id
        """,
        asdict(run),
    ).fetchone()
    assert row is not None  # INSERT ... RETURNING of one row
    rerun_id: UUID = row["id"]
    return rerun_id


@dataclass(frozen=True)
class RerunLink:
    """A re-run seen from one end: the other execution (``execution_id`` is None until the
    sync has written the new run's row) and how the two are related."""

    kind: str
    created_at: datetime
    temporal_workflow_id: str
    temporal_run_id: str
    definition_version: int | None
    failed_node_id: str | None
    execution_id: UUID | None
    status: str | None
    started_at: datetime | None


#: The new run's row of a link, by its Temporal ids and owner.
_NEW_RUN_JOIN: Final = """
LEFT JOIN workflow_executions n
  ON n.temporal_namespace = r.temporal_namespace
 AND n.temporal_workflow_id = r.temporal_workflow_id
 AND n.temporal_run_id = r.temporal_run_id
 AND n.created_by = r.created_by
"""


def reruns_of(conn: DbConnection, execution_id: UUID) -> list[RerunLink]:
    """The runs started from this execution, oldest first (the other end: the new run)."""
    rows = conn.execute(
        f"""
        SELECT r.kind, r.created_at, r.temporal_workflow_id, r.temporal_run_id,
               r.definition_version, r.failed_node_id, n.id AS execution_id, n.status,
               n.started_at
        FROM execution_reruns r {_NEW_RUN_JOIN}
        WHERE r.source_execution_id = %s
        ORDER BY r.created_at, r.id
        """,
        (execution_id,),
    ).fetchall()
    return [RerunLink(**r) for r in rows]


def rerun_source(conn: DbConnection, execution_id: UUID) -> RerunLink | None:
    """The execution this one was started from, when wfmon started it as a re-run (the
    other end: the source execution), else None."""
    row = conn.execute(
        f"""
        SELECT r.kind, r.created_at, s.temporal_workflow_id, s.temporal_run_id,
               r.definition_version, r.failed_node_id, s.id AS execution_id, s.status,
               s.started_at
        FROM execution_reruns r {_NEW_RUN_JOIN}
        JOIN workflow_executions s ON s.id = r.source_execution_id
        WHERE n.id = %s
        """,
        (execution_id,),
    ).fetchone()
    return RerunLink(**row) if row else None


@dataclass(frozen=True)
class RerunMark:
    """How a listed execution came to be: re-run (``kind``) of ``source_execution_id``."""

    kind: RerunKind
    source_execution_id: UUID


def rerun_marks(conn: DbConnection, execution_ids: Sequence[UUID]) -> dict[UUID, RerunMark]:
    """For the listed executions that wfmon started as re-runs of another, how (the others
    are absent). One statement for a page of a history list."""
    if not execution_ids:
        return {}
    rows = conn.execute(
        f"""
        SELECT n.id, r.kind, r.source_execution_id
        FROM execution_reruns r {_NEW_RUN_JOIN}
        WHERE n.id = ANY(%s)
        """,
        (list(execution_ids),),
    ).fetchall()
    return {r["id"]: RerunMark(RerunKind(r["kind"]), r["source_execution_id"]) for r in rows}


def retry_of(conn: DbConnection, execution_id: UUID) -> RerunLink | None:
    """The retry-from-the-failed-node run already started from this execution, if any."""
    for link in reruns_of(conn, execution_id):
        if link.kind == RerunKind.RETRY_FROM_FAILED:
            return link
    return None


def find_execution_id(
    conn: DbConnection, namespace: str, workflow_id: str, run_id: str
) -> UUID | None:
    """Id of the caller's execution with these Temporal ids, once the sync wrote it."""
    row = conn.execute(
        """
        SELECT id FROM workflow_executions
        WHERE temporal_namespace = %s AND temporal_workflow_id = %s AND temporal_run_id = %s
        """,
        (namespace, workflow_id, run_id),
    ).fetchone()
    return row["id"] if row else None

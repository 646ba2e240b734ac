"""The database side of sync: ownership of an execution, the sync lease, and the write.

Every function takes a connection inside a ``Database.as_system()`` unit of work.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from typing import Final
from uuid import UUID

from psycopg import sql
from psycopg.types.json import Jsonb

from wfmon.db import bulk
from wfmon.db.bulk import column_list, recordset
from wfmon.db.columns import COMPONENT_EXECUTIONS, WORKFLOW_EXECUTIONS, identifiers
from wfmon.db.database import DbConnection
from wfmon.db.executions import upsert_execution
from wfmon.db.rows import (
    DISCOVERED_PROJECT_ID,
    SYSTEM_USER_ID,
    ComponentExecutionRow,
    ExecutionRow,
)
from wfmon.search.terms import NotPlainJson, execution_terms


@dataclass(frozen=True)
class ExecutionOwner:
    """Who an execution belongs to in wfmon."""

    created_by: UUID
    project_id: UUID
    workflow_id: UUID
    workflow_version: int | None


def _uuid(value: object) -> UUID | None:
    try:
        return UUID(str(value)) if value else None
    except ValueError:
        return None


_BUILDER_OWNER: Final = """
SELECT w.id AS workflow_id, w.project_id, w.created_by,
       (SELECT v.version FROM workflow_versions v
        WHERE v.workflow_id = w.id AND v.version = %(version)s) AS workflow_version
FROM workflows w
WHERE w.id = %(workflow)s AND w.created_by = %(user)s AND w.project_id = %(project)s
"""

# The namespace's assigned project (migrations/0551), else the Discovered project.
_DISCOVERED_WORKFLOW: Final = """
WITH target AS (
    SELECT coalesce(o.project_id, %(project)s) AS project_id,
           coalesce(o.created_by, %(user)s) AS created_by
    FROM (SELECT 1) AS one
    LEFT JOIN temporal_namespace_owners o ON o.temporal_namespace = %(namespace)s),
inserted AS (
    INSERT INTO workflows (project_id, created_by, name, description, visibility_id)
    SELECT t.project_id, t.created_by, %(name)s, %(description)s, v.id
    FROM target t, component_visibility v WHERE v.name = 'private'
    ON CONFLICT (project_id, name) DO NOTHING
    RETURNING id, project_id, created_by)
SELECT id, project_id, created_by FROM inserted
UNION ALL
SELECT w.id, w.project_id, w.created_by FROM workflows w, target t
WHERE w.project_id = t.project_id AND w.name = %(name)s
LIMIT 1
"""


def resolve_owner(
    conn: DbConnection,
    *,
    namespace: str,
    workflow_type: str,
    wfmon_workflow_id: object,
    project_id: object,
    user_id: object,
    definition_version: int | None,
) -> ExecutionOwner:
    """The owner recorded by the builder (memo ids), when they name a real workflow of that
    user in that project; otherwise the Discovered project's workflow for this
    (namespace, workflow type), registered on first sight. Never fails for unknown ids."""
    ids = (_uuid(wfmon_workflow_id), _uuid(project_id), _uuid(user_id))
    if all(ids):
        row = conn.execute(
            _BUILDER_OWNER,
            {"workflow": ids[0], "project": ids[1], "user": ids[2], "version": definition_version},
        ).fetchone()
        if row is not None:
            return ExecutionOwner(
                created_by=row["created_by"],
                project_id=row["project_id"],
                workflow_id=row["workflow_id"],
                workflow_version=row["workflow_version"],
            )
    return discovered_owner(conn, namespace, workflow_type)


def upsert_owned_execution(
    conn: DbConnection,
    row: ExecutionRow,
    *,
    wfmon_workflow_id: object,
    project_id: object,
    user_id: object,
    definition_version: int | None,
) -> UUID:
    """Upsert ``row`` with the owner :func:`resolve_owner` finds for these memo / search
    attribute ids (the row's own owner fields are ignored); return the execution's id.
    An existing row keeps its owner (see ``upsert_execution``)."""
    owner = resolve_owner(
        conn,
        namespace=row.temporal_namespace,
        workflow_type=row.workflow_type,
        wfmon_workflow_id=wfmon_workflow_id,
        project_id=project_id,
        user_id=user_id,
        definition_version=definition_version,
    )
    return upsert_execution(
        conn,
        replace(
            row,
            created_by=owner.created_by,
            project_id=owner.project_id,
            workflow_id=owner.workflow_id,
            workflow_version=owner.workflow_version,
        ),
    )


def discovered_workflow_id(conn: DbConnection, namespace: str, workflow_type: str) -> UUID:
    """The workflow registered for ``workflow_type`` in ``namespace`` (see
    :func:`discovered_owner`)."""
    return discovered_owner(conn, namespace, workflow_type).workflow_id


def discovered_owner(conn: DbConnection, namespace: str, workflow_type: str) -> ExecutionOwner:
    """The owner of executions of ``workflow_type`` in ``namespace`` that no wfmon user
    started: a workflow in the project the namespace is assigned to (as its owner,
    migrations/0551), else in the Discovered project (as the system user); created once,
    concurrent callers get the same row."""
    params = {
        "namespace": namespace,
        "project": DISCOVERED_PROJECT_ID,
        "user": SYSTEM_USER_ID,
        "name": f"{namespace}/{workflow_type}",
        "description": f"Executions of workflow type {workflow_type!r} found in Temporal "
        f"namespace {namespace!r}",
    }
    row = conn.execute(_DISCOVERED_WORKFLOW, params).fetchone()
    if row is None:  # a concurrent insert not yet visible: its commit makes it so
        row = conn.execute(_DISCOVERED_WORKFLOW, params).fetchone()
    assert row is not None
    return ExecutionOwner(
        created_by=row["created_by"],
        project_id=row["project_id"],
        workflow_id=row["id"],
        workflow_version=None,
    )


def component_ids(conn: DbConnection) -> dict[str, UUID]:
    """Registered components by name: the built-in one where there is one, else the oldest.

    Names are unique per owner (migrations/0301), so a name may have several rows.
    """
    rows = conn.execute(
        "SELECT DISTINCT ON (name) id, name FROM components"
        " ORDER BY name, created_by <> %s, created_at, id",
        (SYSTEM_USER_ID,),
    )
    return {r["name"]: r["id"] for r in rows}


def component_count(conn: DbConnection, execution_id: UUID) -> int:
    """How many component rows the execution has now."""
    row = conn.execute(
        "SELECT count(*) AS n FROM component_executions WHERE workflow_execution_id = %s",
        (execution_id,),
    ).fetchone()
    return int(row["n"]) if row else 0


def execution_ids(
    conn: DbConnection, namespace: str, runs: list[tuple[str, str]]
) -> dict[tuple[str, str], UUID]:
    """Ids of the executions among ``runs`` ((workflow id, run id) pairs) already known."""
    if not runs:
        return {}
    rows = conn.execute(
        """
        SELECT e.temporal_workflow_id, e.temporal_run_id, e.id
        FROM workflow_executions e
        JOIN unnest(%s::text[], %s::text[]) AS r(wid, rid)
          ON e.temporal_workflow_id = r.wid AND e.temporal_run_id = r.rid
        WHERE e.temporal_namespace = %s
        """,
        ([w for w, _ in runs], [r for _, r in runs], namespace),
    )
    return {(r["temporal_workflow_id"], r["temporal_run_id"]): r["id"] for r in rows}


# -- the sync lease -----------------------------------------------------------------------
#
# A lease (owner + expiry) on an execution row says "a sync is writing this". It replaces a
# sticky 'syncing' flag: a crashed syncer's lease simply expires. Leases are taken for a
# whole batch in one statement, renewed together while the batch runs, and released by
# each execution's own write (mark_history_synced / mark_history_sync_failed).


def acquire_leases(
    conn: DbConnection, namespace: str, runs: list[tuple[str, str]], owner: str, seconds: float
) -> set[tuple[str, str]]:
    """Lease the known executions among ``runs`` for ``owner``; return the runs whose lease
    is held by another live owner (those must not be synced now). Runs with no row yet are
    neither leased nor busy: their first write creates the row."""
    if not runs:
        return set()
    rows = conn.execute(
        """
        WITH wanted AS (
            SELECT * FROM unnest(%(wids)s::text[], %(rids)s::text[]) AS r(wid, rid)),
        taken AS (
            UPDATE workflow_executions e
            SET sync_lease_owner = %(owner)s,
                sync_lease_expires_at = now() + make_interval(secs => %(seconds)s)
            FROM wanted w
            WHERE e.temporal_namespace = %(ns)s
              AND e.temporal_workflow_id = w.wid AND e.temporal_run_id = w.rid
              AND (e.sync_lease_owner IS NULL OR e.sync_lease_owner = %(owner)s
                   OR e.sync_lease_expires_at < now())
            RETURNING e.temporal_workflow_id, e.temporal_run_id)
        SELECT e.temporal_workflow_id, e.temporal_run_id
        FROM workflow_executions e
        JOIN wanted w ON e.temporal_workflow_id = w.wid AND e.temporal_run_id = w.rid
        WHERE e.temporal_namespace = %(ns)s
        EXCEPT
        SELECT temporal_workflow_id, temporal_run_id FROM taken
        """,
        {
            "wids": [w for w, _ in runs],
            "rids": [r for _, r in runs],
            "ns": namespace,
            "owner": owner,
            "seconds": seconds,
        },
    ).fetchall()
    return {(r["temporal_workflow_id"], r["temporal_run_id"]) for r in rows}


def renew_leases(conn: DbConnection, owner: str, seconds: float) -> int:
    """Extend every lease ``owner`` still holds on a row no other transaction has locked;
    returns how many. A locked row is being written (its write releases the lease) and is
    renewed next time: waiting for it could deadlock with a write of several executions
    in one transaction (``wfmon.sync.activities``), which locks them one after another."""
    cur = conn.execute(
        """
        UPDATE workflow_executions e
        SET sync_lease_expires_at = now() + make_interval(secs => %s)
        FROM (SELECT id FROM workflow_executions WHERE sync_lease_owner = %s
              FOR UPDATE SKIP LOCKED) AS held
        WHERE e.id = held.id
        """,
        (seconds, owner),
    )
    return cur.rowcount


def release_lease(conn: DbConnection, execution_id: UUID, owner: str) -> None:
    """Give back ``owner``'s lease on the execution (a no-op when it holds none)."""
    conn.execute(
        "UPDATE workflow_executions SET sync_lease_owner = NULL, sync_lease_expires_at = NULL "
        "WHERE id = %s AND sync_lease_owner = %s",
        (execution_id, owner),
    )


@dataclass(frozen=True)
class WriteCheck:
    """What the row says just before a sync writes it (the row is locked)."""

    execution_id: UUID
    busy: bool
    stored_event_count: int | None


def lock_for_write(
    conn: DbConnection, namespace: str, workflow_id: str, run_id: str, owner: str
) -> WriteCheck | None:
    """Lock the execution's row (None when there is none yet) and tell whether ``owner``
    may write it: not while another owner's lease is live."""
    row = conn.execute(
        """
        SELECT id,
               sync_lease_owner IS NOT NULL AND sync_lease_owner <> %s
                   AND sync_lease_expires_at > now() AS busy,
               history_event_count
        FROM workflow_executions
        WHERE temporal_namespace = %s AND temporal_workflow_id = %s AND temporal_run_id = %s
        FOR UPDATE
        """,
        (owner, namespace, workflow_id, run_id),
    ).fetchone()
    if row is None:
        return None
    return WriteCheck(
        execution_id=row["id"], busy=row["busy"], stored_event_count=row["history_event_count"]
    )


def lock_for_sync_write(
    conn: DbConnection, namespace: str, workflow_id: str, run_id: str, owner: str
) -> WriteCheck | None:
    """:func:`lock_for_write`, and the transaction's search refresh moved to its commit
    (``wfmon.search_refresh``, migrations/0540): the sync's writes then rebuild each
    execution's search document once, not after each statement. One statement."""
    row = conn.execute(
        """
        SELECT e.id, e.busy, e.history_event_count
        FROM (SELECT set_config('wfmon.search_refresh', 'commit', true)) AS mode
        LEFT JOIN LATERAL (
            SELECT id,
                   sync_lease_owner IS NOT NULL AND sync_lease_owner <> %s
                       AND sync_lease_expires_at > now() AS busy,
                   history_event_count
            FROM workflow_executions
            WHERE temporal_namespace = %s AND temporal_workflow_id = %s
              AND temporal_run_id = %s
            FOR UPDATE
        ) e ON true
        """,
        (owner, namespace, workflow_id, run_id),
    ).fetchone()
    if row is None or row["id"] is None:
        return None
    return WriteCheck(
        execution_id=row["id"], busy=row["busy"], stored_event_count=row["history_event_count"]
    )


# -- the sync's write: one statement ------------------------------------------------------
#
# What upsert_owned_execution + replace_component_executions + mark_history_synced do, in
# one statement: the owner (the builder's workflow when the memo ids name one, else the
# given fallback), the execution row with its stored history and status `synced` (lease
# released), the component rows replaced. The ON CONFLICT rules are upsert_execution's
# (ownership kept, input/output kept when Temporal no longer has them) plus
# mark_history_synced's columns.

_EXECUTION_COLUMNS: Final = list(WORKFLOW_EXECUTIONS.types([f.name for f in fields(ExecutionRow)]))
_OWNER_COLUMNS: Final = ("created_by", "project_id", "workflow_id", "workflow_version")
_ROW_COLUMNS: Final = [c for c in _EXECUTION_COLUMNS if c not in _OWNER_COLUMNS]
_COMPONENT_COLUMNS: Final = COMPONENT_EXECUTIONS.types(
    [f.name for f in fields(ComponentExecutionRow)]
)
_COMPONENT_TIMES: Final = [c for c, t in _COMPONENT_COLUMNS.items() if t == "timestamptz"]


def _compact(statement: bytes) -> bytes:
    """``statement`` without comment lines and indentation (string literals in it hold no
    line breaks). psycopg caches how it splits a statement at its placeholders only for
    statements of at most ``MAX_CACHED_STATEMENT_LENGTH`` (4,096) bytes; the sync's write
    was longer and was split again on every execute (~0.1 ms of Python each)."""
    lines = (line.strip() for line in statement.splitlines())
    return b"\n".join(line for line in lines if line and not line.startswith(b"--"))


# Rendered to bytes once: composing the statement (identifier quoting) on every execute
# cost more Python time than sending it.
_WRITE_SYNCED: Final = _compact(
    sql.SQL(
        """
WITH owner AS (
    SELECT w.created_by, w.project_id, w.id AS workflow_id,
           (SELECT v.version FROM workflow_versions v
            WHERE v.workflow_id = w.id AND v.version = %(version)s) AS workflow_version
    FROM workflows w
    WHERE w.id = %(b_workflow)s AND w.created_by = %(b_user)s AND w.project_id = %(b_project)s
    UNION ALL
    SELECT %(f_user)s::uuid, %(f_project)s::uuid, %(f_workflow)s::uuid, NULL::integer
    WHERE %(f_workflow)s::uuid IS NOT NULL
    LIMIT 1
),
upserted AS (
    INSERT INTO workflow_executions AS e ({columns}, {owner_columns},
        temporal_history_json, temporal_history_proto, history_event_count, history_bytes,
        history_sync_status, history_synced_at, history_sync_error,
        sync_lease_owner, sync_lease_expires_at)
    SELECT {values}, {owner_values},
        %(history_json)s, %(history_proto)s, %(event_count)s, %(history_bytes)s,
        'synced', now(), NULL, NULL, NULL
    FROM owner o
    ON CONFLICT (temporal_namespace, temporal_workflow_id, temporal_run_id) DO UPDATE SET
        first_run_id = coalesce(EXCLUDED.first_run_id, e.first_run_id),
        workflow_type = EXCLUDED.workflow_type,
        task_queue = EXCLUDED.task_queue,
        status = EXCLUDED.status,
        started_at = EXCLUDED.started_at,
        closed_at = EXCLUDED.closed_at,
        duration_ms = EXCLUDED.duration_ms,
        input = coalesce(EXCLUDED.input, e.input),
        output = coalesce(EXCLUDED.output, e.output),
        error_message = EXCLUDED.error_message,
        temporal_history_json = EXCLUDED.temporal_history_json,
        temporal_history_proto = EXCLUDED.temporal_history_proto,
        history_event_count = EXCLUDED.history_event_count,
        history_bytes = EXCLUDED.history_bytes,
        history_sync_status = 'synced', history_synced_at = now(), history_sync_error = NULL,
        sync_lease_owner = NULL, sync_lease_expires_at = NULL,
        updated_at = now()
    -- Whether the stored input and output are the written ones (a NULL keeps the stored).
    RETURNING e.id, (e.input IS NULL) = %(no_input)s AND (e.output IS NULL) = %(no_output)s AS own
),
removed AS (
    DELETE FROM component_executions c USING upserted u
    WHERE c.workflow_execution_id = u.id
    RETURNING 1
),
inserted AS (
    INSERT INTO component_executions (workflow_execution_id, {component_columns})
    SELECT u.id, {component_columns}
    FROM upserted u, {recordset}
    -- The old rows go first: this scalar subquery runs the DELETE before any insert.
    WHERE (SELECT count(*) FROM removed) >= 0
    RETURNING 1
)
-- The path terms the worker computed from the values it wrote, for the search refresh
-- (migrations/0620).
SELECT u.id, (SELECT count(*) FROM inserted) AS components,
       wfmon_give_search_terms(u.id, CASE WHEN u.own THEN %(terms)s::text END) AS terms_given
FROM (SELECT) AS one LEFT JOIN upserted u ON true
"""
    )
    .format(
        columns=identifiers(_ROW_COLUMNS),
        owner_columns=identifiers(list(_OWNER_COLUMNS)),
        values=sql.SQL(", ").join(sql.Placeholder(c) for c in _ROW_COLUMNS),
        owner_values=sql.SQL(", ").join(sql.Identifier("o", c) for c in _OWNER_COLUMNS),
        component_columns=column_list(_COMPONENT_COLUMNS),
        recordset=recordset(_COMPONENT_COLUMNS, param="components"),
    )
    .as_bytes(None)
)


@dataclass(frozen=True)
class SyncedHistory:
    """The stored history a sync writes with the execution row."""

    proto: bytes
    event_count: int
    json: object | None = None


def write_synced_execution(
    conn: DbConnection,
    row: ExecutionRow,
    components: Sequence[ComponentExecutionRow],
    history: SyncedHistory,
    *,
    wfmon_workflow_id: object,
    project_id: object,
    user_id: object,
    definition_version: int | None,
    finite_numbers: bool = False,
) -> tuple[UUID, int]:
    """The sync's whole write of one execution: ``upsert_owned_execution`` (same owner
    rules), ``replace_component_executions`` and ``mark_history_synced``, as one statement
    (all or nothing). Returns the execution's id and how many component rows it now has.
    The caller holds the row's lock (:func:`lock_for_sync_write`) when the row exists.
    ``finite_numbers``: the caller knows the JSON values hold no NaN or infinite float, so
    the JSON is written by :func:`wfmon.db.bulk.fast_json` (when the rows' times are aware
    too); the stored rows are the same either way. The execution's search path terms are
    computed here (:mod:`wfmon.search.terms`) and given to the search refresh at commit
    (migrations/0620), which then need not walk the values; the stored terms are the
    same as the database's own."""
    fast = finite_numbers and all(
        getattr(c, name) is None or getattr(c, name).tzinfo is not None
        for c in components
        for name in _COMPONENT_TIMES
    )
    dumps = bulk.fast_json if fast else None
    terms = _search_terms(row, components)
    builder = (_uuid(wfmon_workflow_id), _uuid(project_id), _uuid(user_id))
    fallback: ExecutionOwner | None = None
    if not all(builder):
        fallback = _discovered_owner(conn, row)
    while True:
        params = {
            **{c: getattr(row, c) for c in _ROW_COLUMNS},
            "input": None if row.input is None else Jsonb(row.input, dumps=dumps),
            "output": None if row.output is None else Jsonb(row.output, dumps=dumps),
            "version": definition_version,
            "b_workflow": builder[0],
            "b_project": builder[1],
            "b_user": builder[2],
            "f_workflow": fallback.workflow_id if fallback else None,
            "f_project": fallback.project_id if fallback else None,
            "f_user": fallback.created_by if fallback else None,
            "history_json": None if history.json is None else Jsonb(history.json),
            "history_proto": history.proto,
            "event_count": history.event_count,
            "history_bytes": len(history.proto),
            "terms": terms,
            "no_input": row.input is None,
            "no_output": row.output is None,
        }
        components_param = bulk.rows_param(components, fast=fast)
        written = conn.execute(_WRITE_SYNCED, {**params, "components": components_param})
        result = written.fetchone()
        if result is not None and result["id"] is not None:
            return result["id"], int(result["components"])
        if fallback is not None:  # pragma: no cover - the fallback owner always exists
            raise RuntimeError("the sync's write found no owner for the execution")
        # The memo ids name no workflow of that user in that project.
        fallback = _discovered_owner(conn, row)


def _search_terms(row: ExecutionRow, components: Sequence[ComponentExecutionRow]) -> str | None:
    """The execution's search path terms as the write gives them to the search refresh
    (``term,term,...``), or None to leave them to the database (a value that is not plain
    JSON)."""
    try:
        terms = execution_terms(
            row.workflow_type,
            row.input,
            row.output,
            ((c.input_data, c.output_data) for c in components),
        )
    except NotPlainJson:
        return None
    return ",".join(map(str, terms))


def _discovered_owner(conn: DbConnection, row: ExecutionRow) -> ExecutionOwner:
    # The namespace's assigned project (0551), else the Discovered project.
    return discovered_owner(conn, row.temporal_namespace, row.workflow_type)

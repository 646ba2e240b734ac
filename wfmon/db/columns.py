"""The columns of ``workflow_executions`` and ``component_executions``, defined once.

Every column list of these two tables is generated from here: the SELECT lists in
:mod:`wfmon.db`, the bulk insert of component rows, what the Dagster assets describe
(``TableSchema``) and what the IO manager loads. ``tests/db/test_columns.py`` compares
both specs with the migrated schema, so a migration that adds, drops or retypes a column
fails until this file says what the column is.

Each column has a ``role`` saying who reads it:

``data``
    What the row is: read by every reader, loaded into notebooks, shown in Dagster.
``payload``
    JSON a user's workflow produced or configured (inputs, outputs, retry policy): read
    by the API's detail pages, left out of notebook frames (they can be large).
``history``
    The stored Temporal history: read only by its own readers (one row at a time).
``bookkeeping``
    The sync's own state (lease, row times): read by nobody outside the sync.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Final, Literal

from psycopg import sql

Role = Literal["data", "payload", "history", "bookkeeping"]

#: What a reader of a row gets: what the row is plus the JSON it carries.
READABLE: Final[frozenset[Role]] = frozenset({"data", "payload"})


@dataclass(frozen=True)
class Column:
    """One column: its name, SQL type (as written in the migrations), what it holds."""

    name: str
    sql_type: str
    description: str
    role: Role = "data"


@dataclass(frozen=True)
class Table:
    """A table's columns in the order the migrations create them."""

    name: str
    columns: tuple[Column, ...]

    def __post_init__(self) -> None:
        names = [c.name for c in self.columns]
        if len(set(names)) != len(names):
            raise ValueError(f"{self.name}: a column is listed twice")

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(f"{self.name} has no column {name!r}")

    def with_roles(self, roles: Collection[Role]) -> tuple[Column, ...]:
        """The columns whose role is one of ``roles``, in table order."""
        return tuple(c for c in self.columns if c.role in roles)

    def names(self, roles: Collection[Role] | None = None) -> list[str]:
        """Column names (all, or those with one of ``roles``), in table order."""
        columns = self.columns if roles is None else self.with_roles(roles)
        return [c.name for c in columns]

    def types(self, names: Collection[str]) -> dict[str, str]:
        """``name -> SQL type`` of ``names`` (in table order); KeyError for an unknown one."""
        unknown = set(names) - {c.name for c in self.columns}
        if unknown:
            raise KeyError(f"{self.name} has no column {', '.join(sorted(unknown))}")
        return {c.name: c.sql_type for c in self.columns if c.name in names}

    def select_list(
        self, roles: Collection[Role] | None = None, alias: str | None = None
    ) -> sql.Composed:
        """``col, col, ...`` of the columns with one of ``roles`` (all when None),
        qualified with ``alias.`` when given."""
        return identifiers(self.names(roles), alias)


def identifiers(names: list[str], alias: str | None = None) -> sql.Composed:
    """``name, name, ...`` as SQL identifiers (qualified with ``alias.`` when given)."""
    if alias is None:
        return sql.SQL(", ").join(sql.Identifier(n) for n in names)
    return sql.SQL(", ").join(sql.Identifier(alias, n) for n in names)


WORKFLOW_EXECUTIONS: Final = Table(
    "workflow_executions",
    (
        Column("id", "uuid", "wfmon's id of the execution row."),
        Column("temporal_namespace", "text", "Temporal namespace."),
        Column("temporal_workflow_id", "text", "Temporal workflow id."),
        Column("temporal_run_id", "text", "Temporal run id."),
        Column(
            "first_run_id",
            "text",
            "First run of the continue-as-new chain (this run's id for the first run).",
        ),
        Column("workflow_type", "text", "Temporal workflow type."),
        Column("task_queue", "text", "Task queue the execution ran on."),
        Column(
            "status",
            "text",
            "running, completed, failed, canceled, terminated, timed_out, continued_as_new.",
        ),
        Column("started_at", "timestamptz", "Start (event time)."),
        Column("closed_at", "timestamptz", "Close (event time); the partition is its UTC day."),
        Column("duration_ms", "bigint", "closed_at - started_at."),
        Column("created_by", "uuid", "Owner (users.id)."),
        Column("project_id", "uuid", "Project (projects.id)."),
        Column("workflow_id", "uuid", "wfmon workflow (workflows.id)."),
        Column("workflow_version", "integer", "Version of the workflow definition that ran."),
        Column("input", "jsonb", "The execution's input (decoded payloads).", "payload"),
        Column("output", "jsonb", "The execution's result (decoded payloads).", "payload"),
        Column("error_message", "text", "Why the execution failed, when it did."),
        Column(
            "temporal_history_json",
            "jsonb",
            "The synced history as Temporal's JSON (only when configured).",
            "history",
        ),
        Column("history_synced_at", "timestamptz", "When the history was last synced."),
        Column("history_sync_status", "text", "pending, synced or failed."),
        Column("history_sync_error", "text", "Why the last sync failed, when it did."),
        Column(
            "sync_lease_owner", "text", "The sync holding the row's lease, if any.", "bookkeeping"
        ),
        Column(
            "sync_lease_expires_at", "timestamptz", "When the sync lease expires.", "bookkeeping"
        ),
        Column("history_event_count", "integer", "Events in the synced history."),
        Column("history_bytes", "bigint", "Size of the synced history."),
        Column("created_at", "timestamptz", "When the row was first written.", "bookkeeping"),
        Column("updated_at", "timestamptz", "When the row was last written.", "bookkeeping"),
        Column(
            "temporal_history_proto",
            "bytea",
            "The synced history as Temporal's protobuf (History message).",
            "history",
        ),
    ),
)

COMPONENT_EXECUTIONS: Final = Table(
    "component_executions",
    (
        Column("id", "uuid", "Row id."),
        Column("workflow_execution_id", "uuid", "The execution (workflow_executions.id)."),
        Column("node_id", "text", "Node of the workflow definition (activity id)."),
        Column("component_id", "uuid", "Component (components.id), when known."),
        Column("component_name", "text", "Component name."),
        Column("kind", "text", "activity, local_activity or child_workflow."),
        Column("activity_type", "text", "Temporal activity type (or child workflow type)."),
        Column(
            "scheduled_event_id",
            "bigint",
            "Event id of the scheduling event: the component run's key in its history.",
        ),
        Column(
            "status",
            "text",
            "completed, failed, timed_out, canceled, running, retrying, pending.",
        ),
        Column(
            "started_at",
            "timestamptz",
            "When the component was scheduled (its first attempt), event time.",
        ),
        Column("completed_at", "timestamptz", "End of the last attempt (event time)."),
        Column("duration_ms", "bigint", "completed_at - started_at: every attempt included."),
        Column("input_data", "jsonb", "The component's input (decoded payloads).", "payload"),
        Column("output_data", "jsonb", "The component's result (decoded payloads).", "payload"),
        Column("error_message", "text", "Message of the final failure."),
        Column("error_type", "text", "Failure type of the final failure."),
        Column("retry_count", "integer", "Attempts after the first."),
        Column(
            "is_expected_retry", "boolean", "Retries were expected under the node's retry policy."
        ),
        Column("temporal_activity_id", "text", "Temporal activity id."),
        Column("temporal_attempt", "integer", "Number of the last attempt (1 for the first)."),
        Column(
            "child_workflow_execution_id",
            "uuid",
            "The child workflow's execution (workflow_executions.id), for child workflows.",
        ),
        Column("retry_policy", "jsonb", "Retry policy in force when it was scheduled.", "payload"),
        Column("retry_state", "text", "Temporal's retry state of the final failure."),
        Column("next_retry_at", "timestamptz", "When the next attempt is due, while retrying."),
        Column("created_at", "timestamptz", "When the row was written.", "bookkeeping"),
    ),
)

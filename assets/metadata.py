"""Shared asset metadata: owners, column schemas of the synced tables."""

from __future__ import annotations

from typing import Final

import dagster as dg

OWNERS: Final = ["team:data-platform"]
SYNC_GROUP: Final = "sync"


def schema(*columns: tuple[str, str, str]) -> dg.TableSchema:
    return dg.TableSchema(
        columns=[dg.TableColumn(name, type_, description=doc) for name, type_, doc in columns]
    )


EXECUTION_COLUMNS: Final = schema(
    ("id", "uuid", "wfmon's id of the execution row."),
    ("temporal_namespace", "text", "Temporal namespace."),
    ("temporal_workflow_id", "text", "Temporal workflow id."),
    ("temporal_run_id", "text", "Temporal run id."),
    ("workflow_type", "text", "Temporal workflow type."),
    ("task_queue", "text", "Task queue the execution ran on."),
    ("status", "text", "completed, failed, canceled, terminated, timed_out, continued_as_new."),
    ("started_at", "timestamptz", "Start (event time)."),
    ("closed_at", "timestamptz", "Close (event time); the partition is its UTC day."),
    ("duration_ms", "bigint", "closed_at - started_at."),
    ("created_by", "uuid", "Owner (users.id)."),
    ("project_id", "uuid", "Project (projects.id)."),
    ("workflow_id", "uuid", "wfmon workflow (workflows.id)."),
    ("history_sync_status", "text", "pending, synced or failed."),
    ("history_event_count", "integer", "Events in the synced history."),
    ("history_bytes", "bigint", "Size of the synced history."),
)

COMPONENT_COLUMNS: Final = schema(
    ("id", "uuid", "Row id."),
    ("workflow_execution_id", "uuid", "The execution (workflow_executions.id)."),
    ("node_id", "text", "Node of the workflow definition (activity id)."),
    ("component_id", "uuid", "Component (components.id), when known."),
    ("component_name", "text", "Component name."),
    ("status", "text", "completed, failed, timed_out, canceled, running, retrying, pending."),
    ("started_at", "timestamptz", "Start of the last attempt."),
    ("completed_at", "timestamptz", "End of the last attempt."),
    ("duration_ms", "bigint", "Duration of the component run."),
    ("retry_count", "integer", "Attempts after the first."),
    ("is_expected_retry", "boolean", "Retries were expected under the node's retry policy."),
    ("error_type", "text", "Failure type of the final failure."),
)

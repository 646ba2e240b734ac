"""Run the current version of a workflow: the same start as ``wfmon run``
(:func:`wfmon.runtime.start_builder_run`, memo and search attributes naming the workflow,
project, user and version), then one immediate sync through the sync coordinator records
the execution (users never write execution rows: the system does, from Temporal), so its
page exists when the answer arrives.

Steps, because starting needs ``await`` and the database work runs in the caller's
transactions: :func:`plan_run` (owner check, validation of the current version, input
check), :func:`start_run` (Temporal), :func:`register_run`, :func:`execution_id`.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from temporalio.client import Client
from temporalio.service import RPCError

from wfmon.db import accounts, versions
from wfmon.db.database import DbConnection
from wfmon.model import WorkflowDefinition
from wfmon.runtime import RunContext, start_builder_run
from wfmon.sync.messages import ExecutionRef
from wfmon.sync.worker import sync_now
from wfmon.workflows.editing import connection_choices, owned_workflow
from wfmon.workflows.errors import InvalidDefinition, Problem, RunNotStarted, WorkflowNotFound
from wfmon.workflows.validation import validate_definition

#: How long a run waits for the sync coordinator to record it before answering anyway.
REGISTER_TIMEOUT = 10.0
#: The largest execution input accepted (JSON text); Temporal refuses payloads over 2 MB.
MAX_INPUT_BYTES = 256 * 1024


@dataclass(frozen=True)
class RunPlan:
    """What to start, and for whom."""

    workflow_id: UUID
    project_id: UUID
    user_id: UUID
    definition: WorkflowDefinition
    workflow_input: Any


@dataclass(frozen=True)
class StartedRun:
    temporal_workflow_id: str
    run_id: str
    task_queue: str
    started_at: datetime


def check_input(value: Any) -> Any:
    """The execution input if it is small enough to start a run with."""
    size = len(json.dumps(value, separators=(",", ":")).encode())
    if size > MAX_INPUT_BYTES:
        raise InvalidDefinition(
            [Problem("input", f"is {size} bytes of JSON; at most {MAX_INPUT_BYTES} are accepted")]
        )
    return value


def plan_run(conn: DbConnection, workflow_id: UUID, workflow_input: Any) -> RunPlan:
    """The caller's workflow at its current version, checked to run (as a save is)."""
    wf = owned_workflow(conn, workflow_id, "run")
    user_id = accounts.current_user_id(conn)
    if user_id is None:
        raise WorkflowNotFound("you have no wfmon user yet")
    try:
        definition = validate_definition(
            wf.definition,
            connections={
                str(c.id): c.connection_type for c in connection_choices(conn, wf.project_id)
            },
            fixed={
                "id": wf.definition.get("id") or str(wf.id),
                "name": wf.name,
                "version": wf.current_version,
            },
        )
    except InvalidDefinition as exc:
        raise InvalidDefinition(
            [
                Problem(p.field, f"version {wf.current_version} cannot run: {p.message}")
                for p in exc.problems
            ]
        ) from None
    return RunPlan(wf.id, wf.project_id, user_id, definition, check_input(workflow_input))


async def start_run(client: Client, plan: RunPlan, *, task_queue: str) -> StartedRun:
    """Start the execution on Temporal (no waiting for it); :class:`RunNotStarted` when
    Temporal refuses."""
    try:
        handle = await start_builder_run(
            client,
            plan.definition,
            plan.workflow_input,
            context=RunContext(
                workflow_id=str(plan.workflow_id),
                project_id=str(plan.project_id),
                user_id=str(plan.user_id),
            ),
            task_queue=task_queue,
        )
    except RPCError as exc:
        raise RunNotStarted(f"Temporal did not start the run ({exc.status.name})") from None
    assert handle.result_run_id is not None  # set by start_workflow
    return StartedRun(handle.id, handle.result_run_id, task_queue, datetime.now(UTC))


async def register_run(client: Client, started: StartedRun) -> str | None:
    """Have the sync coordinator record the run now (as the system, owner taken from the
    run's search attributes, as for any builder run), so its page exists at once. Returns
    why it could not (the run itself goes on and is synced later), or None."""
    ref = ExecutionRef(client.namespace, started.temporal_workflow_id, started.run_id)
    try:
        result = await asyncio.wait_for(sync_now(client, ref), REGISTER_TIMEOUT)
    except TimeoutError:
        return f"the run is not recorded yet (sync did not answer within {REGISTER_TIMEOUT:g} s)"
    except Exception as exc:  # Temporal errors: the run started; say why it has no page yet
        return f"the run is not recorded yet ({type(exc).__name__})"
    return result.error


def execution_id(conn: DbConnection, namespace: str, started: StartedRun) -> UUID | None:
    """The caller's wfmon execution id for the run, once recorded."""
    return versions.execution_of_run(conn, namespace, started.temporal_workflow_id, started.run_id)

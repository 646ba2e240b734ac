"""Workflows: the workflow, its execution history (paged, filtered, sorted), statistics;
and editing (wfmon.workflows): create, save a new version, list, read and compare
versions, run the current version, and what a retry policy will do.

Under row-level security: only the owner edits or runs a workflow (a public one of
someone else is readable: 403 on writes; one you cannot see is a 404).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError

from wfmon.api import views
from wfmon.api.deps import Context, CurrentUser, CurrentUserWork, UserConn
from wfmon.api.editor_models import (
    ComponentOut,
    ConnectionChoiceOut,
    DiffOut,
    EdgeOut,
    EditorOut,
    NodeChangeOut,
    PolicyOut,
    RunCreate,
    RunOut,
    SavedOut,
    SettingChangeOut,
    VersionDetailOut,
    VersionOut,
    WorkflowCreate,
    WorkflowUpdate,
)
from wfmon.api.errors import (
    ERROR_RESPONSES,
    ApiError,
    Conflict,
    ErrorBody,
    NotFound,
    ServiceUnavailable,
)
from wfmon.api.inputs import StoredJson
from wfmon.api.models import (
    MAX_PAGE,
    ExecutionPageOut,
    WorkflowOut,
    WorkflowStatsOut,
    json_response,
)
from wfmon.api.retry_words import Policy
from wfmon.components.redis_command import ALLOWED as REDIS_COMMANDS
from wfmon.db import DbConnection
from wfmon.model import DEFAULT_EXECUTION_SORT, ExecutionSort, ExecutionStatus
from wfmon.runtime import BUILDER_TASK_QUEUE
from wfmon.workflows import editing, runs, validation
from wfmon.workflows.editing import SavedVersion
from wfmon.workflows.errors import (
    InvalidDefinition,
    NameTaken,
    NotOwner,
    RunNotStarted,
    VersionConflict,
    WorkflowNotFound,
)

router = APIRouter(prefix="/api/workflows", tags=["workflows"], responses=ERROR_RESPONSES)
#: Retry policies on their own (the node panel's live sentence and validation).
policies = APIRouter(prefix="/api/retry-policies", tags=["workflows"], responses=ERROR_RESPONSES)

#: The history page size is bounded well below the database's own bound.
MAX_HISTORY_PAGE_SIZE = 100


@router.get("/{workflow_id}", response_model=WorkflowOut)
def get_workflow(workflow_id: UUID, conn: UserConn) -> WorkflowOut:
    """A workflow you own, or a public one."""
    return views.workflow(conn, workflow_id)


@router.get("/{workflow_id}/executions", response_model=ExecutionPageOut)
async def list_executions(
    workflow_id: UUID,
    work: CurrentUserWork,
    status: Annotated[ExecutionStatus | None, Query(description="only this status")] = None,
    sort: ExecutionSort = DEFAULT_EXECUTION_SORT,
    page: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1,
    page_size: Annotated[int, Query(ge=1, le=MAX_HISTORY_PAGE_SIZE)] = 20,
) -> Response:
    """Your executions of this workflow, one page at a time, with component and error
    counts and each run's sync status."""

    # One unit of work on one worker thread (a route on UserConn hops three times:
    # entering the connection, the handler, leaving it); written once, from plain values.
    def read(conn: DbConnection) -> dict[str, Any]:
        return views.execution_page_data(
            conn, workflow_id, status=status, page=page, page_size=page_size, sort=sort
        )

    return json_response(await work.run(read), model=ExecutionPageOut)


@router.get("/{workflow_id}/statistics", response_model=WorkflowStatsOut)
def get_statistics(workflow_id: UUID, conn: UserConn) -> WorkflowStatsOut:
    """The statistics table's figures (``stored``, None until built) and live figures over
    the executions you may see, with a daily trend over the last 30 days."""
    return views.workflow_stats(conn, workflow_id)


# -- editing, versions, runs (wfmon.workflows) ---------------------------------------------

#: Version numbers are PostgreSQL integers.
VersionNumber = Annotated[int, Path(ge=1, le=2**31 - 1)]


class Forbidden(ApiError):
    """The caller may read this but not change it."""

    status_code = 403
    code = "forbidden"


_EDIT_RESPONSES: dict[int | str, dict[str, Any]] = {
    403: {"model": ErrorBody, "description": "A public workflow: readable, not editable"},
    409: {"model": ErrorBody, "description": "Saved from an old version, or name taken"},
}


@contextmanager
def _edit_errors() -> Iterator[None]:
    """wfmon.workflows' refusals as API errors; an invalid definition is a 422 whose
    ``fields`` say where (``body.definition.nodes.1.retry_policy.max_attempts``)."""
    try:
        yield
    except InvalidDefinition as exc:
        raise RequestValidationError(
            [
                {
                    "loc": ("body", *_loc(p.field)),
                    "msg": p.message,
                    "type": "invalid_definition",
                }
                for p in exc.problems
            ]
        ) from None
    except NotOwner as exc:
        raise Forbidden(str(exc)) from None
    except WorkflowNotFound as exc:
        raise NotFound(str(exc)) from None
    except (VersionConflict, NameTaken) as exc:
        raise Conflict(str(exc)) from None
    except RunNotStarted as exc:
        raise ServiceUnavailable(str(exc)) from None


def _loc(field: str) -> tuple[str, ...]:
    # Definition problems are located inside the body's ``definition``; input ones are not.
    parts = tuple(field.split("."))
    return parts if parts[0] in ("input", "definition") else ("definition", *parts)


def _saved_out(conn: DbConnection, saved: SavedVersion) -> SavedOut:
    return SavedOut(
        workflow=views.workflow(conn, saved.workflow_id),
        version=saved.version,
        definition=saved.definition.model_dump(mode="json"),
    )


@router.post("", response_model=SavedOut, status_code=201, responses=_EDIT_RESPONSES)
def create_workflow(body: WorkflowCreate, conn: UserConn) -> SavedOut:
    """A new workflow in your project, at version 1. The definition is validated as the
    runtime runs it (422 naming each node and field)."""
    with _edit_errors():
        wf, checked = editing.create_workflow(
            conn,
            project_id=body.project_id,
            name=body.name,
            definition=body.definition,
            visibility=body.visibility,
        )
    return _saved_out(conn, SavedVersion(wf.id, checked.version, checked))


@router.put("/{workflow_id}", response_model=SavedOut, responses=_EDIT_RESPONSES)
def update_workflow(workflow_id: UUID, body: WorkflowUpdate, conn: UserConn) -> SavedOut:
    """Save a new version (the old ones stay; executions keep the version they ran).
    Only the owner may; a cycle or an edge to a missing node is a 422 naming the node."""
    with _edit_errors():
        saved = editing.save_version(
            conn, workflow_id, body.definition, base_version=body.base_version
        )
    return _saved_out(conn, saved)


@router.get("/{workflow_id}/versions", response_model=list[VersionOut])
def list_versions(workflow_id: UUID, conn: UserConn) -> list[VersionOut]:
    """Every saved version, newest first."""
    with _edit_errors():
        wf = editing.get_workflow(conn, workflow_id)
        items = editing.list_versions(conn, workflow_id)
    return [VersionOut(**v.__dict__, current=v.version == wf.current_version) for v in items]


@router.get("/{workflow_id}/versions/{version}", response_model=VersionDetailOut)
def get_version(workflow_id: UUID, version: VersionNumber, conn: UserConn) -> VersionDetailOut:
    with _edit_errors():
        return VersionDetailOut(**editing.get_version(conn, workflow_id, version))


@router.get("/{workflow_id}/diff", response_model=DiffOut)
def diff_versions(
    workflow_id: UUID,
    conn: UserConn,
    from_version: Annotated[int, Query(alias="from", ge=1, le=2**31 - 1)],
    to_version: Annotated[int, Query(alias="to", ge=1, le=2**31 - 1)],
) -> DiffOut:
    """What changed from one version to another: nodes added, removed and changed (each
    setting with its old and new value) and edges added and removed."""
    with _edit_errors():
        d = editing.diff_versions(conn, workflow_id, from_version, to_version)
    return DiffOut(
        from_version=d.from_version,
        to_version=d.to_version,
        unchanged=d.unchanged,
        nodes_added=d.nodes_added,
        nodes_removed=d.nodes_removed,
        nodes_changed=[
            NodeChangeOut(
                node_id=c.node_id,
                changes=[SettingChangeOut(**s.__dict__) for s in c.changes],
            )
            for c in d.nodes_changed
        ],
        edges_added=[EdgeOut(source=s, target=t) for s, t in d.edges_added],
        edges_removed=[EdgeOut(source=s, target=t) for s, t in d.edges_removed],
    )


@router.get("/{workflow_id}/editor", response_model=EditorOut)
def editor(workflow_id: UUID, conn: UserConn) -> EditorOut:
    """What the node panel needs: the current definition, the components with their
    config schemas and connection types, and (owner only) the project's connections,
    without their URLs."""
    with _edit_errors():
        wf = editing.get_workflow(conn, workflow_id)
        choices = editing.connection_choices(conn, wf.project_id) if wf.owned else []
    specs = validation.specs_by_name()
    return EditorOut(
        workflow_id=wf.id,
        name=wf.name,
        owned=wf.owned,
        current_version=wf.current_version,
        definition=wf.definition,
        components=[
            ComponentOut(
                name=name,
                display_name=specs[name].display_name if name in specs else name,
                connection_type=specs[name].connection_type if name in specs else None,
                config_schema=specs[name].config_schema if name in specs else None,
            )
            for name in validation.known_components()
        ],
        connections=[ConnectionChoiceOut(**c.__dict__) for c in choices],
        redis_commands=sorted(REDIS_COMMANDS),
        strategies=list(validation.STRATEGIES),
    )


def builder_task_queue(request: Request) -> str:
    """Where runs are started: ``app.state.builder_task_queue`` when set, else the queue
    ``wfmon worker`` listens on."""
    queue = getattr(request.app.state, "builder_task_queue", None)
    return queue if isinstance(queue, str) and queue else BUILDER_TASK_QUEUE


@router.post(
    "/{workflow_id}/runs", response_model=RunOut, status_code=201, responses=_EDIT_RESPONSES
)
async def start_run(
    workflow_id: UUID,
    body: RunCreate,
    ctx: Context,
    work: CurrentUserWork,
    task_queue: Annotated[str, Depends(builder_task_queue)],
) -> RunOut:
    """Start an execution of the current version with ``input`` (as ``wfmon run`` does);
    the answer names the execution and its page. Only the owner may run a workflow."""
    with _edit_errors():
        plan = await work.run(lambda c: runs.plan_run(c, workflow_id, body.input))
        client = await ctx.temporal.client()
        started = await runs.start_run(client, plan, task_queue=task_queue)
        problem = await runs.register_run(client, started)
        execution_id = await work.run(lambda c: runs.execution_id(c, client.namespace, started))
    return RunOut(
        execution_id=execution_id,
        temporal_workflow_id=started.temporal_workflow_id,
        run_id=started.run_id,
        version=plan.definition.version,
        url=f"/executions/{execution_id}" if execution_id else None,
        problem=None if execution_id else problem or "the run is not recorded yet",
    )


@policies.post("/describe", response_model=PolicyOut)
def describe_policy(body: StoredJson, _user: CurrentUser) -> PolicyOut:
    """Validate a retry policy as a save would, and say what it will do (the sentence the
    pages show). 422 names each bad setting (``body.max_attempts``)."""
    try:
        policy = validation.validate_retry_policy(body)
    except InvalidDefinition as exc:
        raise RequestValidationError(
            [
                {"loc": ("body", *p.field.split(".")), "msg": p.message, "type": "invalid"}
                for p in exc.problems
            ]
        ) from None
    # The sentence the execution pages write for a recorded policy (wfmon.api.retry_words).
    words = Policy(strategy=policy, recorded=None)
    return PolicyOut(
        strategy=words.strategy_name, sentence=words.sentence, max_attempts=words.max_attempts
    )

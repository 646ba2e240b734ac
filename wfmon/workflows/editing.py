"""Creating workflows, saving versions, reading versions and their differences.

Each function runs in the caller's unit of work (``Database.as_user``), so row-level
security has the last word; the checks here turn its silent "no row" into a message:
a workflow you cannot see is :class:`WorkflowNotFound`, a public one you can read but do
not own is :class:`NotOwner`. A save validates the whole definition first
(:mod:`wfmon.workflows.validation`), so nothing invalid is ever written, and adds a
version: old versions stay, and executions keep the version they ran.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import ValidationError

from wfmon.connections import service as connections
from wfmon.db import accounts, projects, versions
from wfmon.db.database import DbConnection
from wfmon.db.rows import Visibility
from wfmon.model import WorkflowDefinition
from wfmon.workflows.diff import DefinitionDiff, diff_definitions
from wfmon.workflows.errors import (
    NameTaken,
    NotOwner,
    VersionConflict,
    WorkflowNotFound,
)
from wfmon.workflows.validation import ProjectConnections, validate_definition


@dataclass(frozen=True)
class EditableWorkflow:
    """A workflow as the editor sees it."""

    id: UUID
    project_id: UUID
    name: str
    visibility: str
    current_version: int
    definition: dict[str, Any]
    owned: bool


@dataclass(frozen=True)
class ConnectionChoice:
    """A project connection as the node panel offers it: never its URL."""

    id: UUID
    name: str
    connection_type: str


@dataclass(frozen=True)
class VersionInfo:
    version: int
    created_at: datetime
    node_count: int
    edge_count: int
    #: The caller's executions that ran this version.
    execution_count: int


@dataclass(frozen=True)
class SavedVersion:
    workflow_id: UUID
    version: int
    definition: WorkflowDefinition


def get_workflow(conn: DbConnection, workflow_id: UUID) -> EditableWorkflow:
    """The workflow (own or public); :class:`WorkflowNotFound` when not visible."""
    row = versions.workflow_for_edit(conn, workflow_id)
    if row is None:
        raise WorkflowNotFound(f"workflow {workflow_id} not found")
    definition = row["definition"] if isinstance(row["definition"], dict) else {}
    return EditableWorkflow(
        id=row["id"],
        project_id=row["project_id"],
        name=row["name"],
        visibility=row["visibility"],
        current_version=row["current_version"],
        definition=definition,
        owned=bool(row["owned"]),
    )


def owned_workflow(conn: DbConnection, workflow_id: UUID, action: str) -> EditableWorkflow:
    """The caller's own workflow; :class:`NotOwner` for a public one of someone else."""
    wf = get_workflow(conn, workflow_id)
    if not wf.owned:
        raise NotOwner(
            f"workflow {wf.name!r} is public: you may read it, but only its owner may {action} it"
        )
    return wf


def connection_choices(conn: DbConnection, project_id: UUID) -> list[ConnectionChoice]:
    """The project's connections (the caller's own project only; RLS hides the rest)."""
    return [
        ConnectionChoice(i.id, i.name, i.connection_type.value)
        for i in connections.list_connections(conn, project_id)
    ]


def _by_id(choices: list[ConnectionChoice]) -> ProjectConnections:
    return {str(c.id): c.connection_type for c in choices}


def _caller(conn: DbConnection) -> UUID:
    user_id = accounts.current_user_id(conn)
    if user_id is None:
        raise WorkflowNotFound("you have no wfmon user yet")
    return user_id


def check_definition(conn: DbConnection, wf: EditableWorkflow, raw: Any) -> WorkflowDefinition:
    """``raw`` as the next version of ``wf`` would store it; ``InvalidDefinition`` if not."""
    fixed = {
        "id": wf.definition.get("id") or str(wf.id),
        "name": wf.name,
        "version": wf.current_version + 1,
    }
    return validate_definition(
        raw, connections=_by_id(connection_choices(conn, wf.project_id)), fixed=fixed
    )


def create_workflow(
    conn: DbConnection,
    *,
    project_id: UUID,
    name: str,
    definition: Any,
    visibility: Visibility = "private",
) -> tuple[EditableWorkflow, WorkflowDefinition]:
    """A new workflow at version 1 in the caller's project."""
    if projects.get_project(conn, project_id) is None:
        raise WorkflowNotFound(f"project {project_id} not found")
    if accounts.find_workflow_id(conn, project_id, name) is not None:
        raise NameTaken(f"the project already has a workflow named {name!r}")
    raw = {"id": name, **definition} if isinstance(definition, dict) else definition
    checked = validate_definition(
        raw,
        connections=_by_id(connection_choices(conn, project_id)),
        fixed={"name": name, "version": 1},
    )
    created = accounts.create_workflow(
        conn,
        project_id=project_id,
        created_by=_caller(conn),
        name=name,
        definition=checked.model_dump(mode="json"),
        visibility=visibility,
    )
    return get_workflow(conn, created.id), checked


def save_version(
    conn: DbConnection, workflow_id: UUID, definition: Any, *, base_version: int | None = None
) -> SavedVersion:
    """Validate ``definition`` and store it as the workflow's next version.

    ``base_version``: the version the editor started from; when another save came first
    the save is refused (:class:`VersionConflict`) instead of silently undoing it.
    """
    wf = owned_workflow(conn, workflow_id, "edit")
    current = versions.lock_current_version(conn, workflow_id)
    if current is None:
        raise WorkflowNotFound(f"workflow {workflow_id} not found")
    if base_version is not None and base_version != current:
        raise VersionConflict(
            f"workflow {wf.name!r} is at version {current} now, not {base_version}: "
            "reload it and apply your change again"
        )
    wf = replace(wf, current_version=current)
    checked = check_definition(conn, wf, definition)
    saved = accounts.save_workflow_version(
        conn,
        workflow_id=workflow_id,
        definition=checked.model_dump(mode="json"),
        created_by=_caller(conn),
    )
    assert saved == checked.version  # the row is locked: nobody saved in between
    return SavedVersion(workflow_id, saved, checked)


def list_versions(conn: DbConnection, workflow_id: UUID) -> list[VersionInfo]:
    get_workflow(conn, workflow_id)
    return [VersionInfo(**r) for r in versions.list_versions(conn, workflow_id)]


def get_version(conn: DbConnection, workflow_id: UUID, version: int) -> dict[str, Any]:
    """``{"version", "created_at", "definition"}`` of one saved version."""
    get_workflow(conn, workflow_id)
    row = versions.get_version(conn, workflow_id, version)
    if row is None:
        raise WorkflowNotFound(f"workflow {workflow_id} has no version {version}")
    return row


def diff_versions(
    conn: DbConnection, workflow_id: UUID, from_version: int, to_version: int
) -> DefinitionDiff:
    before = get_version(conn, workflow_id, from_version)["definition"]
    after = get_version(conn, workflow_id, to_version)["definition"]
    return diff_definitions(
        _normalised(before), _normalised(after), from_version=from_version, to_version=to_version
    )


def _normalised(stored: Any) -> dict[str, Any]:
    """The definition with every default written out (as the editor saves it), so a
    setting left implicit in an older version is not a change; as stored when it is not
    a valid definition (versions written before validation existed)."""
    if not isinstance(stored, dict):
        return {}
    try:
        return WorkflowDefinition.model_validate(stored).model_dump(mode="json")
    except ValidationError:
        return stored

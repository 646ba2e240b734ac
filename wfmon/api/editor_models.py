"""Request and response bodies of the editing API (``wfmon.api.routers.workflows``):
workflows created and saved as versions, versions and their differences, the node panel's
editor data, runs and retry-policy sentences."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, Field

from wfmon.api.inputs import RequestBody, SingleLineText, StoredJson
from wfmon.api.models import WorkflowOut


class WorkflowCreate(RequestBody):
    project_id: UUID
    name: SingleLineText = Field(min_length=1, max_length=200)
    visibility: Literal["private", "public"] = "private"
    definition: StoredJson = Field(
        description="nodes and edges (wfmon.model.WorkflowDefinition); id, name and version "
        "are set by the server"
    )


class WorkflowUpdate(RequestBody):
    definition: StoredJson = Field(description="the whole new definition: nodes and edges")
    base_version: int | None = Field(
        default=None,
        ge=1,
        le=2**31 - 1,
        description="the version this edit started from: refused (409) if it is no longer current",
    )


class SavedOut(BaseModel):
    workflow: WorkflowOut
    version: int
    definition: dict[str, Any]


class VersionOut(BaseModel):
    version: int
    created_at: datetime
    node_count: int
    edge_count: int
    execution_count: int = Field(description="your executions that ran this version")
    current: bool


class VersionDetailOut(BaseModel):
    version: int
    created_at: datetime
    definition: dict[str, Any]


class SettingChangeOut(BaseModel):
    path: str
    before: Any
    after: Any


class NodeChangeOut(BaseModel):
    node_id: str
    changes: list[SettingChangeOut]


class EdgeOut(BaseModel):
    source: str
    target: str


class DiffOut(BaseModel):
    from_version: int
    to_version: int
    unchanged: bool
    nodes_added: list[str]
    nodes_removed: list[str]
    nodes_changed: list[NodeChangeOut]
    edges_added: list[EdgeOut]
    edges_removed: list[EdgeOut]


class ComponentOut(BaseModel):
    name: str
    display_name: str
    connection_type: str | None
    config_schema: dict[str, Any] | None


class ConnectionChoiceOut(BaseModel):
    """A connection as the node panel offers it: no URL, not even masked."""

    id: UUID
    name: str
    connection_type: str


class EditorOut(BaseModel):
    workflow_id: UUID
    name: str
    owned: bool
    current_version: int
    definition: dict[str, Any]
    components: list[ComponentOut]
    connections: list[ConnectionChoiceOut]
    redis_commands: list[str]
    strategies: list[str]


class RunCreate(RequestBody):
    input: Any = Field(default=None, description="the execution's input (any JSON value)")


class RunOut(BaseModel):
    #: None only when the run started but could not be recorded yet (``problem`` says why).
    execution_id: UUID | None
    temporal_workflow_id: str
    run_id: str
    version: int
    url: str | None = Field(description="the execution's page")
    problem: str | None = None


class PolicyOut(BaseModel):
    strategy: str
    sentence: str
    max_attempts: int = Field(description="attempts allowed in total; 0 = unlimited")

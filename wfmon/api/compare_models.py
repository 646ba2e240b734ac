"""Response models of ``GET /api/executions/{id}/compare`` (:mod:`wfmon.api.routers.compare`).

Diffs go from the *baseline* (the execution compared with: ``with``, or by default the
last successful run of the same workflow version before this one) to the *current*
execution (the one in the path): ``old`` is the baseline's value, ``new`` the current's.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, Field

from wfmon.compare.diff import ChangeKind
from wfmon.compare.runs import Presence, Setting

#: Changes kept per payload (input or output) per node by default, and at most.
DEFAULT_CHANGE_LIMIT = 200
MAX_CHANGE_LIMIT = 1000


class RunSummary(BaseModel):
    """One of the two executions."""

    id: UUID
    workflow_id: UUID | None
    workflow_name: str | None
    workflow_version: int | None
    status: str
    started_at: datetime
    closed_at: datetime | None
    duration_ms: int | None
    error_message: str | None


class ValueChange(BaseModel):
    """One changed path. ``old`` is absent (null) for ``added``, ``new`` for ``removed``;
    long values are cut (``old_truncated`` / ``new_truncated``; the cut value is then the
    start of its JSON text), paths never are."""

    path: list[str | int] = Field(description="object keys and list indexes from the root")
    path_text: str = Field(description="the path as people read it, e.g. items[0].price")
    kind: ChangeKind
    old: Any = None
    new: Any = None
    old_truncated: bool = False
    new_truncated: bool = False


class PayloadDiff(BaseModel):
    """The structural diff of one payload: the first ``changes`` of ``total``."""

    changes: list[ValueChange]
    total: int
    omitted: int


class NodeSide(BaseModel):
    """A node's latest run in one execution."""

    status: str
    component: str | None
    duration_ms: int | None
    attempts: int = Field(description="the attempt that ended the run (1 = no retry)")
    runs: int = Field(description="how many times the node ran in the execution")
    error_message: str | None
    error_type: str | None


class SettingChangeOut(BaseModel):
    """A node setting that differs between the two definition versions."""

    node_id: str
    setting: Setting
    old: Any
    new: Any
    changes: list[ValueChange]
    old_text: str | None = Field(None, description="the retry policy in words")
    new_text: str | None = None


class NodeComparisonOut(BaseModel):
    node_id: str
    presence: Presence = Field(description="ran in both runs, or in only one of them")
    changed: bool = Field(description="anything but the duration differs")
    baseline: NodeSide | None
    current: NodeSide | None
    duration_delta_ms: int | None = Field(description="current minus baseline")
    status_changed: bool
    error_changed: bool
    input: PayloadDiff
    output: PayloadDiff
    settings: list[SettingChangeOut]


class EdgeOut(BaseModel):
    source: str
    target: str


class DefinitionDiffOut(BaseModel):
    """What changed from the baseline's definition version to the current one's."""

    old_version: int
    new_version: int
    nodes_added: list[str]
    nodes_removed: list[str]
    settings: list[SettingChangeOut]
    edges_added: list[EdgeOut]
    edges_removed: list[EdgeOut]


class CompareSummary(BaseModel):
    nodes: int
    in_both: int
    baseline_only: int
    current_only: int
    changed: int
    status_changed: int
    duration_delta_ms: int | None = Field(
        description="the executions' durations, current minus baseline"
    )


class CompareOut(BaseModel):
    current: RunSummary
    baseline: RunSummary
    baseline_is_default: bool = Field(
        description="the baseline was chosen by wfmon: the last successful run of the same "
        "workflow version before the current one"
    )
    same_version: bool
    definition: DefinitionDiffOut | None = Field(
        description="set when the runs used different definition versions and both are known"
    )
    definition_note: str | None = Field(
        None, description="why the definitions could not be compared, when they could not"
    )
    summary: CompareSummary
    changed_only: bool
    nodes: list[NodeComparisonOut]


class CandidateOut(BaseModel):
    id: UUID
    status: str
    workflow_version: int | None
    started_at: datetime
    duration_ms: int | None


class CandidatesOut(BaseModel):
    """What the "compare with…" picker offers."""

    execution_id: UUID
    default_baseline: UUID | None
    default_message: str | None = Field(None, description="why there is no default")
    recent: list[CandidateOut]

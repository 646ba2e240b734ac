"""Response models of the search API (``GET /api/search``)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, Field

from wfmon.db.search import COUNT_CAP, SearchHit, SearchMatch, SearchPage
from wfmon.model import ExecutionSort, ExecutionStatus


class SearchMatchOut(BaseModel):
    """Where an execution matched, with the match in context."""

    source: Literal["component", "attempt", "execution"]
    field: Literal["node", "component", "error", "input", "output"]
    snippet: str
    node_id: str | None = None
    component_name: str | None = None
    status: str | None = None
    attempt: int | None = None
    component_execution_id: UUID | None = None

    @classmethod
    def of(cls, m: SearchMatch) -> SearchMatchOut:
        return cls.model_validate(m, from_attributes=True)


class SearchHitOut(BaseModel):
    id: UUID
    project_id: UUID
    workflow_id: UUID | None
    workflow_name: str | None
    workflow_type: str
    status: ExecutionStatus
    started_at: datetime
    closed_at: datetime | None
    duration_ms: int | None
    #: The first few matches (``match_count`` says how many there are).
    matches: list[SearchMatchOut]
    match_count: int

    @classmethod
    def of(cls, h: SearchHit) -> SearchHitOut:
        return cls(
            id=h.id,
            project_id=h.project_id,
            workflow_id=h.workflow_id,
            workflow_name=h.workflow_name,
            workflow_type=h.workflow_type,
            status=ExecutionStatus(h.status),
            started_at=h.started_at,
            closed_at=h.closed_at,
            duration_ms=h.duration_ms,
            matches=[SearchMatchOut.of(m) for m in h.matches],
            match_count=h.match_count,
        )


class SearchPageOut(BaseModel):
    query: str
    sort: ExecutionSort
    items: list[SearchHitOut]
    total: int = Field(
        description=f"Matching executions, exact up to {COUNT_CAP:,}. When `total_capped` "
        f"is true there are more than `total` (which is then {COUNT_CAP:,}, or the end of "
        "this page if it lies deeper): the count stops there instead of reading every match."
    )
    total_capped: bool = Field(
        description=f"True when more than {COUNT_CAP:,} executions match (show `total`+)."
    )
    offset: int
    limit: int
    has_more: bool = Field(description="Another page follows (checked exactly).")

    @classmethod
    def of(cls, query: str, sort: ExecutionSort, page: SearchPage) -> SearchPageOut:
        return cls(
            query=query,
            sort=sort,
            items=[SearchHitOut.of(h) for h in page.items],
            total=page.total,
            total_capped=page.total_capped,
            offset=page.offset,
            limit=page.limit,
            has_more=page.has_more,
        )

"""Executions: details (cache-aside), component pages, sync status and requests, raw history."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query, Response
from fastapi.responses import StreamingResponse
from google.protobuf.json_format import MessageToJson
from starlette.concurrency import run_in_threadpool
from temporalio.api.history.v1 import History

from wfmon.api import views
from wfmon.api.deps import Context, CurrentUser, UserConn
from wfmon.api.errors import ERROR_RESPONSES, Conflict, ErrorBody, NotFound
from wfmon.api.freshness import ensure_fresh, service_for
from wfmon.api.models import (
    DEFAULT_COMPONENT_LIMIT,
    MAX_COMPONENT_LIMIT,
    ComponentPageOut,
    ExecutionDetailOut,
    SyncOut,
    SyncRequest,
    SyncStatusOut,
    json_response,
)
from wfmon.db import details as d
from wfmon.model import ComponentStatus

router = APIRouter(prefix="/api/executions", tags=["executions"], responses=ERROR_RESPONSES)

Offset = Annotated[int, Query(ge=0, le=10_000_000, description="components to skip")]
Limit = Annotated[int, Query(ge=1, le=MAX_COMPONENT_LIMIT, description="components per page")]
StatusFilter = Annotated[ComponentStatus | None, Query(description="only this status")]


@router.get("/{execution_id}", response_model=ExecutionDetailOut)
async def get_execution(
    execution_id: UUID,
    ctx: Context,
    user: CurrentUser,
    offset: Offset = 0,
    limit: Limit = DEFAULT_COMPONENT_LIMIT,
    status: StatusFilter = None,
    fresh: Annotated[bool, Query(description="sync first when stale (cache-aside)")] = True,
) -> Response:
    """The execution with one page of its components (status, timing, input/output,
    errors, attempts explained against the retry policy) and their timeline.

    Cache-aside: when the stored copy is stale (running, or never synced) this triggers
    one immediate sync first, bounded in time; ``execution.sync`` tells what happened.
    """

    def read() -> dict[str, Any]:
        with ctx.db.as_user(user.auth_user_id) as conn:
            return views.execution_detail_data(
                conn, execution_id, offset=offset, limit=limit, status=status
            )

    # Read first: a closed, synced execution (most reads) is final, so one unit of work
    # answers and Temporal is not asked. Otherwise the freshness check decides; what was
    # read stands when it found the copy fresh, else (a sync ran or was tried) read again.
    detail = await run_in_threadpool(read)
    synced_now, error = False, None
    if fresh and not views.never_stale(detail):
        synced_now, error = await ensure_fresh(ctx, execution_id, user)
        if synced_now or error:
            detail = await run_in_threadpool(read)
    return json_response(views.note_sync(detail, synced_now, error), model=ExecutionDetailOut)


@router.get("/{execution_id}/components", response_model=ComponentPageOut)
def list_components(
    execution_id: UUID,
    conn: UserConn,
    offset: Offset = 0,
    limit: Limit = DEFAULT_COMPONENT_LIMIT,
    status: StatusFilter = None,
) -> Response:
    """One page of component cards, from the database only (no sync)."""
    return json_response(
        views.component_page_data(conn, execution_id, offset=offset, limit=limit, status=status),
        model=ComponentPageOut,
    )


@router.get("/{execution_id}/sync", response_model=SyncStatusOut)
async def get_sync_status(execution_id: UUID, ctx: Context, user: CurrentUser) -> SyncStatusOut:
    """Whether the stored copy is synced and whether it is stale."""
    service = await service_for(ctx)
    status = await service.check_sync_status(execution_id, user.auth_user_id)
    return SyncStatusOut.model_validate(status, from_attributes=True)


@router.post(
    "/{execution_id}/sync",
    response_model=SyncOut,
    responses={202: {"model": SyncOut, "description": "Queued"}},
)
async def request_sync(
    execution_id: UUID,
    ctx: Context,
    user: CurrentUser,
    response: Response,
    body: SyncRequest | None = None,
) -> SyncOut:
    """Sync now and wait (``immediate``: 200 with the outcome) or queue it (202)."""
    immediate = body.immediate if body else False
    service = await service_for(ctx)
    result = await service.request_sync(execution_id, user.auth_user_id, immediate=immediate)
    if result is None:
        response.status_code = 202
        return SyncOut(execution_id=execution_id, queued=True)
    return SyncOut(
        execution_id=execution_id,
        queued=False,
        outcome=result.outcome.value,
        error=result.error,
        component_count=result.component_count,
    )


#: Events converted per chunk of the streamed download.
_EVENTS_PER_CHUNK = 200


def _stream_proto(data: bytes) -> Iterator[bytes]:
    history = History.FromString(data)
    yield b'{"events": ['
    events = history.events
    for i in range(0, len(events), _EVENTS_PER_CHUNK):
        parts = [MessageToJson(e, indent=None) for e in events[i : i + _EVENTS_PER_CHUNK]]
        yield ((", " if i else "") + ", ".join(parts)).encode()
    yield b"]}"


@router.get(
    "/{execution_id}/history",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"application/json": {}}, "description": "Temporal's history JSON"},
        409: {"model": ErrorBody, "description": "Not synced yet"},
    },
)
def download_history(execution_id: UUID, conn: UserConn) -> StreamingResponse:
    """The full raw history as Temporal's JSON (``{"events": [...]}``), streamed.

    Stored as protobuf; converted event by event while streaming, so memory stays bounded
    by one chunk of events beyond the stored bytes.
    """
    row = d.get_history_proto(conn, execution_id)
    if row is None:
        raise NotFound(f"execution {execution_id} not found")
    name = f"{row['temporal_workflow_id']}-{row['temporal_run_id']}-history.json"
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in name)
    headers = {"Content-Disposition": f'attachment; filename="{safe}"'}
    body: Iterator[bytes]
    if row["temporal_history_proto"] is not None:
        body = _stream_proto(bytes(row["temporal_history_proto"]))
    elif row["has_json"]:
        stored: Any = d.get_history_json(conn, execution_id)
        body = iter([json.dumps(stored).encode()])
    else:
        raise Conflict("this execution's history has not been synced yet; request a sync")
    return StreamingResponse(body, media_type="application/json", headers=headers)

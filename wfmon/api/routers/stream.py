"""Live streams (Server-Sent Events): what changed, pushed as the sync writes it.

- ``GET /api/executions/{id}/stream``: the execution's rows changed;
- ``GET /api/workflows/{id}/executions/stream``: one of the caller's executions of the
  workflow changed (the history list);
- ``GET /api/projects/{id}/attention/stream``: one of the caller's executions in the
  project changed (the "needs attention" view).

Opening a stream checks, in the caller's unit of work, that the execution / workflow /
project is visible (404 like every unseen one); the unit of work then ends, so an open
stream holds no database connection. Events carry ids only (``{"kind", "execution_id"}``):
the page refetches through the usual endpoints, under row-level security.

Frames: ``event: ready`` once subscribed; ``event: update`` per change; a ``: ping``
comment every ``LiveHub.heartbeat`` seconds (keeps proxies from closing an idle stream);
``event: end`` (with the reason) when the server stops or loses its LISTEN connection,
after which the stream closes and the page polls until a new stream opens. While live
updates are unavailable (off in this server, or reconnecting) a stream that passes the
checks is answered the same way: ``event: end`` with the reason, at once (not a 5xx: the
request was fine, and the page's answer is the same, to poll).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any
from uuid import UUID

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from wfmon.api import views
from wfmon.api.deps import CurrentUserWork
from wfmon.api.errors import ERROR_RESPONSES, NotFound
from wfmon.api.live import (
    Interest,
    LiveHub,
    LiveUnavailable,
    StreamEnd,
    TemporalRun,
    Topic,
    hub_of,
)
from wfmon.db import DbConnection, notify
from wfmon.db import details as d

router = APIRouter(prefix="/api", tags=["live"], responses=ERROR_RESPONSES)

#: Milliseconds the browser waits before reconnecting by itself (the page's script
#: reconnects with its own backoff and polls meanwhile).
RETRY_MS = 5000
_HEADERS = {
    "Cache-Control": "no-cache, no-transform",
    "X-Accel-Buffering": "no",  # nginx: do not buffer the stream
}
_STREAM_DOC: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/event-stream": {}}, "description": "An event stream"}
}


def _frame(event: str, data: dict[str, object]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


async def _open(
    request: Request,
    work: CurrentUserWork,
    topic: Topic,
    key: UUID,
    check: Callable[[DbConnection], TemporalRun | None],
) -> StreamingResponse:
    hub = hub_of(request.app)

    def visible_interest(conn: DbConnection) -> Interest:
        run = check(conn)  # NotFound unless the caller may see it
        owner = notify.current_user_id(conn)
        if owner is None:  # a valid token for a user wfmon does not know
            raise NotFound(f"{topic.value} {key} not found")
        return Interest(topic, key, owner, run)

    interest = await work.run(visible_interest)
    if hub is None or not hub.enabled:
        frames = _ended("live updates are off in this server; the page polls")
    elif not hub.listening:
        frames = _ended("live updates are reconnecting; the page polls meanwhile")
    else:
        frames = _events(hub, interest)
    return StreamingResponse(frames, media_type="text/event-stream", headers=_HEADERS)


async def _ended(reason: str) -> AsyncIterator[bytes]:
    yield f"retry: {RETRY_MS}\n".encode() + _frame("end", {"reason": reason})


async def _events(hub: LiveHub, interest: Interest) -> AsyncIterator[bytes]:
    """The stream's frames until the client goes (the response is cancelled), the server
    shuts down or the LISTEN connection drops."""
    try:
        with hub.subscribe(interest) as sub:
            yield f"retry: {RETRY_MS}\n".encode() + _frame(
                "ready", {"kind": interest.topic.value, "id": str(interest.key)}
            )
            while True:
                item = await sub.next(hub.heartbeat)
                if item is None:
                    yield b": ping\n\n"
                elif isinstance(item, StreamEnd):
                    yield _frame("end", {"reason": item.value})
                    return
                else:
                    yield _update(interest, item)
    except LiveUnavailable as exc:  # lost between the check and the subscription
        yield _frame("end", {"reason": str(exc)})


def _update(interest: Interest, execution_id: UUID) -> bytes:
    return _frame("update", {"kind": interest.topic.value, "execution_id": str(execution_id)})


def _only_visible(read: Callable[[DbConnection], object]) -> Callable[[DbConnection], None]:
    """A check that ``read`` finds its object (NotFound otherwise); no run to watch."""

    def check(conn: DbConnection) -> None:
        read(conn)

    return check


def _execution(execution_id: UUID) -> Callable[[DbConnection], TemporalRun | None]:
    def check(conn: DbConnection) -> TemporalRun | None:
        row = d.get_execution(conn, execution_id)
        if row is None:
            raise NotFound(f"execution {execution_id} not found")
        # Attempts recorded by users' own workers name this run (wfmon.api.live).
        return TemporalRun(
            row["temporal_namespace"], row["temporal_workflow_id"], row["temporal_run_id"]
        )

    return check


@router.get("/executions/{execution_id}/stream", responses=_STREAM_DOC)
async def execution_stream(
    execution_id: UUID, request: Request, work: CurrentUserWork
) -> StreamingResponse:
    """Server-Sent Events: an ``update`` each time a sync writes this execution's rows."""
    return await _open(request, work, Topic.EXECUTION, execution_id, _execution(execution_id))


@router.get("/workflows/{workflow_id}/executions/stream", responses=_STREAM_DOC)
async def workflow_stream(
    workflow_id: UUID, request: Request, work: CurrentUserWork
) -> StreamingResponse:
    """Server-Sent Events: an ``update`` each time one of your executions of this workflow
    is recorded or synced (the history list)."""
    return await _open(
        request,
        work,
        Topic.WORKFLOW,
        workflow_id,
        _only_visible(lambda c: views.workflow(c, workflow_id)),
    )


@router.get("/projects/{project_id}/attention/stream", responses=_STREAM_DOC)
async def attention_stream(
    project_id: UUID, request: Request, work: CurrentUserWork
) -> StreamingResponse:
    """Server-Sent Events: an ``update`` each time one of your executions in this project
    is recorded or synced (the "needs attention" view)."""
    return await _open(
        request,
        work,
        Topic.ATTENTION,
        project_id,
        _only_visible(lambda c: views.project_detail(c, project_id)),
    )

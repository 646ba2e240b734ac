"""Export: ``GET /api/export/{kind}.{format}`` streams a filtered list as a file.

Everything that can be wrong with a request is answered before the first byte: an unknown
kind or format, a bad filter, ``since`` not before ``until`` (422), a project or workflow
you may not see (404, like the history list), and the first batch is read before the
response starts, so a query that fails is an error response, never a partial file.

The unit of work (the caller's transaction, under row-level security) stays open while
the file streams: the export's COPY runs in it. It is advanced on worker threads
(never on the event loop) and closed — COPY (cancelled if unfinished), transaction,
pooled connection — when the stream ends, fails, or the client disconnects. A failure
in the middle of the stream aborts the HTTP response (no terminating chunk), so a client
sees an incomplete transfer, never a file that looks complete; a Parquet file cut short
also lacks its footer.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Generator, Iterator
from contextlib import closing
from datetime import UTC, datetime
from typing import Annotated
from uuid import UUID

import anyio
from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.types import Receive, Scope, Send

from wfmon.api.deps import Context, CurrentUser
from wfmon.api.errors import ERROR_RESPONSES, NotFound, Unprocessable
from wfmon.db import projects as projects_db
from wfmon.db.export import ExportFilter, iter_export_copy
from wfmon.export import ExportFormat, Kind, fields_of
from wfmon.export.schema import MEDIA_TYPES
from wfmon.export.writers import COPY_FORMATS, export_copy_chunks
from wfmon.model import ExecutionStatus
from wfmon.search.query import MAX_QUERY_LENGTH, SearchSyntaxError, parse_search

log = logging.getLogger(__name__)

router = APIRouter(prefix="/api/export", tags=["export"], responses=ERROR_RESPONSES)

_END = object()


class _ThreadedStream:
    """Bytes from a blocking iterator, each step on a worker thread; :meth:`aclose` closes
    the iterator (on a worker thread too), which ends its unit of work."""

    def __init__(self, chunks: Iterator[bytes], first: bytes) -> None:
        self._chunks = chunks
        self._first: bytes | None = first
        self._closed = False

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[bytes]:
        if self._first:
            first, self._first = self._first, None
            yield first
        while True:
            chunk = await anyio.to_thread.run_sync(next, self._chunks, _END)
            if chunk is _END:
                return
            assert isinstance(chunk, bytes)
            yield chunk

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(self._close)

    def _close(self) -> None:
        close = getattr(self._chunks, "close", None)
        if close is not None:
            close()


class ExportResponse(StreamingResponse):
    """A streamed export whose unit of work is closed however the response ends."""

    def __init__(self, stream: _ThreadedStream, *, media_type: str, filename: str) -> None:
        super().__init__(
            stream,
            media_type=media_type,
            headers={
                "Content-Disposition": f'attachment; filename="{filename}"',
                "Cache-Control": "no-store",
                "X-Content-Type-Options": "nosniff",
            },
        )
        self._stream = stream

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        except Exception as exc:
            log.warning("export stream aborted (%s): the client got an incomplete file", exc)
            raise
        finally:
            await self._stream.aclose()


def _utc(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


@router.get(
    "/{kind}.{format}",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {media: {} for media in MEDIA_TYPES.values()},
            "description": "The export file, streamed (columns: docs/user-guide/export.md)",
        }
    },
)
async def export(
    kind: Kind,
    format: ExportFormat,
    ctx: Context,
    user: CurrentUser,
    project_id: Annotated[UUID | None, Query(description="only this project's")] = None,
    workflow_id: Annotated[UUID | None, Query(description="only this workflow's")] = None,
    status: Annotated[
        ExecutionStatus | None, Query(description="only executions with this status")
    ] = None,
    since: Annotated[
        datetime | None, Query(description="executions started at or after (ISO 8601; UTC)")
    ] = None,
    until: Annotated[
        datetime | None, Query(description="executions started before (ISO 8601; UTC)")
    ] = None,
    q: Annotated[
        str,
        Query(
            max_length=MAX_QUERY_LENGTH,
            description="only the executions this search matches (the search page's "
            "query; syntax: docs/user-guide/search.md)",
        ),
    ] = "",
) -> ExportResponse:
    """Your executions, component executions or attempts matching the filters (those of
    the history list, and ``q`` those of the search page; each applies to the row's
    execution), as CSV, JSON Lines or Parquet, streamed with no row cap. Columns and
    types: docs/user-guide/export.md."""
    try:
        search = parse_search(q) if q.strip() else None
    except SearchSyntaxError as exc:
        raise Unprocessable(f"query: {exc}") from None
    try:
        filters = ExportFilter(
            project_id=project_id,
            workflow_id=workflow_id,
            status=status.value if status else None,
            since=_utc(since),
            until=_utc(until),
            search=search,
        )
    except ValueError as exc:
        raise Unprocessable(str(exc)) from None
    fields = fields_of(kind.value)

    def chunks() -> Generator[bytes, None, None]:
        with ctx.db.as_user(user.auth_user_id) as conn:
            if project_id is not None and projects_db.get_project(conn, project_id) is None:
                raise NotFound(f"project {project_id} not found")
            if workflow_id is not None and projects_db.get_workflow(conn, workflow_id) is None:
                raise NotFound(f"workflow {workflow_id} not found")
            yield b""  # checked: the response may start
            # Closed before the unit of work ends (however the stream ends): the COPY is
            # cancelled and the connection leaves COPY mode before the rollback.
            with closing(iter_export_copy(conn, kind.value, filters, COPY_FORMATS[format])) as rows:
                yield from export_copy_chunks(format, fields, rows)

    source = chunks()

    def start() -> bytes:
        next(source)  # the checks (NotFound propagates: nothing was sent)
        return next(source, b"")  # the query runs and the first batch is read here

    try:
        first = await run_in_threadpool(start)
    except BaseException:
        await anyio.to_thread.run_sync(source.close)
        raise
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return ExportResponse(
        _ThreadedStream(source, first),
        media_type=MEDIA_TYPES[format],
        filename=f"wfmon-{kind.value}-{stamp}.{format.value}",
    )

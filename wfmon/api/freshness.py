"""Cache-aside freshness for reads of one execution (:class:`ExecutionService`).

A read first asks the service whether the stored execution is stale (closed and synced:
never; running: after ``stale_after``; pending/failed sync: always). When it is, it asks
the sync coordinator for one immediate sync and waits at most ``ApiContext.sync_timeout``
seconds. If Temporal cannot be reached or the sync does not finish in time, the read
still answers from the database and says why the data may be old: a page never fails
because Temporal is slow.
"""

from __future__ import annotations

import asyncio
from uuid import UUID

from wfmon.api.deps import ApiContext, AuthUser
from wfmon.api.errors import ServiceUnavailable
from wfmon.sync.service import ExecutionService


async def service_for(ctx: ApiContext) -> ExecutionService:
    """The execution service on the app's Temporal client (503 when Temporal is down)."""
    return ExecutionService(ctx.db, await ctx.temporal.client())


async def ensure_fresh(
    ctx: ApiContext, execution_id: UUID, user: AuthUser
) -> tuple[bool, str | None]:
    """(synced now?, why the data may be stale). Raises ``ExecutionNotFound`` when the
    caller may not see the execution."""
    try:
        service = await service_for(ctx)
    except ServiceUnavailable as exc:
        return False, f"{exc.message}; showing the last synced data"
    status = await service.check_sync_status(execution_id, user.auth_user_id)
    if not status.stale:
        return False, None
    try:
        result = await asyncio.wait_for(
            service.request_sync(execution_id, user.auth_user_id, immediate=True),
            ctx.sync_timeout,
        )
    except TimeoutError:
        return False, (
            f"sync did not finish within {ctx.sync_timeout:g} s; showing the last synced data"
        )
    except Exception as exc:  # Temporal errors: answer from the cache, say so
        return False, f"sync failed ({type(exc).__name__}); showing the last synced data"
    return True, (result.error if result is not None else None)

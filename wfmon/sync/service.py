"""The cache-aside read path: the database first, an immediate sync only when needed.

Every call runs under the caller's row-level security: a user can check, request or read
only executions they can see. Syncing is always done by the coordinator in Temporal
(through an Update that returns when the sync is written); the caller never does the
sync work itself.

Freshness rules:

- closed and synced: never stale, Temporal is not touched;
- running: stale once ``stale_after`` has passed since the last sync;
- pending or failed: stale (a read triggers one immediate sync).
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from temporalio.client import Client

from wfmon.db import Database
from wfmon.db import details as q
from wfmon.model import ExecutionStatus
from wfmon.sync.messages import ExecutionRef, SyncResult
from wfmon.sync.worker import request_sync as queue_sync
from wfmon.sync.worker import sync_now


class ExecutionNotFound(LookupError):
    """No execution with this id that the caller may see (never says which)."""


@dataclass(frozen=True)
class SyncStatus:
    execution_id: UUID
    execution_status: str
    history_sync_status: str
    history_synced_at: datetime | None
    history_sync_error: str | None
    stale: bool


@dataclass
class ExecutionDetails:
    """An execution as the detail view shows it."""

    execution: dict[str, Any]
    components: list[dict[str, Any]]
    #: Recorded attempts by activity id (= node id for builder workflows).
    attempts: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    #: True when this read triggered a sync.
    synced_now: bool = False
    sync_error: str | None = None


class ExecutionService:
    def __init__(
        self,
        db: Database,
        client: Client,
        *,
        stale_after: timedelta = timedelta(seconds=5),
        cache_size: int = 256,
    ) -> None:
        self._db = db
        self._client = client
        self._stale_after = stale_after
        self._cache_size = cache_size
        self._cache: OrderedDict[tuple[Any, ...], ExecutionDetails] = OrderedDict()

    async def check_sync_status(self, execution_id: UUID, auth_user_id: UUID) -> SyncStatus:
        row = await self._visible(execution_id, auth_user_id)
        return self._status(row)

    async def request_sync(
        self, execution_id: UUID, auth_user_id: UUID, *, immediate: bool
    ) -> SyncResult | None:
        """Sync now and return the result (``immediate``), or queue it and return None."""
        row = await self._visible(execution_id, auth_user_id)
        ref = _ref(row)
        if immediate:
            return await sync_now(self._client, ref)
        await queue_sync(self._client, ref)
        return None

    async def get_execution_details(
        self, execution_id: UUID, auth_user_id: UUID
    ) -> ExecutionDetails:
        """The execution with components and attempts; fresh data after at most one sync.

        Closed, synced executions do not change until they are synced again, so their
        details are kept in a small in-process cache keyed by (id, row version, last attempt
        update); every call still checks, under the caller's RLS, that they may see it,
        with one small query that reads no JSON.
        """
        details = await asyncio.to_thread(self._read, execution_id, auth_user_id)
        if not self._status(details.execution).stale:
            return details
        result = await sync_now(self._client, _ref(details.execution))
        fresh = await asyncio.to_thread(self._read, execution_id, auth_user_id)
        fresh.synced_now, fresh.sync_error = True, result.error
        return fresh

    # -- internals -------------------------------------------------------------------

    async def _visible(self, execution_id: UUID, auth_user_id: UUID) -> dict[str, Any]:
        def read() -> dict[str, Any] | None:
            with self._db.as_user(auth_user_id) as conn:
                return q.get_execution_version(conn, execution_id)

        row = await asyncio.to_thread(read)
        if row is None:
            raise ExecutionNotFound(f"execution {execution_id} not found")
        return row

    def _status(self, row: dict[str, Any]) -> SyncStatus:
        synced_at: datetime | None = row["history_synced_at"]
        if row["history_sync_status"] != "synced" or synced_at is None:
            stale = True
        elif row["status"] == ExecutionStatus.RUNNING:
            stale = datetime.now(UTC) - synced_at > self._stale_after
        else:
            stale = False
        return SyncStatus(
            execution_id=row["id"],
            execution_status=row["status"],
            history_sync_status=row["history_sync_status"],
            history_synced_at=synced_at,
            history_sync_error=row["history_sync_error"],
            stale=stale,
        )

    def _read(self, execution_id: UUID, auth_user_id: UUID) -> ExecutionDetails:
        """One unit of work as the caller: the row's version (RLS check), then the details
        from the cache when that version is cached, else from the database."""
        with self._db.as_user(auth_user_id) as conn:
            version = q.get_execution_version(conn, execution_id)
            if version is None:
                raise ExecutionNotFound(f"execution {execution_id} not found")
            # Any write to the row (a sync, a recorded failure) changes its xmin; attempts
            # live in their own table, hence their own timestamp.
            key = (execution_id, version["row_version"], version["attempts_updated_at"])
            cacheable = (
                version["status"] != ExecutionStatus.RUNNING
                and version["history_sync_status"] == "synced"
            )
            cached = self._cache.get(key) if cacheable else None
            if cached is not None:
                self._cache.move_to_end(key)
                return ExecutionDetails(cached.execution, cached.components, cached.attempts)
            row = q.get_execution(conn, execution_id)
            if row is None:  # deleted since the line above (same transaction, so rare)
                raise ExecutionNotFound(f"execution {execution_id} not found")
            components = q.list_component_executions(conn, execution_id)
            attempts: dict[str, list[dict[str, Any]]] = {}
            for a in q.list_attempts(
                conn, row["temporal_namespace"], row["temporal_workflow_id"], row["temporal_run_id"]
            ):
                attempts.setdefault(a["activity_id"], []).append(a)
        details = ExecutionDetails(row, components, attempts)
        if cacheable:
            self._cache[key] = details
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return details


def _ref(row: dict[str, Any]) -> ExecutionRef:
    return ExecutionRef(
        namespace=row["temporal_namespace"],
        workflow_id=row["temporal_workflow_id"],
        run_id=row["temporal_run_id"],
    )

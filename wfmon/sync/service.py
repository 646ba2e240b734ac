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
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from temporalio.client import Client

from wfmon.db import Database
from wfmon.db import details as q
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
        self, db: Database, client: Client, *, stale_after: timedelta = timedelta(seconds=5)
    ) -> None:
        self._db = db
        self._client = client
        self._stale_after = stale_after

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
        """The execution with components and attempts; fresh data after at most one sync."""
        row = await self._visible(execution_id, auth_user_id)
        synced_now, error = False, None
        if self._status(row).stale:
            result = await sync_now(self._client, _ref(row))
            synced_now, error = True, result.error
        return await asyncio.to_thread(self._read, execution_id, auth_user_id, synced_now, error)

    # -- internals -------------------------------------------------------------------

    async def _visible(self, execution_id: UUID, auth_user_id: UUID) -> dict[str, Any]:
        def read() -> dict[str, Any] | None:
            with self._db.as_user(auth_user_id) as conn:
                return q.get_execution(conn, execution_id)

        row = await asyncio.to_thread(read)
        if row is None:
            raise ExecutionNotFound(f"execution {execution_id} not found")
        return row

    def _status(self, row: dict[str, Any]) -> SyncStatus:
        synced_at: datetime | None = row["history_synced_at"]
        if row["history_sync_status"] != "synced" or synced_at is None:
            stale = True
        elif row["status"] == "running":
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

    def _read(
        self, execution_id: UUID, auth_user_id: UUID, synced_now: bool, error: str | None
    ) -> ExecutionDetails:
        with self._db.as_user(auth_user_id) as conn:
            row = q.get_execution(conn, execution_id)
            if row is None:
                raise ExecutionNotFound(f"execution {execution_id} not found")
            components = q.list_component_executions(conn, execution_id)
            attempts: dict[str, list[dict[str, Any]]] = {}
            for a in q.list_attempts(
                conn, row["temporal_namespace"], row["temporal_workflow_id"], row["temporal_run_id"]
            ):
                attempts.setdefault(a["activity_id"], []).append(a)
        return ExecutionDetails(
            execution=row,
            components=components,
            attempts=attempts,
            synced_now=synced_now,
            sync_error=error,
        )


def _ref(row: dict[str, Any]) -> ExecutionRef:
    return ExecutionRef(
        namespace=row["temporal_namespace"],
        workflow_id=row["temporal_workflow_id"],
        run_id=row["temporal_run_id"],
    )

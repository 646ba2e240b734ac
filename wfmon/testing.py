"""Test and benchmark support: Temporal workers on a thread, and the one set of test-data
builders (owners, executions) that tests and benchmarks share.

Synchronous test code (pytest without an async plugin, scripts) builds one harness and
hands coroutines to :meth:`WorkerHarness.run`. Subclasses say which workers run
(:meth:`make_workers`); :class:`BuilderAndSyncHarness` runs wfmon's own.

Test data:

* :func:`make_owner`: a new user with a project and a workflow (:class:`WorkflowOwner`).
* :func:`execution_row` / :func:`attempt_row`: an execution row (owned by an owner, or by
  the system in the Discovered project) and attempt rows of that execution.
* :func:`write_execution`: writes an execution with its component rows and attempts with
  the sync's own writers (``upsert_execution``, ``replace_component_executions``,
  ``insert_attempts``, ``mark_history_synced``), as the system, in one transaction, exactly
  as a sync would.
* :func:`seed_execution`: a synced, closed execution with ``n`` generated components (every
  ``retried_every``-th needed one expected retry), for pages and benchmarks where a real
  run would take minutes (5,000 components) or a status the dev server cannot easily
  produce on demand (timed out).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import uuid
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Self, TypeVar
from uuid import UUID

from temporalio.client import Client, WorkflowHandle
from temporalio.worker import Worker

from wfmon.api.jwt import dev_token
from wfmon.db import Database
from wfmon.db.accounts import create_project, create_user, create_workflow
from wfmon.db.executions import (
    insert_attempts,
    mark_history_synced,
    replace_component_executions,
    upsert_execution,
)
from wfmon.db.rows import (
    AttemptRow,
    ComponentExecutionRow,
    ExecutionRow,
    Json,
    Project,
    User,
    Visibility,
    Workflow,
)
from wfmon.model import BUILDER_WORKFLOW_TYPE, ComponentStatus, ExecutionStatus, WorkflowDefinition
from wfmon.runtime.attempts import AttemptRecorder
from wfmon.runtime.client import RunContext, start_builder_run
from wfmon.runtime.worker import build_worker
from wfmon.sync.activities import SyncOptions
from wfmon.sync.worker import build_sync_worker

T = TypeVar("T")


class WorkerHarness:
    """Connects to ``address`` / ``namespace`` and runs :meth:`make_workers` until stopped."""

    def __init__(self, address: str, namespace: str = "default") -> None:
        self.address = address
        self.namespace = namespace
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._stop: asyncio.Event | None = None
        self._serving: asyncio.Future[None] | None = None
        self.client: Client

    def make_workers(self, client: Client) -> Sequence[Worker]:
        raise NotImplementedError

    async def prepare(self) -> None:
        """Runs on the harness loop before connecting (e.g. create the namespace)."""

    async def cleanup(self) -> None:
        """Runs on the harness loop after the workers stopped."""

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 180) -> T:
        """Run ``coro`` on the harness loop and return its result."""
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def start(self) -> Self:
        self._thread.start()
        self.run(self._start())
        return self

    async def _start(self) -> None:
        await self.prepare()
        self.client = await Client.connect(self.address, namespace=self.namespace)
        self._stop = asyncio.Event()
        self._serving = asyncio.ensure_future(self._serve(self.make_workers(self.client)))

    async def _serve(self, workers: Sequence[Worker]) -> None:
        assert self._stop is not None
        async with contextlib.AsyncExitStack() as running:
            for worker in workers:
                await running.enter_async_context(worker)
            await self._stop.wait()

    def stop(self) -> None:
        async def stop() -> None:
            assert self._stop is not None and self._serving is not None
            self._stop.set()
            await self._serving
            await self.cleanup()

        try:
            self.run(stop(), timeout=60)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)


class BuilderAndSyncHarness(WorkerHarness):
    """A builder worker on a queue of its own (attempts recorded when ``recorder`` is given)
    and the sync worker on the real sync queue."""

    def __init__(
        self,
        address: str,
        db: Database,
        *,
        namespace: str = "default",
        recorder: AttemptRecorder | None = None,
        queue_prefix: str = "wfmon-builder",
    ) -> None:
        super().__init__(address, namespace)
        self.db = db
        self.recorder = recorder
        self.builder_queue = f"{queue_prefix}-{uuid.uuid4().hex[:8]}"

    def make_workers(self, client: Client) -> Sequence[Worker]:
        if self.recorder is not None:
            self.recorder.start()
        return [
            build_worker(client, task_queue=self.builder_queue, recorder=self.recorder),
            build_sync_worker(client, self.db, options=SyncOptions(lease_seconds=15)),
        ]

    async def cleanup(self) -> None:
        if self.recorder is not None:
            await self.recorder.close()

    async def start_run(self, owner: WorkflowOwner | None, kind: str) -> WorkflowHandle[Any, Any]:
        """Start a builder execution of :func:`definition` ``kind`` (input ``{"n": 1}``) on
        this harness's builder queue, recorded as ``owner``'s when given."""
        return await start_builder_run(
            self.client,
            definition(kind),
            {"n": 1},
            context=owner.run_context() if owner else None,
            task_queue=self.builder_queue,
        )


# -- test data ------------------------------------------------------------------------------


@dataclass(frozen=True)
class WorkflowOwner:
    """A user with a project and a workflow, as the builder records them in the memo."""

    user: User
    project: Project
    workflow: Workflow

    @property
    def auth_user_id(self) -> UUID:
        """The user's ``auth.uid()`` (what ``Database.as_user`` takes)."""
        assert self.user.auth_user_id is not None  # make_owner always sets one
        return self.user.auth_user_id

    def run_context(self) -> RunContext:
        """The ids a builder run records for this owner."""
        return RunContext(
            workflow_id=str(self.workflow.id),
            project_id=str(self.project.id),
            user_id=str(self.user.id),
        )

    def dev_token(self, secret: str) -> str:
        """A development token for this user (signed with ``secret``)."""
        return dev_token(str(self.auth_user_id), secret, email=self.user.email)


def make_owner(
    db: Database,
    name: str,
    *,
    definition: Json = None,
    display_name: str = "",
    workflow_name: str | None = None,
    visibility: Visibility = "private",
) -> WorkflowOwner:
    """A new user (unique email ``{name}-xxxxxx@example.com``) with one project
    (``{name} project``) and one workflow at version 1 (``workflow_name``, by default
    ``{name} flow``; ``definition`` by default ``{}``)."""
    auth_id = uuid.uuid4()
    with db.as_system() as conn:
        user = create_user(
            conn,
            auth_user_id=auth_id,
            email=f"{name}-{auth_id.hex[:6]}@example.com",
            display_name=display_name,
        )
    with db.as_user(auth_id) as conn:
        project = create_project(conn, name=f"{name} project", created_by=user.id)
        workflow = create_workflow(
            conn,
            project_id=project.id,
            created_by=user.id,
            name=workflow_name or f"{name} flow",
            definition={} if definition is None else definition,
            visibility=visibility,
        )
    return WorkflowOwner(user, project, workflow)


def execution_row(
    owner: WorkflowOwner | None = None,
    label: str | None = None,
    *,
    status: ExecutionStatus = ExecutionStatus.COMPLETED,
    started_at: datetime | None = None,
    **fields: Any,
) -> ExecutionRow:
    """An execution of ``owner``'s workflow (at its current version), or without an owner
    one of the system's in the Discovered project.

    ``label`` is the Temporal workflow id (default ``seeded-<random>``), the run id is
    ``run-<label>``. Closed at ``started_at`` (default: ten minutes ago) unless ``status``
    is running; ``duration_ms`` follows from the two. ``fields`` set any other column of
    :class:`ExecutionRow` (and override these defaults)."""
    label = label or f"seeded-{uuid.uuid4().hex[:12]}"
    t0 = started_at or datetime.now(UTC) - timedelta(minutes=10)
    closed = fields.pop("closed_at", None if status == ExecutionStatus.RUNNING else t0)
    values: dict[str, Any] = {
        "temporal_namespace": "default",
        "temporal_workflow_id": label,
        "temporal_run_id": f"run-{label}",
        "workflow_type": BUILDER_WORKFLOW_TYPE,
        "task_queue": "wfmon-seeded",
        "status": status,
        "started_at": t0,
        "closed_at": closed,
        "duration_ms": None if closed is None else int((closed - t0).total_seconds() * 1000),
    }
    if owner is not None:
        values |= {
            "created_by": owner.user.id,
            "project_id": owner.project.id,
            "workflow_id": owner.workflow.id,
            "workflow_version": owner.workflow.current_version,
        }
    return ExecutionRow(**(values | fields))


def attempt_row(
    execution: ExecutionRow, activity_id: str, attempt: int, started_at: datetime, **fields: Any
) -> AttemptRow:
    """An attempt of an activity of ``execution`` (its Temporal ids copied); ``fields`` set
    the other columns of :class:`AttemptRow` (outcome, ended_at, failure_...)."""
    return AttemptRow(
        temporal_namespace=execution.temporal_namespace,
        temporal_workflow_id=execution.temporal_workflow_id,
        temporal_run_id=execution.temporal_run_id,
        activity_id=activity_id,
        attempt=attempt,
        started_at=started_at,
        **fields,
    )


#: What :func:`write_execution` stores as the history unless told otherwise.
EMPTY_HISTORY: Json = {"events": []}


def write_execution(
    db: Database,
    row: ExecutionRow,
    *,
    components: Sequence[ComponentExecutionRow] = (),
    attempts: Sequence[AttemptRow] = (),
    history_json: Json = EMPTY_HISTORY,
    synced: bool = True,
) -> UUID:
    """Write ``row``, its component rows and attempts with the sync's own writers, as the
    system in one transaction; return the execution's id. ``synced`` also records the
    history sync (``history_json``, status ``synced``); without it the row stays
    ``pending``, as discovery leaves it."""
    with db.as_system() as conn:
        execution_id = upsert_execution(conn, row)
        replace_component_executions(conn, execution_id, components)
        insert_attempts(conn, attempts)
        if synced:
            mark_history_synced(
                conn, execution_id, history_json=history_json, event_count=0, history_bytes=0
            )
    return execution_id


#: The retry policy (as the history records it) of :func:`seed_execution`'s components.
RETRY_3: Json = {
    "initial_interval": "100ms",
    "backoff_coefficient": 1.0,
    "maximum_interval": "100ms",
    "maximum_attempts": 3,
    "non_retryable_error_types": [],
}


def seed_execution(
    db: Database,
    owner: WorkflowOwner,
    *,
    components: int,
    status: ExecutionStatus = ExecutionStatus.COMPLETED,
    retried_every: int = 10,
    payload: Json = None,
    started_at: datetime | None = None,
    node_ids: Sequence[str] = (),
) -> UUID:
    """A synced, closed execution of ``owner``'s workflow with ``components`` completed
    component rows (40 ms apart); every ``retried_every``-th component needed one
    (expected) retry, whose two attempts are recorded (0: none retried).

    The rows are nodes ``node-00000``, ``node-00001``, ... or, with ``node_ids`` (a
    definition's nodes), those in turn: a node runs again each time the list wraps, as in
    a loop, with activity ids ``<node>#<i>``."""
    t0 = started_at or datetime.now(UTC) - timedelta(minutes=10)
    step = timedelta(milliseconds=40)
    running = status == ExecutionStatus.RUNNING
    row = execution_row(
        owner,
        status=status,
        started_at=t0,
        closed_at=None if running else t0 + step * (components + 2),
        temporal_run_id=str(uuid.uuid4()),
        input={"order": 1},
        output={"ok": True} if status == ExecutionStatus.COMPLETED else None,
        error_message="deadline exceeded" if status == ExecutionStatus.TIMED_OUT else None,
    )
    rows: list[ComponentExecutionRow] = []
    attempts: list[AttemptRow] = []
    data = payload if payload is not None else {"n": 1, "text": "x" * 200}
    for i in range(components):
        start = t0 + step * (i + 1)
        retried = bool(retried_every) and i % retried_every == 0
        node = node_ids[i % len(node_ids)] if node_ids else f"node-{i:05d}"
        activity_id = f"{node}#{i}" if node_ids else node
        rows.append(
            ComponentExecutionRow(
                node_id=node,
                scheduled_event_id=5 + i * 6,
                status=ComponentStatus.COMPLETED,
                component_name="transform",
                activity_type="transform",
                started_at=start,
                completed_at=start + step,
                duration_ms=40,
                input_data={"i": i, **data},
                output_data={"i": i, "ok": True},
                retry_count=1 if retried else 0,
                is_expected_retry=retried,
                temporal_activity_id=activity_id,
                temporal_attempt=2 if retried else 1,
                retry_policy=RETRY_3,
            )
        )
        if retried:
            mid = start + step / 2
            attempts += [
                attempt_row(
                    row,
                    activity_id,
                    1,
                    start,
                    activity_type="transform",
                    ended_at=mid - step / 8,
                    outcome="failed",
                    failure_type="FlakyError",
                    failure_message="first attempt fails",
                ),
                attempt_row(
                    row,
                    activity_id,
                    2,
                    mid,
                    activity_type="transform",
                    ended_at=start + step,
                    outcome="completed",
                ),
            ]
    return write_execution(db, row, components=rows, attempts=attempts)


FAST_RETRIES = {"interval": "100ms"}


def definition(kind: str) -> WorkflowDefinition:
    """Small builder workflows: ``success`` (2 transforms), ``retry`` (flaky, one expected
    retry), ``slow`` (sleeps a few seconds), anything else (always-fail)."""
    nodes: list[dict[str, Any]]
    edges: list[dict[str, str]] = []
    if kind == "success":
        nodes = [
            {"id": "a", "component": "transform", "config": {"set": {"x": 1}}},
            {"id": "b", "component": "transform", "config": {"pick": {"x": "upstream.a.x"}}},
        ]
        edges = [{"source": "a", "target": "b"}]
    elif kind == "retry":
        policy = {"strategy": "fail_after_attempts", "max_attempts": 3, **FAST_RETRIES}
        nodes = [
            {"id": "flaky", "component": "flaky", "config": {"fail_times": 1},
             "retry_policy": policy}
        ]  # fmt: skip
    elif kind == "slow":
        nodes = [{"id": "nap", "component": "sleep", "config": {"seconds": 4}}]
    else:
        nodes = [{"id": "boom", "component": "always-fail"}]
    return WorkflowDefinition.model_validate(
        {"id": f"wf-{kind}", "name": kind, "version": 1, "nodes": nodes, "edges": edges}
    )

"""Graph tests: the real app (uvicorn on a free port) over the session's real PostgreSQL,
with executions written by the sync's own writers (``wfmon.testing``) as the system role
and read back as their owner under row-level security.

Temporal is pointed at a closed port: the execution page then answers from the database at
once ("showing the last synced data"), so what is tested is the graph, not a sync.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
from pydantic import SecretStr

from wfmon.api.app import RunningServer, create_app, start_server
from wfmon.db import Database
from wfmon.db.accounts import save_workflow_version
from wfmon.db.rows import ComponentExecutionRow, ExecutionRow
from wfmon.model import ComponentStatus, ExecutionStatus
from wfmon.settings import Settings
from wfmon.testing import (
    WorkflowOwner,
    attempt_row,
    execution_row,
    make_owner,
    write_execution,
)

JWT_SECRET = "wfmon-graph-tests-secret-of-32-bytes"
DEAD_TEMPORAL = "127.0.0.1:1"

FAST = {"interval": "100ms"}
#: Version 1: what the executions ran. fetch -> charge -> ship, fetch -> notify.
V1: dict[str, Any] = {
    "id": "shop",
    "name": "shop",
    "version": 1,
    "nodes": [
        {
            "id": "fetch",
            "component": "transform",
            "retry_policy": {"strategy": "fail_after_attempts", "max_attempts": 3, **FAST},
        },
        {
            "id": "charge",
            "component": "flaky",
            "retry_policy": {
                "strategy": "exponential_backoff",
                "initial_interval": "1s",
                "max_attempts": 3,
            },
        },
        {"id": "notify", "component": "transform", "retry_policy": {"strategy": "keep_trying"}},
        {"id": "ship", "component": "transform", "retry_policy": {"strategy": "no_retries"}},
    ],
    "edges": [
        {"source": "fetch", "target": "charge"},
        {"source": "fetch", "target": "notify"},
        {"source": "charge", "target": "ship"},
    ],
}
#: Version 2 (today's): ship replaced by audit.
V2: dict[str, Any] = {
    **V1,
    "version": 2,
    "nodes": [*V1["nodes"][:3], {"id": "audit", "component": "transform"}],
    "edges": [*V1["edges"][:2], {"source": "notify", "target": "audit"}],
}

#: Retry policies as Temporal records them (the component rows' ``retry_policy``).
RECORDED = {
    "fetch": {
        "initial_interval": "100ms",
        "backoff_coefficient": 1.0,
        "maximum_interval": "100ms",
        "maximum_attempts": 3,
    },
    "charge": {
        "initial_interval": "1s",
        "backoff_coefficient": 2.0,
        "maximum_interval": "100s",
        "maximum_attempts": 3,
    },
    "notify": {
        "initial_interval": "1s",
        "backoff_coefficient": 1.0,
        "maximum_interval": "1s",
        "maximum_attempts": 0,
    },
    "ship": {"maximum_attempts": 1, "backoff_coefficient": 2.0},
}


def layered(columns: int, rows: int) -> dict[str, Any]:
    """A ``columns`` x ``rows`` definition: each node fed by its row's node in the column before."""
    nodes = [
        {"id": f"n{c:02d}-{r}", "component": "transform"}
        for c in range(columns)
        for r in range(rows)
    ]
    edges = [
        {"source": f"n{c - 1:02d}-{r}", "target": f"n{c:02d}-{r}"}
        for c in range(1, columns)
        for r in range(rows)
    ]
    return {"id": "big", "name": "big", "version": 1, "nodes": nodes, "edges": edges}


@dataclass
class GraphWorld:
    db: Database
    server: RunningServer
    alice: WorkflowOwner
    bob: WorkflowOwner
    alice_token: str
    bob_token: str
    failed: UUID
    #: The running execution's row, for rewriting it while a page is open.
    running_row: ExecutionRow
    running: UUID
    #: Alice's workflow of 40 x 8 nodes.
    big: WorkflowOwner

    @property
    def url(self) -> str:
        return self.server.url


def component(
    node: str,
    n: int,
    status: ComponentStatus,
    t0: datetime,
    *,
    attempt: int = 1,
    error: str | None = None,
    **fields: Any,
) -> ComponentExecutionRow:
    """A component row of node ``node`` (the ``n``-th scheduled), one second per node."""
    start = t0 + timedelta(seconds=n)
    open_ = status in (ComponentStatus.RUNNING, ComponentStatus.RETRYING)
    return ComponentExecutionRow(
        node_id=node,
        scheduled_event_id=5 + 6 * n,
        status=status,
        component_name="flaky" if node == "charge" else "transform",
        activity_type="transform",
        started_at=start,
        completed_at=None if open_ else start + timedelta(milliseconds=250),
        duration_ms=None if open_ else 250,
        input_data={"node": node},
        output_data=None if error or open_ else {"ok": node},
        error_message=error,
        error_type="CardDeclined" if error else None,
        retry_count=attempt - 1,
        is_expected_retry=attempt > 1 and error is None,
        temporal_activity_id=node,
        temporal_attempt=attempt,
        retry_policy=RECORDED[node],
        **fields,
    )


def running_components(t0: datetime, *, done: bool) -> list[ComponentExecutionRow]:
    """The running execution's rows: charge retrying (attempt 2 of 3), or (``done``) charge
    and notify completed and ship running."""
    if not done:
        return [
            component("fetch", 0, ComponentStatus.COMPLETED, t0),
            component(
                "charge",
                1,
                ComponentStatus.RETRYING,
                t0,
                attempt=2,
                next_retry_at=datetime.now(UTC) + timedelta(minutes=5),
            ),
            component("notify", 2, ComponentStatus.RUNNING, t0),
        ]
    return [
        component("fetch", 0, ComponentStatus.COMPLETED, t0),
        component("charge", 1, ComponentStatus.COMPLETED, t0, attempt=2),
        component("notify", 2, ComponentStatus.COMPLETED, t0),
        component("ship", 3, ComponentStatus.RUNNING, t0),
    ]


def _seed(db: Database, alice: WorkflowOwner) -> tuple[UUID, ExecutionRow, UUID]:
    t0 = datetime.now(UTC) - timedelta(minutes=5)
    builder_input = [{"definition": V1, "input": {"order": 7}}]
    failed = execution_row(
        alice,
        status=ExecutionStatus.FAILED,
        started_at=t0,
        closed_at=t0 + timedelta(seconds=9),
        workflow_version=1,
        input=builder_input,
        error_message="charge failed",
    )
    rows = [
        component("fetch", 0, ComponentStatus.COMPLETED, t0, attempt=2),
        component("charge", 1, ComponentStatus.FAILED, t0, attempt=3, error="card declined"),
        component("notify", 2, ComponentStatus.COMPLETED, t0),
    ]
    attempts = [
        attempt_row(failed, "charge", i, t0 + timedelta(seconds=1 + i), outcome="failed",
                    ended_at=t0 + timedelta(seconds=1.2 + i), failure_type="CardDeclined",
                    failure_message="card declined")
        for i in (1, 2, 3)
    ]  # fmt: skip
    failed_id = write_execution(db, failed, components=rows, attempts=attempts)
    running = execution_row(
        alice,
        status=ExecutionStatus.RUNNING,
        started_at=t0,
        workflow_version=1,
        input=builder_input,
    )
    running_id = write_execution(db, running, components=running_components(t0, done=False))
    return failed_id, running, running_id


@pytest.fixture(scope="session")
def graph_world(database_url: str) -> Iterator[GraphWorld]:
    settings = Settings(jwt_secret=SecretStr(JWT_SECRET), temporal_address=DEAD_TEMPORAL)
    with Database(database_url, max_size=8) as db:
        alice = make_owner(db, "galice", definition=V1, workflow_name="shop")
        bob = make_owner(db, "gbob", definition=V1, workflow_name="shop")
        with db.as_user(alice.auth_user_id) as conn:
            save_workflow_version(
                conn, workflow_id=alice.workflow.id, definition=V2, created_by=alice.user.id
            )
        failed, running_row, running = _seed(db, alice)
        big = make_owner(db, "gbig", definition=layered(40, 8), workflow_name="big")
        app = create_app(settings, db=db, temporal_address=DEAD_TEMPORAL, sync_timeout=1.0)
        server = start_server(app)
        try:
            yield GraphWorld(
                db=db,
                server=server,
                alice=alice,
                bob=bob,
                alice_token=alice.dev_token(JWT_SECRET),
                bob_token=bob.dev_token(JWT_SECRET),
                failed=failed,
                running_row=running_row,
                running=running,
                big=big,
            )
        finally:
            server.stop()

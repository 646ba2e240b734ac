"""Demo organisation: two users, two projects, workflows using every retry strategy and the
four connection components, and a few dozen executions of them.

Idempotent: users, projects, workflows and connections are looked up by name and created
only when missing; each call runs a fresh set of executions.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from typing import Any

from temporalio.client import Client, WorkflowFailureError

from wfmon.connections.crypto import Keyring
from wfmon.connections.policy import NetworkPolicy
from wfmon.connections.service import create_connection, list_connections
from wfmon.db import Database
from wfmon.db.accounts import (
    create_project,
    create_user,
    create_workflow,
    find_project_id,
    find_user_id,
    find_workflow_id,
)
from wfmon.model import WorkflowDefinition
from wfmon.runtime import start_builder_run
from wfmon.runtime.client import RunContext

#: Fixed auth ids so dev tokens stay valid across demo restarts.
DEMO_USERS = {
    "alice@demo.wfmon": uuid.UUID("a11ce000-0000-4000-8000-000000000001"),
    "bob@demo.wfmon": uuid.UUID("b0b00000-0000-4000-8000-000000000002"),
}

FAST = {"interval": "200ms"}


def _definition(
    name: str, nodes: list[dict[str, Any]], edges: list[tuple[str, str]]
) -> dict[str, Any]:
    return {
        "id": name,
        "name": name,
        "version": 1,
        "nodes": nodes,
        "edges": [{"source": s, "target": t} for s, t in edges],
    }


def retry_workflows() -> dict[str, dict[str, Any]]:
    """Alice's workflows: one per retry strategy and ending."""
    return {
        "Order intake": _definition(
            "order-intake",
            [
                {
                    "id": "validate",
                    "component": "transform",
                    "config": {"pick": {"order": "workflow.order"}},
                },
                {
                    "id": "reserve-stock",
                    "component": "flaky",
                    "config": {"fail_times": 1, "output": "reserved"},
                    "retry_policy": {"strategy": "fail_after_attempts", "max_attempts": 3, **FAST},
                },
                {
                    "id": "charge-card",
                    "component": "flaky",
                    "config": {"fail_times": 2, "output": "charged"},
                    "retry_policy": {
                        "strategy": "exponential_backoff",
                        "initial_interval": "200ms",
                        "maximum_interval": "1s",
                        "max_attempts": 5,
                    },
                },
                {
                    "id": "confirm",
                    "component": "transform",
                    "config": {"template": {"message": "Order {workflow.order} confirmed"}},
                },
            ],
            [
                ("validate", "reserve-stock"),
                ("validate", "charge-card"),
                ("reserve-stock", "confirm"),
                ("charge-card", "confirm"),
            ],
        ),
        "Nightly export": _definition(
            "nightly-export",
            [
                {"id": "extract", "component": "transform", "config": {"set": {"rows": 42}}},
                {
                    "id": "upload",
                    "component": "flaky",
                    "config": {"fail_times": 3, "error_type": "UploadTimeout"},
                    "retry_policy": {"strategy": "fail_after_attempts", "max_attempts": 2, **FAST},
                },
            ],
            [("extract", "upload")],
        ),
        "Payment webhook": _definition(
            "payment-webhook",
            [
                {
                    "id": "parse",
                    "component": "transform",
                    "config": {"pick": {"id": "workflow.id"}},
                },
                {
                    "id": "notify",
                    "component": "flaky",
                    "config": {"fail_times": 1},
                    "retry_policy": {"strategy": "keep_trying", **FAST},
                },
                {
                    "id": "audit",
                    "component": "always-fail",
                    "config": {
                        "message": "audit service rejected the event",
                        "error_type": "AuditRejected",
                    },
                    "retry_policy": {"strategy": "no_retries"},
                },
            ],
            [("parse", "notify"), ("parse", "audit")],
        ),
    }


def connection_workflow(postgres_id: str, redis_id: str) -> dict[str, Any]:
    """Bob's workflow using all four connection components."""
    return _definition(
        "customer-report",
        [
            {
                "id": "orders",
                "component": "cache-aside",
                "connection_id": redis_id,
                "config": {
                    "key": "orders:{workflow.customer}",
                    "ttl_seconds": 60,
                    "wrapped": {
                        "component": "postgresql-query",
                        "connection_id": postgres_id,
                        "config": {
                            "sql": "SELECT id, total FROM orders WHERE customer = $1 ORDER BY id",
                            "params": [{"path": "workflow.customer"}],
                            "read_only": True,
                        },
                    },
                },
            },
            {
                "id": "summarise",
                "component": "typescript-processor",
                "config": {
                    "code": "export default (doc: any) => {\n"
                    "  const rows = doc.upstream.orders.value.rows;\n"
                    "  return { orders: rows.length,\n"
                    "           total: rows.reduce((s: number, r: any) => "
                    "s + Number(r.total), 0) };\n}\n"
                },
            },
            {
                "id": "remember",
                "component": "redis-command",
                "connection_id": redis_id,
                "config": {
                    "command": "SET",
                    "args": [
                        {"template": "report:{workflow.customer}"},
                        {"path": "upstream.summarise"},
                        "EX",
                        300,
                    ],
                },
            },
        ],
        [("orders", "summarise"), ("summarise", "remember")],
    )


@dataclass
class DemoWorld:
    users: dict[str, uuid.UUID]
    #: (owner email, workflow name) -> (workflow id, project id, user id, definition)
    workflows: dict[tuple[str, str], tuple[str, str, str, dict[str, Any]]]


def seed_world(db: Database, keyring: Keyring, shop_url: str, redis_url: str) -> DemoWorld:
    """Create what is missing of the demo organisation; return its ids."""
    users: dict[str, uuid.UUID] = {}
    with db.as_system() as conn:
        for email, auth_id in DEMO_USERS.items():
            user_id = find_user_id(conn, auth_id)
            if user_id is None:
                name = email.split("@")[0].title()
                user_id = create_user(conn, auth_user_id=auth_id, email=email, display_name=name).id
            users[email] = user_id

    workflows: dict[tuple[str, str], tuple[str, str, str, dict[str, Any]]] = {}

    def ensure(email: str, project_name: str, defs: dict[str, dict[str, Any]]) -> str:
        with db.as_user(DEMO_USERS[email]) as conn:
            project_id = (
                find_project_id(conn, project_name)
                or create_project(conn, name=project_name, created_by=users[email]).id
            )
            for name, definition in defs.items():
                wid = find_workflow_id(conn, project_id, name) or (
                    create_workflow(
                        conn,
                        project_id=project_id,
                        created_by=users[email],
                        name=name,
                        definition=definition,
                        visibility="public" if name == "Order intake" else "private",
                    ).id
                )
                workflows[(email, name)] = (
                    str(wid),
                    str(project_id),
                    str(users[email]),
                    definition,
                )
        return str(project_id)

    ensure("alice@demo.wfmon", "Shop operations", retry_workflows())
    bob_project = ensure("bob@demo.wfmon", "Customer analytics", {})
    with db.as_user(DEMO_USERS["bob@demo.wfmon"]) as conn:
        existing = {c.name: c for c in list_connections(conn, bob_project)}
        policy = NetworkPolicy(allow_loopback=True)
        if "shop database" not in existing:
            existing["shop database"] = create_connection(
                conn,
                project_id=bob_project,
                name="shop database",
                connection_type="postgresql",
                url=shop_url,
                keyring=keyring,
                policy=policy,
            )
        if "cache" not in existing:
            existing["cache"] = create_connection(
                conn,
                project_id=bob_project,
                name="cache",
                connection_type="redis",
                url=redis_url,
                keyring=keyring,
                policy=policy,
            )
    ensure(
        "bob@demo.wfmon",
        "Customer analytics",
        {
            "Customer report": connection_workflow(
                str(existing["shop database"].id), str(existing["cache"].id)
            )
        },
    )
    return DemoWorld(users=users, workflows=workflows)


#: How many executions of each workflow a demo run starts, with their inputs.
RUNS: dict[str, list[Any]] = {
    "Order intake": [{"order": f"A-{i}"} for i in range(12)],
    "Nightly export": [{} for _ in range(6)],
    "Payment webhook": [{"id": f"evt-{i}"} for i in range(8)],
    "Customer report": [{"customer": c} for c in ("acme", "globex", "acme", "initech")],
}


async def run_executions(client: Client, world: DemoWorld) -> dict[str, int]:
    """Start every demo execution and wait for all of them; count outcomes."""
    outcome = {"completed": 0, "failed": 0}

    async def one(key: tuple[str, str], workflow_input: Any) -> None:
        wid, pid, uid, definition = world.workflows[key]
        handle = await start_builder_run(
            client,
            WorkflowDefinition.model_validate(definition),
            workflow_input,
            context=RunContext(workflow_id=wid, project_id=pid, user_id=uid),
        )
        try:
            await handle.result()
            outcome["completed"] += 1
        except WorkflowFailureError:
            outcome["failed"] += 1

    await asyncio.gather(
        *(
            one(key, workflow_input)
            for key in world.workflows
            for workflow_input in RUNS.get(key[1], [])
        )
    )
    return outcome

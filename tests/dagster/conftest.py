"""Dagster tests: real PostgreSQL and Temporal, a namespace of their own, workers in-process.

The namespace keeps these tests' executions apart from every other test's (the sync assets
only ever sync their own namespace), so counts asserted here are exact. The builder worker
and the sync worker run on a background event loop; tests hand coroutines to
:meth:`Harness.run`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator

import dagster as dg
import pytest
from google.protobuf.duration_pb2 import Duration
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.api.workflowservice.v1 import RegisterNamespaceRequest
from temporalio.client import Client, WorkflowFailureError
from temporalio.service import RPCError

from wfmon.db import Database
from wfmon.dev.services import Endpoints
from wfmon.sync.messages import ExecutionRef
from wfmon.testing import BuilderAndSyncHarness, WorkflowOwner, make_owner
from wfmon_defs.definitions import build_definitions

NAMESPACE = "wfmon-dagster-tests"
SEARCH_ATTRIBUTES = {
    "WfmonWorkflowId": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
    "WfmonProjectId": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
    "WfmonUserId": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
    "WfmonDefinitionVersion": IndexedValueType.INDEXED_VALUE_TYPE_INT,
}


async def ensure_namespace(address: str, namespace: str) -> None:
    """Register ``namespace`` with wfmon's search attributes and wait until it answers."""
    client = await Client.connect(address)
    try:
        await client.workflow_service.register_namespace(
            RegisterNamespaceRequest(
                namespace=namespace,
                workflow_execution_retention_period=Duration(seconds=86400),
            )
        )
    except RPCError as exc:
        if "already" not in str(exc).lower():
            raise
    for _ in range(100):
        try:
            await client.operator_service.add_search_attributes(
                AddSearchAttributesRequest(namespace=namespace, search_attributes=SEARCH_ATTRIBUTES)
            )
            ns_client = await Client.connect(address, namespace=namespace)
            await ns_client.count_workflows("WfmonWorkflowId = 'x'")
            return
        except RPCError:
            await asyncio.sleep(0.2)
    raise TimeoutError(f"namespace {namespace} did not become usable")


class Harness(BuilderAndSyncHarness):
    """Builder and sync workers on the test namespace (created first)."""

    def __init__(self, address: str, db: Database) -> None:
        super().__init__(address, db, namespace=NAMESPACE)

    async def prepare(self) -> None:
        await ensure_namespace(self.address, NAMESPACE)

    async def execute(self, owner: WorkflowOwner | None, kind: str) -> ExecutionRef:
        """Run one builder execution to its end; its ref."""
        handle = await self.start_run(owner, kind)
        with contextlib.suppress(WorkflowFailureError):
            await handle.result()
        assert handle.result_run_id is not None
        return ExecutionRef(NAMESPACE, handle.id, handle.result_run_id)


@pytest.fixture(scope="session")
def harness(endpoints: Endpoints, db: Database) -> Iterator[Harness]:
    h = Harness(endpoints.temporal_address, db).start()
    try:
        yield h
    finally:
        h.stop()


@pytest.fixture(scope="session")
def defs(database_url: str, endpoints: Endpoints, harness: Harness) -> dg.Definitions:
    """wfmon's definitions pointed at the session's services and the test namespace."""
    return build_definitions(
        database_url=database_url,
        temporal_address=endpoints.temporal_address,
        temporal_namespace=NAMESPACE,
    )


@pytest.fixture(scope="session")
def carol(db: Database) -> WorkflowOwner:
    return make_owner(db, "carol")


@pytest.fixture(scope="session")
def dave(db: Database) -> WorkflowOwner:
    return make_owner(db, "dave")

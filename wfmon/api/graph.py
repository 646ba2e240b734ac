"""The workflow graph: nodes and edges of a definition, with each node's live status.

One service for the JSON API (:mod:`wfmon.api.routers.graph`) and the pages (the graph
script fetches the same endpoints; a node's card is rendered from :func:`node_detail`).
Every function reads through the caller's connection (``Database.as_user``), so row-level
security decides what exists: anything not visible raises :class:`NotFound`.

Guarantees:

- an execution's graph is drawn from the definition it ran (its saved workflow version,
  else the definition in a builder run's input), never from today's version;
- each node carries its retry policy (strategy and the sentence wfmon writes everywhere
  else, :mod:`wfmon.api.retry_words`): the one Temporal recorded when the node ran, else
  the definition's;
- a node that did not run says why (:func:`wfmon.api.views.not_run_nodes`).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ValidationError

from wfmon.api import views
from wfmon.api.compare_view import definition_of
from wfmon.api.errors import NotFound
from wfmon.api.models import ComponentOut, NotRunNodeOut
from wfmon.api.retry_words import Policy, policy_from_recorded
from wfmon.db import DbConnection
from wfmon.db import compare as versions_db
from wfmon.db import details as d
from wfmon.db import graph as db
from wfmon.db import projects as projects_db
from wfmon.model import ComponentStatus, ExecutionStatus, WorkflowDefinition
from wfmon.model.definition import Node

#: A node's state on the graph: a component status, or no run (yet).
NodeState = ComponentStatus | Literal["not_run", "waiting"]
#: Runs of one node shown on its card (a node that ran more often says how many more).
MAX_CARD_RUNS = 20

_OPEN = frozenset({ComponentStatus.PENDING, ComponentStatus.RUNNING, ComponentStatus.RETRYING})


class RetryOut(BaseModel):
    """A node's retry policy at a glance."""

    #: keep_trying, fail_after_attempts, exponential_backoff, no_retries, or unknown.
    strategy: str
    #: e.g. "fail after 3 attempts, 1s apart".
    sentence: str
    #: Attempts allowed in total; 0 = unlimited.
    max_attempts: int


class GraphNodeOut(BaseModel):
    id: str
    component: str
    retry: RetryOut
    #: None on a workflow's graph (nothing ran).
    status: NodeState | None = None
    #: What the node shows under its name: "retrying · attempt 2 of 3", the not-run reason.
    status_text: str | None = None
    attempt: int | None = None
    #: "attempt 2 of 3" (or "attempt 2" when unlimited) when it matters.
    attempt_label: str | None = None
    #: The latest run's duration; while it runs, the time so far.
    duration_ms: int | None = None
    #: Times the node ran in this execution.
    runs: int = 0
    #: The latest component row (the card's anchor), if the node ran.
    component_id: UUID | None = None
    #: Upstream nodes that had not completed, for a node that did not run.
    blocked_by: list[str] = []


class GraphEdgeOut(BaseModel):
    source: str
    target: str


class GraphOut(BaseModel):
    kind: Literal["workflow", "execution"]
    workflow_id: UUID | None
    #: The definition version drawn (None: an execution without a saved version).
    version: int | None
    execution_id: UUID | None = None
    execution_status: ExecutionStatus | None = None
    #: True while the execution runs: the page refreshes the statuses.
    live: bool = False
    #: Why the graph may be incomplete (no definition: nodes from the component rows).
    note: str | None = None
    nodes: list[GraphNodeOut]
    edges: list[GraphEdgeOut]


class NodeDetailOut(BaseModel):
    """One node of an execution: its component cards (latest runs) or why it did not run."""

    execution_id: UUID
    node: GraphNodeOut
    #: Its component executions in schedule order (at most :data:`MAX_CARD_RUNS`).
    components: list[ComponentOut]
    not_run: NotRunNodeOut | None = None


# -- policies -------------------------------------------------------------------------------


def _retry(policy: Policy) -> RetryOut:
    return RetryOut(
        strategy=policy.strategy_name, sentence=policy.sentence, max_attempts=policy.max_attempts
    )


def _definition_policy(node: Node) -> Policy:
    return Policy(node.retry_policy, None)


# -- a workflow's graph ---------------------------------------------------------------------


def _parse(definition: Any) -> WorkflowDefinition | None:
    if not isinstance(definition, Mapping) or not definition.get("nodes"):
        return None
    try:
        return WorkflowDefinition.model_validate(definition)
    except ValidationError:
        return None


def _edges(definition: WorkflowDefinition) -> list[GraphEdgeOut]:
    pairs = dict.fromkeys((e.source, e.target) for e in definition.edges)
    return [GraphEdgeOut(source=s, target=t) for s, t in pairs]


def workflow_graph(conn: DbConnection, workflow_id: UUID, version: int | None) -> GraphOut:
    """The workflow's definition at ``version`` (default: the current one) as a graph."""
    wf = projects_db.get_workflow(conn, workflow_id)
    if wf is None:
        raise NotFound(f"workflow {workflow_id} not found")
    number = version if version is not None else int(wf["current_version"])
    saved = versions_db.version_definition(conn, workflow_id, number)
    if saved is None and version is not None:
        raise NotFound(f"workflow {workflow_id} has no version {number}")
    definition = _parse(saved)
    if definition is None:
        # A workflow wfmon discovered in Temporal has no saved definition: nothing to draw.
        return GraphOut(
            kind="workflow",
            workflow_id=workflow_id,
            version=number if saved is not None else None,
            note=f"version {number} has no definition with nodes"
            if saved is not None
            else "this workflow has no saved definition",
            nodes=[],
            edges=[],
        )
    nodes = [
        GraphNodeOut(id=n.id, component=n.component, retry=_retry(_definition_policy(n)))
        for n in definition.topological_order()
    ]
    return GraphOut(
        kind="workflow",
        workflow_id=workflow_id,
        version=number,
        nodes=nodes,
        edges=_edges(definition),
    )


# -- an execution's graph -------------------------------------------------------------------


def _execution(conn: DbConnection, execution_id: UUID) -> dict[str, Any]:
    row = d.get_execution(conn, execution_id)
    if row is None:
        raise NotFound(f"execution {execution_id} not found")
    return row


def _ran(
    run: Mapping[str, Any], component: str, attempts: Mapping[str, int], now: datetime
) -> GraphNodeOut:
    policy = policy_from_recorded(run["retry_policy"])
    status = ComponentStatus(run["status"])
    recorded = attempts.get(run["temporal_activity_id"] or run["node_id"], 0)
    attempt = max(int(run["temporal_attempt"] or 1), recorded)
    label = policy.label(attempt) if attempt > 1 or status in _OPEN else None
    duration = run["duration_ms"]
    if duration is None and status in _OPEN and run["started_at"] is not None:
        duration = max(0, int((now - run["started_at"]).total_seconds() * 1000))
    words = status.value.replace("_", " ")
    return GraphNodeOut(
        id=run["node_id"],
        component=component,
        retry=_retry(policy),
        status=status,
        status_text=f"{words} · {label}" if label else words,
        attempt=attempt,
        attempt_label=label,
        duration_ms=duration,
        runs=int(run["runs"]),
        component_id=run["id"],
    )


def _not_ran(node: Node, why: NotRunNodeOut | None, running: bool) -> GraphNodeOut:
    waiting = why.waiting if why else running
    reason = why.reason if why else ("not started yet" if running else "not run")
    return GraphNodeOut(
        id=node.id,
        component=node.component,
        retry=_retry(_definition_policy(node)),
        status="waiting" if waiting else "not_run",
        status_text=reason,
        blocked_by=why.blocked_by if why else [],
    )


def _graph_nodes(
    conn: DbConnection, row: Mapping[str, Any], definition: WorkflowDefinition | None
) -> list[GraphNodeOut]:
    runs = {r["node_id"]: r for r in db.node_runs(conn, row["id"])}
    retried = any(
        int(r["temporal_attempt"] or 1) > 1 or r["status"] in _OPEN for r in runs.values()
    )
    attempts = db.last_attempts(conn, row) if retried else {}
    now = datetime.now(UTC)
    out: list[GraphNodeOut] = []
    if definition is not None:
        why = (
            {n.node_id: n for n in views.not_run_nodes(conn, row)}
            if len(runs) < len(definition.nodes)
            else {}
        )
        running = row["status"] == ExecutionStatus.RUNNING
        for node in definition.topological_order():
            run = runs.pop(node.id, None)
            out.append(
                _ran(run, node.component, attempts, now)
                if run
                else _not_ran(node, why.get(node.id), running)
            )
    # Rows of nodes the definition does not name (or no definition): still on the graph.
    for run in runs.values():
        name = run["component_name"] or run["activity_type"] or "activity"
        out.append(_ran(run, name, attempts, now))
    return out


def execution_graph(conn: DbConnection, execution_id: UUID) -> GraphOut:
    """The graph of the definition the execution ran, every node with its status."""
    row = _execution(conn, execution_id)
    definition = definition_of(conn, row)
    nodes = _graph_nodes(conn, row, definition)
    note = None
    if definition is None:
        note = "the definition this execution ran is not known: nodes are its components"
    return GraphOut(
        kind="execution",
        workflow_id=row["workflow_id"],
        version=row["workflow_version"],
        execution_id=row["id"],
        execution_status=row["status"],
        live=row["status"] == ExecutionStatus.RUNNING,
        note=note,
        nodes=nodes,
        edges=_edges(definition) if definition else [],
    )


def node_detail(conn: DbConnection, execution_id: UUID, node_id: str) -> NodeDetailOut:
    """One node of an execution: its component cards, or why it did not run."""
    row = _execution(conn, execution_id)
    graph = execution_graph(conn, execution_id)
    node = next((n for n in graph.nodes if n.id == node_id), None)
    if node is None:
        raise NotFound(f"execution {execution_id} has no node {node_id!r}")
    rows = db.node_components(conn, execution_id, node_id, limit=MAX_CARD_RUNS)
    attempts = d.list_activity_attempts(
        conn, row, [r["temporal_activity_id"] or r["node_id"] for r in rows]
    )
    components = [
        views.component_out(r, attempts.get(r["temporal_activity_id"] or r["node_id"], []))
        for r in rows
    ]
    not_run = None
    if not rows:
        not_run = NotRunNodeOut(
            node_id=node.id,
            component=node.component,
            waiting=node.status == "waiting",
            blocked_by=node.blocked_by,
            reason=node.status_text or "not run",
        )
    return NodeDetailOut(execution_id=row["id"], node=node, components=components, not_run=not_run)

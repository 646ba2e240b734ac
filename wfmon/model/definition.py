"""Workflow definitions as the builder saves them: versioned graphs of nodes and edges.

A definition is validated as a whole: node ids are unique, every edge joins two known
nodes, and the edges form no cycle, so :meth:`WorkflowDefinition.topological_order`
always exists. Errors name the field (``nodes.1.retry_policy.fail_after_attempts.max_attempts``).
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping
from datetime import timedelta
from functools import cached_property
from typing import Annotated, Any

import temporalio.common
from pydantic import BaseModel, ConfigDict, Field, model_validator

from wfmon.model.duration import Duration
from wfmon.model.retry import DEFAULT_RETRY_POLICY, RetryPolicy

#: An attempt that runs longer than this fails with a start-to-close timeout (then retries).
DEFAULT_START_TO_CLOSE = timedelta(minutes=5)
#: Workflow type of the Temporal workflow that runs definitions (wfmon.runtime.workflow):
#: how the history reader and the web app recognise an execution of a definition.
BUILDER_WORKFLOW_TYPE = "WfmonBuilderWorkflow"

NodeId = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.:-]+$")]


class NodeTimeouts(BaseModel):
    """Per-node activity timeouts. Unset ones are not enforced, except ``start_to_close``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Longest single attempt (default 5 minutes).
    start_to_close: Duration = DEFAULT_START_TO_CLOSE
    #: Longest time for all attempts together, retries included (default: unlimited).
    schedule_to_close: Duration | None = None
    #: A running attempt that does not heartbeat this often is timed out (default: off).
    heartbeat: Duration | None = None


class Node(BaseModel):
    """One step of a workflow: a component run with its config, as one Temporal activity."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: NodeId
    #: Registered component name, which is also the Temporal activity type.
    component: Annotated[str, Field(min_length=1)]
    config: dict[str, Any] = Field(default_factory=dict)
    #: Project connection the component uses (databases, caches), if any.
    connection_id: str | None = None
    timeouts: NodeTimeouts = Field(default_factory=NodeTimeouts)
    retry_policy: RetryPolicy = DEFAULT_RETRY_POLICY
    #: Failure types (``ApplicationError.type`` or exception class names) never retried.
    non_retryable_error_types: list[Annotated[str, Field(min_length=1)]] = Field(
        default_factory=list
    )

    def temporal_retry_policy(self) -> temporalio.common.RetryPolicy:
        """The policy Temporal enforces for this node (strategy + non-retryable types)."""
        return self.retry_policy.to_temporal(self.non_retryable_error_types)


class Edge(BaseModel):
    """``source``'s output becomes part of ``target``'s input; ``target`` waits for it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: NodeId
    target: NodeId


class WorkflowDefinition(BaseModel):
    """A versioned workflow: its nodes and the edges between them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Annotated[str, Field(min_length=1)]
    name: Annotated[str, Field(min_length=1)]
    version: Annotated[int, Field(ge=1)] = 1
    nodes: Annotated[list[Node], Field(min_length=1)]
    edges: list[Edge] = Field(default_factory=list)

    @model_validator(mode="after")
    def _check_graph(self) -> WorkflowDefinition:
        seen: set[str] = set()
        for i, node in enumerate(self.nodes):
            if node.id in seen:
                raise ValueError(f"nodes.{i}.id: duplicate node id {node.id!r}")
            seen.add(node.id)
        for i, edge in enumerate(self.edges):
            for end in ("source", "target"):
                if getattr(edge, end) not in seen:
                    raise ValueError(f"edges.{i}.{end}: unknown node {getattr(edge, end)!r}")
        order = _kahn(self.nodes, self.edges)
        if len(order) < len(self.nodes):
            stuck = sorted(n.id for n in self.nodes if n.id not in set(order))
            raise ValueError(f"edges: the graph has a cycle through nodes {stuck}")
        return self

    def node(self, node_id: str) -> Node | None:
        return self._by_id.get(node_id)

    # Indexes built once per definition (a definition is not changed after validation):
    # the history reader looks up every activity's node, the detail view every node's
    # upstream, and a 5,000-node definition made per-call scans quadratic.
    @cached_property
    def _by_id(self) -> Mapping[str, Node]:
        return {n.id: n for n in self.nodes}

    @cached_property
    def _upstream_by_target(self) -> Mapping[str, list[str]]:
        index: dict[str, dict[str, None]] = {}
        for e in self.edges:
            index.setdefault(e.target, {})[e.source] = None
        return {target: list(sources) for target, sources in index.items()}

    def upstream(self, node_id: str) -> list[str]:
        """Ids of the nodes whose outputs ``node_id`` receives, in edge order, no repeats."""
        return list(self._upstream_by_target.get(node_id, ()))

    def topological_order(self) -> list[Node]:
        """Every node after all its upstream nodes; ties keep definition order (stable)."""
        by_id = self._by_id
        return [by_id[i] for i in _kahn(self.nodes, self.edges)]


def _kahn(nodes: list[Node], edges: list[Edge]) -> list[str]:
    """Kahn's algorithm, always picking the earliest ready node in definition order."""
    indegree = {n.id: 0 for n in nodes}
    children: dict[str, list[str]] = {n.id: [] for n in nodes}
    for e in dict.fromkeys((e.source, e.target) for e in edges):
        if e[0] in children and e[1] in indegree:
            children[e[0]].append(e[1])
            indegree[e[1]] += 1
    position = {n.id: i for i, n in enumerate(nodes)}
    # A heap of (definition position, id): O(n log n) for thousands of parallel nodes.
    ready = [(position[i], i) for i, d in indegree.items() if d == 0]
    heapq.heapify(ready)
    order: list[str] = []
    while ready:
        _, current = heapq.heappop(ready)
        order.append(current)
        for child in children[current]:
            indegree[child] -= 1
            if indegree[child] == 0:
                heapq.heappush(ready, (position[child], child))
    return order

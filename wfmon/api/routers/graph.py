"""The workflow graph: ``GET /api/executions/{id}/graph`` (the definition the execution
ran, every node with its status, duration, attempts and retry policy),
``GET /api/executions/{id}/graph/nodes/{node_id}`` (one node's component cards) and
``GET /api/workflows/{id}/graph?version=N``; the page fragment
``/executions/{id}/graph/nodes/{node_id}`` is the same node's cards as HTML (what the
graph shows beside itself when a node is opened).

All read the database only (no sync: the execution page's own refresh syncs), under the
caller's row-level security: an execution or workflow the caller may not see is a 404.
"""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import HTMLResponse

from wfmon.api import graph
from wfmon.api.deps import UserConn
from wfmon.api.errors import ERROR_RESPONSES
from wfmon.api.html import render_page
from wfmon.api.models import json_response

router = APIRouter(prefix="/api", tags=["graph"], responses=ERROR_RESPONSES)
pages = APIRouter(include_in_schema=False)

NodeIdPath = Annotated[str, Path(min_length=1, max_length=200, description="the node's id")]


@router.get("/executions/{execution_id}/graph", response_model=graph.GraphOut)
def execution_graph(execution_id: UUID, conn: UserConn) -> Response:
    """The graph of the definition version this execution ran, each node with its status
    (completed, failed, retrying with "attempt n of m", running, not run and why), its
    duration and its retry policy."""
    return json_response(graph.execution_graph(conn, execution_id))


@router.get(
    "/executions/{execution_id}/graph/nodes/{node_id:path}", response_model=graph.NodeDetailOut
)
def execution_node(execution_id: UUID, node_id: NodeIdPath, conn: UserConn) -> Response:
    """One node of the execution: its component executions (input, output, error,
    attempts explained against the retry policy) or why it did not run."""
    return json_response(graph.node_detail(conn, execution_id, node_id))


@router.get("/workflows/{workflow_id}/graph", response_model=graph.GraphOut)
def workflow_graph(
    workflow_id: UUID,
    conn: UserConn,
    version: Annotated[
        int | None, Query(ge=1, le=2_147_483_647, description="default: the current version")
    ] = None,
) -> Response:
    """The workflow's definition at ``version`` as a graph (nodes with their retry
    policies, edges)."""
    return json_response(graph.workflow_graph(conn, workflow_id, version))


@pages.get("/executions/{execution_id}/graph/nodes/{node_id:path}", response_class=HTMLResponse)
def node_card(
    request: Request, execution_id: UUID, node_id: NodeIdPath, conn: UserConn
) -> Response:
    """The node's component cards as an HTML fragment (the execution page's card markup)."""
    detail = graph.node_detail(conn, execution_id, node_id)
    return render_page(request, "_graph_node.html", n=detail)

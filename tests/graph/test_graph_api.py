"""The graph's JSON API and node fragment over HTTP, under row-level security."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

from tests.graph.conftest import RECORDED, GraphWorld
from wfmon.api.graph import GraphOut, NodeDetailOut
from wfmon.api.retry_words import policy_from_recorded


def get(world: GraphWorld, path: str, token: str) -> tuple[int, Any]:
    req = urllib.request.Request(world.url + path, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            body = resp.read()
            kind = resp.headers.get("content-type", "")
            return resp.status, json.loads(body) if "json" in kind else body.decode()
    except urllib.error.HTTPError as exc:
        body = exc.read()
        if "json" in (exc.headers.get("content-type") or ""):
            return exc.code, json.loads(body)
        return exc.code, body.decode()


def test_execution_graph_is_the_version_it_ran_with_statuses(graph_world: GraphWorld) -> None:
    status, body = get(
        graph_world, f"/api/executions/{graph_world.failed}/graph", graph_world.alice_token
    )
    assert status == 200, body
    graph = GraphOut.model_validate(body)
    assert graph.version == 1 and graph.kind == "execution" and not graph.live
    # Version 1's nodes and edges, not today's version 2 (audit instead of ship).
    assert [n.id for n in graph.nodes] == ["fetch", "charge", "notify", "ship"]
    assert {(e.source, e.target) for e in graph.edges} == {
        ("fetch", "charge"),
        ("fetch", "notify"),
        ("charge", "ship"),
    }
    nodes = {n.id: n for n in graph.nodes}
    assert nodes["fetch"].status == "completed"
    assert nodes["fetch"].attempt_label == "attempt 2 of 3"
    assert nodes["charge"].status == "failed"
    assert nodes["charge"].status_text == "failed · attempt 3 of 3"
    assert nodes["charge"].duration_ms == 250
    assert nodes["notify"].attempt_label is None, "one attempt, nothing to say"
    assert nodes["ship"].status == "not_run"
    assert nodes["ship"].status_text == "not run: upstream charge did not complete"
    assert nodes["ship"].blocked_by == ["charge"]
    # The sentence wfmon writes elsewhere: from the recorded policy when the node ran, from
    # the definition when it did not.
    for node in ("fetch", "charge", "notify"):
        want = policy_from_recorded(RECORDED[node])
        assert nodes[node].retry.sentence == want.sentence
        assert nodes[node].retry.strategy == want.strategy_name
    assert nodes["charge"].retry.strategy == "exponential_backoff"
    assert nodes["notify"].retry.strategy == "keep_trying"
    assert nodes["ship"].retry.strategy == "no_retries"
    assert nodes["ship"].retry.sentence == "no retries: fail on the first error"


def test_running_execution_graph(graph_world: GraphWorld) -> None:
    status, body = get(
        graph_world, f"/api/executions/{graph_world.running}/graph", graph_world.alice_token
    )
    assert status == 200, body
    graph = GraphOut.model_validate(body)
    assert graph.live
    nodes = {n.id: n for n in graph.nodes}
    assert nodes["charge"].status == "retrying"
    assert nodes["charge"].status_text == "retrying · attempt 2 of 3"
    assert nodes["notify"].status == "running"
    assert nodes["notify"].duration_ms is not None and nodes["notify"].duration_ms > 0
    assert nodes["ship"].status == "waiting"
    assert nodes["ship"].status_text == "waiting for charge"


def test_workflow_graph_by_version(graph_world: GraphWorld) -> None:
    wf = graph_world.alice.workflow.id
    status, body = get(graph_world, f"/api/workflows/{wf}/graph", graph_world.alice_token)
    assert status == 200, body
    current = GraphOut.model_validate(body)
    assert current.version == 2
    assert [n.id for n in current.nodes] == ["fetch", "charge", "notify", "audit"]
    assert all(n.status is None for n in current.nodes)
    audit = next(n for n in current.nodes if n.id == "audit")
    assert audit.retry.sentence == "fail after 3 attempts, 1s apart", "the default policy"
    status, body = get(graph_world, f"/api/workflows/{wf}/graph?version=1", graph_world.alice_token)
    assert status == 200, body
    v1 = GraphOut.model_validate(body)
    assert v1.version == 1 and [n.id for n in v1.nodes] == ["fetch", "charge", "notify", "ship"]
    status, body = get(graph_world, f"/api/workflows/{wf}/graph?version=9", graph_world.alice_token)
    assert status == 404 and "no version 9" in body["message"]
    status, body = get(graph_world, f"/api/workflows/{wf}/graph?version=0", graph_world.alice_token)
    assert status == 422 and "version" in json.dumps(body)


def test_node_detail_cards_and_not_run(graph_world: GraphWorld) -> None:
    base = f"/api/executions/{graph_world.failed}/graph/nodes"
    status, body = get(graph_world, f"{base}/charge", graph_world.alice_token)
    assert status == 200, body
    detail = NodeDetailOut.model_validate(body)
    assert detail.not_run is None and len(detail.components) == 1
    card = detail.components[0]
    assert [a.label for a in card.attempts] == [
        "attempt 1 of 3",
        "attempt 2 of 3",
        "attempt 3 of 3",
    ]
    assert card.error_message == "card declined"
    status, body = get(graph_world, f"{base}/ship", graph_world.alice_token)
    assert status == 200 and body["components"] == []
    assert body["not_run"]["reason"] == "not run: upstream charge did not complete"
    status, body = get(graph_world, f"{base}/nowhere", graph_world.alice_token)
    assert status == 404 and "nowhere" in body["message"]
    # The page fragment is the execution page's card markup.
    status, html = get(
        graph_world, f"/executions/{graph_world.failed}/graph/nodes/charge", graph_world.alice_token
    )
    assert status == 200
    assert 'class="card s-failed"' in html and "Retry history: 3 attempts" in html
    assert 'id="g-' in html and 'id="c-' not in html, "the panel's ids differ from the list's"


def test_another_user_gets_404_everywhere(graph_world: GraphWorld) -> None:
    bob = graph_world.bob_token
    paths = [
        f"/api/executions/{graph_world.failed}/graph",
        f"/api/executions/{graph_world.running}/graph",
        f"/api/executions/{graph_world.failed}/graph/nodes/charge",
        f"/api/workflows/{graph_world.alice.workflow.id}/graph",
        f"/api/workflows/{graph_world.alice.workflow.id}/graph?version=1",
    ]
    for path in paths:
        status, body = get(graph_world, path, bob)
        assert status == 404, (path, body)
        assert "charge" not in json.dumps(body)
    status, _ = get(graph_world, f"/executions/{graph_world.failed}/graph/nodes/charge", bob)
    assert status == 404
    # Bob's own workflow is his to read.
    status, body = get(graph_world, f"/api/workflows/{graph_world.bob.workflow.id}/graph", bob)
    assert status == 200 and body["version"] == 1

"""The editing API over HTTP: create, save versions, read and compare them, run; and what
it refuses (RLS, cycles, dangling edges, bad policies, connections of the wrong type or
of another project)."""

from __future__ import annotations

import copy
import json
from typing import Any

from tests.api.conftest import Http
from tests.editor.conftest import ALICE_FLOW, EditorWorld


def _flow(**changes: Any) -> dict[str, Any]:
    flow = copy.deepcopy(ALICE_FLOW)
    flow.update(changes)
    return flow


def _fields(reply: Any) -> dict[str, str]:
    assert reply.status == 422, (reply.status, reply.text)
    return {f["field"]: f["message"] for f in reply.json()["fields"]}


def test_save_creates_versions_and_the_diff_names_what_changed(editor_world: EditorWorld) -> None:
    h = editor_world.http(editor_world.alice)
    wid = editor_world.alice.workflow.id
    created = h.post(
        "/api/workflows",
        {"project_id": str(editor_world.alice.project.id), "name": "ed new", "definition": _flow()},
    )
    assert created.status == 201, created.text
    assert created.json()["version"] == 1 and created.json()["workflow"]["owned"]
    theirs = h.post(
        "/api/workflows",
        {"project_id": str(editor_world.bob.project.id), "name": "ed x", "definition": _flow()},
    )
    assert theirs.status == 404, theirs.text
    again = h.post(
        "/api/workflows",
        {"project_id": str(editor_world.alice.project.id), "name": "ed new", "definition": _flow()},
    )
    assert again.status == 409 and "ed new" in again.json()["message"]

    start = h.get(f"/api/workflows/{wid}").json()["current_version"]
    edited = _flow()
    edited["nodes"][1]["retry_policy"] = {"strategy": "exponential_backoff", "max_attempts": 4}
    edited["nodes"].append({"id": "tail", "component": "transform"})
    edited["edges"] = [
        {"source": "fetch", "target": "tail"},
        {"source": "fetch", "target": "shape"},
    ]
    saved = h.request("PUT", f"/api/workflows/{wid}", {"definition": edited, "base_version": start})
    assert saved.status == 200, saved.text
    version = saved.json()["version"]
    assert version == start + 1 and saved.json()["workflow"]["current_version"] == version
    # The stored definition is the runtime's normalised one, numbered by the server.
    assert saved.json()["definition"]["version"] == version
    assert saved.json()["definition"]["nodes"][0]["retry_policy"]["strategy"] == (
        "fail_after_attempts"
    )

    stale = h.request("PUT", f"/api/workflows/{wid}", {"definition": edited, "base_version": start})
    assert stale.status == 409 and f"version {version}" in stale.json()["message"]

    listed = h.get(f"/api/workflows/{wid}/versions").json()
    assert [v["version"] for v in listed][:2] == [version, start]
    assert listed[0]["current"] and listed[0]["node_count"] == 3 and listed[0]["edge_count"] == 2
    old = h.get(f"/api/workflows/{wid}/versions/{start}").json()
    assert [n["id"] for n in old["definition"]["nodes"]] == ["fetch", "shape"]

    diff = h.get(f"/api/workflows/{wid}/diff?from={start}&to={version}").json()
    assert diff["nodes_added"] == ["tail"] and diff["nodes_removed"] == []
    assert diff["edges_added"] == [{"source": "fetch", "target": "tail"}]
    (changed,) = diff["nodes_changed"]
    paths = {c["path"]: (c["before"], c["after"]) for c in changed["changes"]}
    assert changed["node_id"] == "shape"
    assert paths["retry_policy.strategy"] == ("fail_after_attempts", "exponential_backoff")
    assert paths["retry_policy.max_attempts"] == (2, 4)
    assert h.get(f"/api/workflows/{wid}/versions/999").status == 404


def test_invalid_definitions_are_refused_naming_the_node(editor_world: EditorWorld) -> None:
    h = editor_world.http(editor_world.alice)
    url = f"/api/workflows/{editor_world.alice.workflow.id}"
    before = h.get(url).json()["current_version"]

    cycle = _flow(
        edges=[{"source": "fetch", "target": "shape"}, {"source": "shape", "target": "fetch"}]
    )
    fields = _fields(h.request("PUT", url, {"definition": cycle}))
    assert (
        "cycle" in fields["body.definition.edges"] and "'shape'" in fields["body.definition.edges"]
    )

    dangling = _flow(edges=[{"source": "fetch", "target": "ghost"}])
    fields = _fields(h.request("PUT", url, {"definition": dangling}))
    assert "unknown node 'ghost'" in fields["body.definition.edges.0.target"]

    bad_policy = _flow()
    bad_policy["nodes"][1]["retry_policy"] = {"strategy": "fail_after_attempts", "max_attempts": 0}
    fields = _fields(h.request("PUT", url, {"definition": bad_policy}))
    message = fields["body.definition.nodes.1.retry_policy.max_attempts"]
    assert message.startswith("node 'shape': ") and "greater than or equal to 1" in message

    pg = editor_world.connections
    wrong = _flow()
    wrong["nodes"] = [
        {
            "id": "q",
            "component": "postgresql-query",
            "connection_id": pg["cache"],
            "config": {"sql": "SELECT $1, $2", "params": [{"path": "workflow.x"}]},
        },
        {
            "id": "theirs",
            "component": "postgresql-query",
            "connection_id": pg["bob-pg"],
            "config": {"sql": "SELECT 1"},
        },
        {
            "id": "r",
            "component": "redis-command",
            "connection_id": pg["cache"],
            "config": {"command": "FLUSHALL"},
        },
        {"id": "ts", "component": "typescript-processor", "config": {}},
        {"id": "odd", "component": "no-such-thing"},
    ]
    wrong["edges"] = []
    fields = _fields(h.request("PUT", url, {"definition": wrong}))
    assert (
        "not a postgresql connection of this project"
        in fields["body.definition.nodes.0.connection_id"]
    )
    assert "2 positional parameter(s)" in fields["body.definition.nodes.0.config.params"]
    assert "node 'theirs'" in fields["body.definition.nodes.1.connection_id"]
    assert "not allowed" in fields["body.definition.nodes.2.config.command"]
    assert "'code' is a required property" in fields["body.definition.nodes.3.config"]
    assert "unknown component 'no-such-thing'" in fields["body.definition.nodes.4.component"]
    # Nothing was written by any of the refusals; no URL is in any message.
    assert h.get(url).json()["current_version"] == before
    assert all("secret-pw" not in m and "bob-pw" not in m for m in fields.values())


def test_a_definition_using_all_four_components_is_accepted(editor_world: EditorWorld) -> None:
    h = editor_world.http(editor_world.alice)
    c = editor_world.connections
    pg_query = {"sql": "SELECT $1::int", "params": [{"path": "upstream.fetch.rows"}]}
    nodes = [
        {"id": "fetch", "component": "transform", "config": {"set": {"rows": 1}}},
        {"id": "q", "component": "postgresql-query", "connection_id": c["pg"], "config": pg_query},
        {"id": "r", "component": "redis-command", "connection_id": c["cache"],
         "config": {"command": "SET", "args": [{"template": "k:{workflow.id}"}, "v"]}},
        {"id": "ts", "component": "typescript-processor",
         "config": {"code": "export default (d: unknown) => d;"}},
        {"id": "cached", "component": "cache-aside", "connection_id": c["cache"],
         "config": {"key": "rows:{workflow.id}", "ttl_seconds": 60,
                    "wrapped": {"component": "postgresql-query", "connection_id": c["pg"],
                                "config": pg_query}}},
    ]  # fmt: skip
    edges = [{"source": "fetch", "target": t} for t in ("q", "r", "ts", "cached")]
    created = h.post(
        "/api/workflows",
        {
            "project_id": str(editor_world.alice.project.id),
            "name": "ed all components",
            "definition": {"nodes": nodes, "edges": edges},
        },
    )
    assert created.status == 201, created.text
    wid = created.json()["workflow"]["id"]
    wrong = copy.deepcopy(nodes)
    wrong[4]["config"]["wrapped"]["connection_id"] = c["cache"]
    fields = _fields(h.request("PUT", f"/api/workflows/{wid}", {"definition": {"nodes": wrong}}))
    assert "node 'cached'" in fields["body.definition.nodes.4.config.wrapped.connection_id"]


def test_only_the_owner_edits_or_runs(editor_world: EditorWorld) -> None:
    alice, bob = editor_world.http(editor_world.alice), editor_world.http(editor_world.bob)
    mine = editor_world.alice.workflow.id
    for path, body in ((f"/api/workflows/{mine}", {"definition": _flow()}),):
        assert bob.request("PUT", path, body).status == 404
    assert bob.post(f"/api/workflows/{mine}/runs", {"input": {}}).status == 404
    assert bob.get(f"/api/workflows/{mine}/versions").status == 404
    assert bob.get(f"/api/workflows/{mine}/editor").status == 404

    public = editor_world.bobs_public
    assert alice.get(f"/api/workflows/{public}/versions").status == 200
    editor = alice.get(f"/api/workflows/{public}/editor").json()
    assert editor["owned"] is False and editor["connections"] == []
    put = alice.request("PUT", f"/api/workflows/{public}", {"definition": _flow()})
    assert put.status == 403 and "only its owner may edit" in put.json()["message"]
    run = alice.post(f"/api/workflows/{public}/runs", {"input": {}})
    assert run.status == 403 and "only its owner may run" in run.json()["message"]
    assert Http(editor_world.url).post(f"/api/workflows/{mine}/runs", {}).status == 401


def test_editor_offers_own_connections_without_urls(editor_world: EditorWorld) -> None:
    h = editor_world.http(editor_world.alice)
    reply = h.get(f"/api/workflows/{editor_world.alice.workflow.id}/editor")
    body = reply.json()
    assert {c["name"] for c in body["connections"]} == {"pg", "cache"}
    assert "127.0.0.1" not in reply.text and "secret-pw" not in reply.text
    assert {"postgresql-query", "redis-command", "typescript-processor", "cache-aside"} <= {
        c["name"] for c in body["components"]
    }
    assert body["strategies"] == [
        "keep_trying",
        "fail_after_attempts",
        "exponential_backoff",
        "no_retries",
    ]


def test_retry_policy_sentence_and_its_validation(editor_world: EditorWorld) -> None:
    h = editor_world.http(editor_world.alice)
    ok = h.post(
        "/api/retry-policies/describe", {"strategy": "fail_after_attempts", "max_attempts": 3}
    )
    assert ok.json() == {
        "strategy": "fail_after_attempts",
        "sentence": "fail after 3 attempts, 1s apart",
        "max_attempts": 3,
    }
    fields = _fields(
        h.post("/api/retry-policies/describe", {"strategy": "keep_trying", "interval": "soon"})
    )
    assert "not a duration" in fields["body.interval"]
    assert "body.strategy" in _fields(h.post("/api/retry-policies/describe", {"strategy": "maybe"}))


def test_run_starts_the_current_version_and_records_it(editor_world: EditorWorld) -> None:
    h = editor_world.http(editor_world.alice)
    wid = editor_world.alice.workflow.id
    version = h.get(f"/api/workflows/{wid}").json()["current_version"]
    too_big = h.post(f"/api/workflows/{wid}/runs", {"input": {"blob": "x" * 300_000}})
    assert "body.input" in _fields(too_big)

    run = h.post(f"/api/workflows/{wid}/runs", {"input": {"order": "A-1"}})
    assert run.status == 201, run.text
    body = run.json()
    assert body["version"] == version and body["url"] == f"/executions/{body['execution_id']}"
    # The execution is the caller's at once, at that version; once Temporal has finished
    # it, one sync through the API shows it completed.
    h_ = editor_world.harness
    handle = h_.client.get_workflow_handle(body["temporal_workflow_id"], run_id=body["run_id"])
    h_.run(handle.result(), timeout=15)
    synced = h.post(f"/api/executions/{body['execution_id']}/sync", {"immediate": True})
    assert synced.status == 200, synced.text
    e = h.get(f"/api/executions/{body['execution_id']}").json()["execution"]
    assert e["status"] == "completed", e
    assert e["workflow_version"] == version and '"order": "A-1"' in json.dumps(e["input"])

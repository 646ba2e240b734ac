"""The JSON API over HTTP against the real app and services: statuses, bodies, RLS."""

from __future__ import annotations

import base64
import json
import re
import time
import uuid
from typing import Any

import pytest

from tests.api.conftest import DEFINITION, JWT_SECRET, Http, Reply, World, sleeper
from wfmon.api.jwt import dev_token, encode_hs256

UUID_RE = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def shape(reply: Reply) -> tuple[int, Any]:
    """Status and body with ids blanked: what a caller could learn from a denial."""
    return reply.status, json.loads(UUID_RE.sub("<id>", reply.text))


# -- authentication ---------------------------------------------------------------------


def test_requests_without_a_valid_token_are_401(world: World) -> None:
    anon = world.http()
    e = world.executions["failed"]
    r = anon.get(f"/api/executions/{e}")
    assert r.status == 401
    assert r.json()["error"] == "unauthorized"
    assert r.headers["www-authenticate"].startswith("Bearer")
    sub = str(world.alice.auth_user_id)
    header = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').rstrip(b"=").decode()
    payload = base64.urlsafe_b64encode(json.dumps({"sub": sub}).encode()).rstrip(b"=").decode()
    bad = {
        "wrong secret": dev_token(sub, "not-the-secret"),
        "expired": encode_hs256({"sub": sub, "exp": time.time() - 3600}, JWT_SECRET),
        "alg none": f"{header}.{payload}.",
        "sub not a uuid": dev_token("alice", JWT_SECRET),
        "garbage": "abc.def",
        "tampered": world.alice.token[:-2]
        + ("AA" if not world.alice.token.endswith("AA") else "BB"),
    }
    for why, token in bad.items():
        r = anon.as_(token).get(f"/api/executions/{e}")
        assert r.status == 401, why
        assert r.json()["message"].startswith("invalid token"), why
    r = anon.get(f"/api/executions/{e}", headers={"Authorization": "Basic abc"})
    assert r.status == 401


def test_a_token_for_an_unknown_user_sees_nothing(world: World) -> None:
    stranger = world.http().as_(dev_token(str(uuid.uuid4()), JWT_SECRET))
    assert stranger.get("/api/projects").json() == []
    assert stranger.get("/api/me").json()["user_id"] is None
    assert stranger.get(f"/api/executions/{world.executions['failed']}").status == 404


# -- execution details ------------------------------------------------------------------


def test_failed_execution_shows_components_and_retry_history(world: World) -> None:
    r = world.http(world.alice).get(f"/api/executions/{world.executions['failed']}")
    assert r.status == 200, r.text
    d = r.json()
    e = d["execution"]
    assert e["status"] == "failed" and "charge" in e["error_message"]
    assert e["workflow_name"] == world.alice.workflow.name
    assert e["sync"]["status"] == "synced"
    assert d["component_total"] == 2 and d["component_counts"] == {"completed": 1, "failed": 1}
    fetch, charge = d["components"]

    assert fetch["node_id"] == "fetch" and fetch["status"] == "completed"
    assert fetch["policy"]["sentence"] == "fail after 3 attempts, 100ms apart"
    assert [a["label"] for a in fetch["attempts"]] == ["attempt 1 of 3", "attempt 2 of 3"]
    first = fetch["attempts"][0]
    assert first["outcome"] == "failed" and first["failure_type"] == "FlakyError"
    assert first["retried"] is True and first["retry_expected"] is True
    assert first["explanation"].startswith("fail after 3 attempts, 100ms apart: attempt 1 of 3")
    assert "expected" in first["explanation"]
    assert fetch["attempts"][1]["retried"] is False
    assert fetch["input"] and fetch["output"]["output"] == {"rows": 3}
    assert fetch["retry_summary"].startswith("1 retry, expected")

    assert charge["status"] == "failed" and charge["error_message"]
    assert {a["failure_type"] for a in charge["attempts"]} == {"CardDeclined"}
    assert [a["outcome"] for a in charge["attempts"]] == ["failed", "failed"]
    assert charge["attempts"][0]["retry_expected"] is False
    assert "unexpected" in charge["attempts"][0]["explanation"]
    assert "attempt 2 of 2" in charge["attempts"][1]["explanation"]
    assert "using all 2 attempts" in charge["retry_summary"]

    bars = {b["node_id"]: b for b in d["timeline"]["bars"]}
    kinds = [s["kind"] for s in bars["charge"]["segments"]]
    assert kinds == ["attempt", "wait", "attempt"], "retries are visible as segments"
    assert all(0 <= s["left"] <= 100 and s["width"] > 0 for s in bars["charge"]["segments"])
    assert d["timeline"]["live"] is False


def test_nodes_that_never_ran_are_listed_with_why(world: World) -> None:
    chain = {
        **DEFINITION,
        "nodes": [
            *DEFINITION["nodes"],
            {"id": "notify", "component": "transform", "config": {"set": {"sent": True}}},
            {"id": "archive", "component": "transform", "config": {"set": {"done": True}}},
        ],
        "edges": [
            *DEFINITION["edges"],
            {"source": "charge", "target": "notify"},
            {"source": "notify", "target": "archive"},
        ],
    }
    execution_id = world.sync(world.run(world.alice, chain))
    d = world.http(world.alice).get(f"/api/executions/{execution_id}").json()
    assert d["component_total"] == 2, "nodes that did not run are not component executions"
    assert [(n["node_id"], n["blocked_by"], n["waiting"]) for n in d["not_run"]] == [
        ("notify", ["charge"], False),
        ("archive", ["notify"], False),
    ]
    assert d["not_run"][0]["reason"] == "not run: upstream charge did not complete"

    page = world.http().get(
        f"/executions/{execution_id}", headers={"Cookie": f"wfmon_token={world.alice.token}"}
    )
    assert "Nodes that did not run" in page.text and page.text.count("not-run-node") == 2

    # Every node ran: nothing listed.
    done = world.http(world.alice).get(f"/api/executions/{world.executions['completed']}")
    assert done.json()["not_run"] == []


def test_nodes_of_a_running_execution_wait_for_their_upstream(world: World) -> None:
    definition = sleeper(3)
    definition["nodes"].append({"id": "after", "component": "transform", "config": {}})
    definition["edges"] = [{"source": "nap", "target": "after"}]
    handle = world.run(world.alice, definition, wait=False)
    execution_id = world.sync(handle)
    h = world.http(world.alice)
    d = h.get(f"/api/executions/{execution_id}").json()
    assert d["execution"]["status"] == "running"
    waiting = {n["node_id"]: n for n in d["not_run"]}
    assert waiting["after"]["waiting"] and waiting["after"]["reason"] == "waiting for nap"
    world.harness.run(handle.result())
    world.sync(handle)
    assert h.get(f"/api/executions/{execution_id}").json()["not_run"] == []


def test_components_are_paged_on_a_5000_component_execution(world: World) -> None:
    h = world.http(world.alice)
    big = world.executions["big"]
    t0 = time.perf_counter()
    r = h.get(f"/api/executions/{big}?offset=4950&limit=100")
    elapsed = time.perf_counter() - t0
    assert r.status == 200
    d = r.json()
    assert d["component_total"] == 5000 and len(d["components"]) == 50
    assert d["components"][-1]["node_id"] == "node-04999"
    assert elapsed < 2.0, f"one page of a 5,000-component execution took {elapsed:.2f}s"
    page = h.get(f"/api/executions/{big}/components?offset=0&limit=500").json()
    assert page["total"] == 5000 and len(page["components"]) == 500
    assert h.get(f"/api/executions/{big}/components?limit=501").status == 422
    assert h.get(f"/api/executions/{big}/components?offset=-1").status == 422
    completed = h.get(f"/api/executions/{big}/components?status=completed&limit=1").json()
    assert completed["total"] == 5000


def test_a_running_execution_is_synced_on_read_and_grows(world: World) -> None:
    handle = world.run(world.alice, sleeper(4), wait=False)
    execution_id = world.sync(handle)
    h = world.http(world.alice)
    d = h.get(f"/api/executions/{execution_id}").json()
    assert d["execution"]["status"] == "running"
    assert d["timeline"]["live"] is True
    bar = d["timeline"]["bars"][0] if d["timeline"]["bars"] else None
    time.sleep(5.5)  # past the stale window: a read syncs first unless the coordinator's
    later = h.get(f"/api/executions/{execution_id}").json()  # live re-sync already did
    assert later["execution"]["status"] == "completed"
    assert later["execution"]["sync"]["synced_at"] >= later["execution"]["closed_at"]
    assert later["components"][0]["status"] == "completed"
    if bar is not None:
        assert later["timeline"]["bars"][0]["status"] == "completed"


# -- execution history ----------------------------------------------------------------


def test_history_pages_filter_and_sort(world: World) -> None:
    h = world.http(world.alice)
    wf = world.alice.workflow.id
    everything = h.get(f"/api/workflows/{wf}/executions?page_size=100").json()
    statuses = {i["status"] for i in everything["items"]}
    assert {"failed", "completed", "terminated", "timed_out"} <= statuses
    for status in ("failed", "terminated", "timed_out", "canceled"):
        page = h.get(f"/api/workflows/{wf}/executions?status={status}").json()
        assert all(i["status"] == status for i in page["items"])
        assert page["total"] == sum(1 for i in everything["items"] if i["status"] == status)
    failed = h.get(f"/api/workflows/{wf}/executions?status=failed").json()["items"]
    assert failed[0]["component_count"] == 2 and failed[0]["failed_components"] == 1
    assert failed[0]["history_sync_status"] == "synced"
    asc = h.get(f"/api/workflows/{wf}/executions?sort=started_at_asc&page_size=100").json()
    desc = h.get(f"/api/workflows/{wf}/executions?sort=started_at_desc&page_size=100").json()
    assert [i["id"] for i in asc["items"]] == [i["id"] for i in reversed(desc["items"])]
    one = h.get(f"/api/workflows/{wf}/executions?page_size=1&page=2").json()
    assert one["page"] == 2 and len(one["items"]) == 1 and one["pages"] == everything["total"]
    assert h.get(f"/api/workflows/{wf}/executions?page=999").json()["items"] == []
    for bad in ("page_size=0", "page_size=101", "page=0", "status=exploded", "sort=name"):
        r = h.get(f"/api/workflows/{wf}/executions?{bad}")
        assert r.status == 422, bad
        body = r.json()
        assert body["error"] == "invalid_input" and body["fields"][0]["field"].startswith("query.")


# -- sync, raw history ---------------------------------------------------------------------


def test_sync_requests_immediate_and_queued(world: World) -> None:
    h = world.http(world.alice)
    e = world.executions["completed"]
    now = h.post(f"/api/executions/{e}/sync", {"immediate": True})
    assert now.status == 200 and now.json()["outcome"] == "synced", now.text
    queued = h.post(f"/api/executions/{e}/sync", {"immediate": False})
    assert queued.status == 202 and queued.json()["queued"] is True
    assert h.post(f"/api/executions/{e}/sync").status == 202
    status = h.get(f"/api/executions/{e}/sync").json()
    assert status["history_sync_status"] == "synced" and status["stale"] is False
    assert h.post(f"/api/executions/{e}/sync", {"immediate": "soon"}).status == 422
    assert h.post(f"/api/executions/{e}/sync", {"extra": 1}).status == 422


def test_raw_history_downloads_as_temporal_json(world: World) -> None:
    h = world.http(world.alice)
    e = world.executions["failed"]
    r = h.get(f"/api/executions/{e}/history")
    assert r.status == 200 and r.headers["content-type"].startswith("application/json")
    assert "attachment" in r.headers["content-disposition"]
    events = r.json()["events"]
    count = h.get(f"/api/executions/{e}").json()["execution"]["sync"]["event_count"]
    assert len(events) == count
    assert events[0]["eventType"] == "EVENT_TYPE_WORKFLOW_EXECUTION_STARTED"
    assert int(events[-1]["eventId"]) == count


# -- statistics --------------------------------------------------------------------------


def test_workflow_and_project_statistics(world: World) -> None:
    h = world.http(world.alice)
    s = h.get(f"/api/workflows/{world.alice.workflow.id}/statistics").json()
    live = s["live"]
    assert live["total_runs"] >= 5 and live["failures"] >= 3
    assert {"failed", "terminated", "timed_out", "completed"} <= set(live["by_status"])
    assert live["trend"] and live["trend"][-1]["runs"] >= 1
    assert live["top_components"][0]["name"] == "transform"
    p = h.get(f"/api/projects/{world.alice.project.id}/statistics").json()
    assert p["top_workflows"][0]["name"] == world.alice.workflow.name
    assert {q["name"] for q in p["top_task_queues"]} >= {world.harness.builder_queue}
    assert p["longest_run"]["duration_ms"] > 0
    assert p["stored"] is None or "total_executions" in p["stored"]


# -- connections -------------------------------------------------------------------------


def test_connections_crud_and_test(world: World, database_url: str) -> None:
    h = world.http(world.alice)
    project = world.alice.project.id
    url = database_url
    assert "@" in url, "the session database URL carries a password"
    r = h.post(
        f"/api/projects/{project}/connections",
        {"name": "warehouse", "connection_type": "postgresql", "url": url},
    )
    assert r.status == 201, r.text
    created = r.json()
    password = url.split("@")[0].rsplit(":", 1)[-1]
    assert password not in r.text and "@" not in created["masked_url"]
    cid = created["id"]
    dup = h.post(
        f"/api/projects/{project}/connections",
        {"name": "warehouse", "connection_type": "postgresql", "url": url},
    )
    assert dup.status == 409 and dup.json()["error"] == "conflict"
    bad = h.post(
        f"/api/projects/{project}/connections",
        {"name": "bad", "connection_type": "postgresql", "url": "postgresql://h:99999/db"},
    )
    assert bad.status == 422 and "port" in bad.json()["message"]
    assert h.post(f"/api/projects/{project}/connections", {"name": "x"}).status == 422
    listed = h.get(f"/api/projects/{project}/connections").json()
    assert [c["name"] for c in listed].count("warehouse") == 1
    test = h.post(f"/api/connections/{cid}/test")
    assert test.status == 200 and test.json()["ok"] is True, test.text
    renamed = h.patch(f"/api/connections/{cid}", {"name": "warehouse-2"})
    assert renamed.status == 200 and renamed.json()["name"] == "warehouse-2"
    refused = h.patch(f"/api/connections/{cid}", {"url": "postgresql://u:p@127.0.0.1:1/db"}).json()
    assert refused["masked_url"] == "postgresql://127.0.0.1:1/db"
    failed = h.post(f"/api/connections/{cid}/test").json()
    assert failed["ok"] is False and failed["error_type"] == "ConnectionRefused"
    assert "p@" not in json.dumps(failed)
    assert h.delete(f"/api/connections/{cid}").status == 204
    assert h.get(f"/api/connections/{cid}").status == 404
    assert h.delete(f"/api/connections/{cid}").status == 404


def test_a_nul_or_control_character_in_a_connection_name_is_a_422_naming_it(
    world: World,
) -> None:
    h = world.http(world.alice)
    project = world.alice.project.id
    good = {"connection_type": "redis", "url": "redis://127.0.0.1:1/0"}
    created = h.post(f"/api/projects/{project}/connections", {"name": "nul-target", **good})
    assert created.status == 201, created.text
    cid = created.json()["id"]
    for name in ("a\u0000b", "a\u0007b", "two\nlines"):
        for reply in (
            h.post(f"/api/projects/{project}/connections", {"name": name, **good}),
            h.patch(f"/api/connections/{cid}", {"name": name}),
        ):
            assert reply.status == 422, reply.text
            assert [f["field"] for f in reply.json()["fields"]] == ["body.name"]
    config = h.patch(f"/api/connections/{cid}", {"config": {"pool_max_size": "\u0000"}})
    assert config.status == 422, config.text
    assert [f["field"] for f in config.json()["fields"]] == ["body.config.pool_max_size"]
    assert h.get(f"/api/connections/{cid}").json()["name"] == "nul-target"
    assert h.delete(f"/api/connections/{cid}").status == 204


def test_cookie_writes_need_the_request_header(world: World) -> None:
    anon = world.http()
    cookie = {"Cookie": f"wfmon_token={world.alice.token}"}
    e = world.executions["completed"]
    assert anon.get(f"/api/executions/{e}/sync", headers=cookie).status == 200
    r = anon.post(f"/api/executions/{e}/sync", {"immediate": False}, headers=cookie)
    assert r.status == 401 and "x-wfmon-request" in r.json()["message"]
    ok = anon.post(
        f"/api/executions/{e}/sync",
        {"immediate": False},
        headers={**cookie, "X-Wfmon-Request": "1"},
    )
    assert ok.status == 202


# -- cross-user: no leak, no existence oracle ----------------------------------------------


def _alice_connection(world: World) -> str:
    r = world.http(world.alice).post(
        f"/api/projects/{world.alice.project.id}/connections",
        {
            "name": f"cache-{uuid.uuid4().hex[:6]}",
            "connection_type": "redis",
            "url": "redis://:secret@127.0.0.1:6399/0",
        },
    )
    assert r.status == 201, r.text
    return str(r.json()["id"])


def test_another_user_gets_the_same_404_as_for_a_missing_id(world: World) -> None:
    a = world.alice
    conn_id = _alice_connection(world)
    ids = {
        "execution": str(world.executions["failed"]),
        "workflow": str(a.workflow.id),
        "project": str(a.project.id),
        "connection": conn_id,
    }
    missing = str(uuid.uuid4())
    calls: list[tuple[str, str, str, Any]] = [
        ("GET", "/api/executions/{}", "execution", None),
        ("GET", "/api/executions/{}/components", "execution", None),
        ("GET", "/api/executions/{}/sync", "execution", None),
        ("POST", "/api/executions/{}/sync", "execution", {"immediate": True}),
        ("POST", "/api/executions/{}/sync", "execution", {"immediate": False}),
        ("GET", "/api/executions/{}/history", "execution", None),
        ("GET", "/api/workflows/{}", "workflow", None),
        ("GET", "/api/workflows/{}/executions", "workflow", None),
        ("GET", "/api/workflows/{}/statistics", "workflow", None),
        ("GET", "/api/projects/{}", "project", None),
        ("GET", "/api/projects/{}/statistics", "project", None),
        ("GET", "/api/projects/{}/connections", "project", None),
        (
            "POST",
            "/api/projects/{}/connections",
            "project",
            {"name": "steal", "connection_type": "redis", "url": "redis://127.0.0.1:6379/0"},
        ),
        ("GET", "/api/connections/{}", "connection", None),
        ("PATCH", "/api/connections/{}", "connection", {"name": "mine now"}),
        ("POST", "/api/connections/{}/test", "connection", None),
        ("DELETE", "/api/connections/{}", "connection", None),
    ]
    bob = world.http(world.bob)
    for method, path, kind, body in calls:
        theirs = bob.request(method, path.format(ids[kind]), body)
        nothing = bob.request(method, path.format(missing), body)
        assert theirs.status == 404, (method, path, theirs.text)
        assert shape(theirs) == shape(nothing), (method, path)
        assert a.workflow.name not in theirs.text and "secret" not in theirs.text
    # Nothing changed for alice.
    still = world.http(a).get(f"/api/connections/{conn_id}")
    assert still.status == 200 and not still.json()["name"].startswith("mine")
    projects = bob.get("/api/projects").json()
    assert [p["id"] for p in projects] == [str(world.bob.project.id)]
    # Bob's own execution is his alone, and alice cannot see it either.
    assert bob.get(f"/api/executions/{world.executions['bob']}").status == 200
    assert world.http(a).get(f"/api/executions/{world.executions['bob']}").status == 404


# -- the app's own surface ---------------------------------------------------------------------


def test_openapi_shows_the_bearer_and_cookie_schemes(world: World) -> None:
    """/api/docs shows how to authenticate: a bearer token, or the sign-in cookie."""
    spec = world.http().get("/api/openapi.json").json()
    schemes = spec["components"]["securitySchemes"]
    assert schemes["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": schemes["bearer"]["description"],
    }
    assert schemes["cookie"]["type"] == "apiKey"
    assert schemes["cookie"]["in"] == "cookie" and schemes["cookie"]["name"] == "wfmon_token"
    for path, operations in spec["paths"].items():
        for method, op in operations.items():
            assert {"bearer": []} in op.get("security", []), (method, path)
            assert {"cookie": []} in op.get("security", []), (method, path)


def test_openapi_and_json_errors(world: World) -> None:
    anon = world.http()
    spec = anon.get("/api/openapi.json").json()
    assert spec["info"]["title"] == "wfmon"
    for path in (
        "/api/executions/{execution_id}",
        "/api/workflows/{workflow_id}/executions",
        "/api/executions/{execution_id}/history",
        "/api/projects/{project_id}/connections",
        "/api/connections/{connection_id}/test",
    ):
        assert path in spec["paths"], path
    assert anon.get("/api/docs").status == 200
    h = world.http(world.alice)
    r = h.get("/api/executions/not-a-uuid")
    assert r.status == 422 and r.json()["fields"][0]["field"] == "path.execution_id"
    r = h.get("/api/nothing-here")
    assert r.status == 404 and r.json()["error"] == "not_found"
    r = h.request("PUT", f"/api/executions/{world.executions['failed']}")
    assert r.status == 405 and r.json()["error"] == "method_not_allowed"
    r = h.request(
        "POST",
        f"/api/projects/{world.alice.project.id}/connections",
        raw=b"{not json",
        headers={"Content-Type": "application/json"},
    )
    assert r.status == 422


@pytest.mark.parametrize("tab", ["overview", "statistics", "executions"])
def test_pages_render_for_the_owner_only(world: World, tab: str) -> None:
    anon = world.http()
    page = f"/workflows/{world.alice.workflow.id}?tab={tab}"
    r = anon.get(page, headers={"Accept": "text/html"})
    assert r.status == 303 and r.headers["location"].startswith("/signin?next=")
    signin = anon.get(f"/signin?token={world.alice.token}&next=/projects")
    assert signin.status == 303 and "httponly" in signin.headers["set-cookie"].lower()
    assert "samesite=strict" in signin.headers["set-cookie"].lower()
    alice = {"Cookie": f"wfmon_token={world.alice.token}", "Accept": "text/html"}
    r = anon.get(page, headers=alice)
    assert r.status == 200 and world.alice.workflow.name in r.text
    bob = {"Cookie": f"wfmon_token={world.bob.token}", "Accept": "text/html"}
    r = anon.get(page, headers=bob)
    assert r.status == 404 and world.alice.workflow.name not in r.text


def test_execution_page_explains_retries_and_pages_5000_cards(world: World) -> None:
    anon = world.http()
    alice = {"Cookie": f"wfmon_token={world.alice.token}"}
    r = anon.get(f"/executions/{world.executions['failed']}", headers=alice)
    assert r.status == 200
    assert "expected retry" in r.text and "unexpected retry" in r.text
    assert "fail after 3 attempts, 100ms apart: attempt 1 of 3" in r.text
    assert f"/api/executions/{world.executions['failed']}/history" in r.text
    t0 = time.perf_counter()
    big = anon.get(f"/executions/{world.executions['big']}?page=50", headers=alice)
    elapsed = time.perf_counter() - t0
    assert big.status == 200 and big.text.count('class="card ') == 100
    assert "node-04999" in big.text and "Page 50 of 50" in big.text
    assert elapsed < 2.0, f"page 50 of a 5,000-component execution took {elapsed:.2f}s"


def test_a_read_of_an_execution_whose_last_sync_failed_syncs_it_first(world: World) -> None:
    from wfmon.db.executions import mark_history_sync_failed

    execution_id = world.executions["completed"]
    with world.db.as_system() as conn:
        mark_history_sync_failed(conn, execution_id, "worker crashed (test)")
    h = world.http(world.alice)
    d = h.get(f"/api/executions/{execution_id}").json()
    assert d["execution"]["sync"]["synced_now"] is True
    assert d["execution"]["sync"]["status"] == "synced" and d["execution"]["sync"]["error"] is None
    assert (
        h.get(f"/api/executions/{execution_id}?fresh=false").json()["execution"]["sync"][
            "synced_now"
        ]
        is False
    )


def test_a_public_workflow_shares_its_definition_never_its_executions(world: World) -> None:
    from wfmon.db.accounts import create_workflow

    a = world.alice
    with world.db.as_user(a.auth_user_id) as conn:
        public = create_workflow(
            conn,
            project_id=a.project.id,
            created_by=a.user.id,
            name=f"shared-{uuid.uuid4().hex[:6]}",
            definition={"nodes": [{"id": "n"}]},
            visibility="public",
        )
    bob = world.http(world.bob)
    seen = bob.get(f"/api/workflows/{public.id}").json()
    assert seen["visibility"] == "public" and seen["owned"] is False and seen["node_count"] == 1
    assert bob.get(f"/api/workflows/{public.id}/executions").json()["total"] == 0
    assert bob.get(f"/api/workflows/{public.id}/statistics").status == 200
    assert bob.get(f"/api/projects/{a.project.id}").status == 404


def test_the_app_opens_and_closes_its_own_pool(world: World, database_url: str) -> None:
    from pydantic import SecretStr

    from wfmon.api.app import create_app, start_server
    from wfmon.settings import Settings

    settings = Settings(
        database_url=SecretStr(database_url),
        jwt_secret=SecretStr(JWT_SECRET),
        temporal_address=world.settings.temporal_address,
    )
    server = start_server(create_app(settings))
    try:
        r = Http(server.url, world.alice.token).get("/api/projects")
        assert r.status == 200 and r.json()[0]["name"] == world.alice.project.name
    finally:
        server.stop()
    assert not server.thread.is_alive()


def test_statistics_use_the_trend_table_once_it_is_built(world: World) -> None:
    from datetime import UTC, datetime, timedelta

    from wfmon.db.accounts import create_workflow

    a = world.alice
    with world.db.as_user(a.auth_user_id) as conn:
        wf = create_workflow(
            conn,
            project_id=a.project.id,
            created_by=a.user.id,
            name=f"trended-{uuid.uuid4().hex[:6]}",
            definition={},
        )
    h = world.http(a)
    assert h.get(f"/api/workflows/{wf.id}/statistics").json()["stored_trend"] == []
    today = datetime.now(UTC).date()
    with world.db.as_system() as conn:
        for back, runs, failed in ((2, 10, 1), (1, 4, 4), (40, 9, 0)):
            conn.execute(
                "INSERT INTO workflow_daily_trends (workflow_id, day, project_id, runs, "
                "successful_runs, failed_runs, avg_duration_ms) "
                "VALUES (%s, %s, %s, %s, %s, %s, 100)",
                (wf.id, today - timedelta(days=back), a.project.id, runs, runs - failed, failed),
            )
    s = h.get(f"/api/workflows/{wf.id}/statistics").json()
    assert [(p["runs"], p["failures"]) for p in s["stored_trend"]] == [(10, 1), (4, 4)]
    p = h.get(f"/api/projects/{a.project.id}/statistics").json()
    assert sum(t["runs"] for t in p["stored_trend"]) >= 14
    page = world.http().get(
        f"/workflows/{wf.id}?tab=statistics", headers={"Cookie": f"wfmon_token={a.token}"}
    )
    assert "from the statistics tables" in page.text and "10 runs, 1 failed" in page.text
    assert world.http(world.bob).get(f"/api/workflows/{wf.id}/statistics").status == 404


def test_reads_still_answer_while_temporal_is_down(world: World, api_db: Any) -> None:
    from pydantic import SecretStr

    from wfmon.api.app import create_app, start_server
    from wfmon.db.executions import mark_history_sync_failed
    from wfmon.settings import Settings

    dead = "127.0.0.1:1"
    settings = Settings(jwt_secret=SecretStr(JWT_SECRET), temporal_address=dead)
    server = start_server(create_app(settings, db=api_db, temporal_address=dead))
    try:
        h = Http(server.url, world.alice.token)
        closed = h.get(f"/api/executions/{world.executions['failed']}")
        assert closed.status == 200 and closed.json()["execution"]["sync"]["error"] is None
        e = world.executions["terminated"]
        with world.db.as_system() as conn:
            mark_history_sync_failed(conn, e, "lost (test)")
        t0 = time.perf_counter()
        stale = h.get(f"/api/executions/{e}").json()
        assert "lost (test)" in stale["execution"]["sync"]["error"]
        queued = h.post(f"/api/executions/{e}/sync", {"immediate": False})
        assert queued.status == 503 and "Temporal is not reachable" in queued.json()["message"]
        assert time.perf_counter() - t0 < 10
        page = world.http().get(
            f"/executions/{e}", headers={"Cookie": f"wfmon_token={world.alice.token}"}
        )
        assert page.status == 200
        assert h.get(f"/api/executions/{uuid.uuid4()}").status == 404
    finally:
        server.stop()
    # Back on the live app the next read syncs it again.
    fixed = world.http(world.alice).get(f"/api/executions/{e}").json()
    assert fixed["execution"]["sync"]["status"] == "synced"

"""Failure groups end to end: failures run on Temporal, synced, grouped by dbt (the
``failure_group_days`` / ``failure_groups`` models, as the Dagster asset runs them), read
through the API and the pages under row-level security."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import dagster as dg
import pytest

from resources.dbt import WfmonDbtResource
from tests.api.conftest import JWT_SECRET, World
from tests.api.seed import Person, make_person
from tests.api.test_browser import CHROMIUM, shot

FAST = {"interval": "100ms"}


def declined(order: str) -> dict[str, Any]:
    """One node that always fails with a message naming a varying order id and time."""
    return {
        "id": "checkout",
        "name": "checkout",
        "version": 1,
        "nodes": [
            {
                "id": "pay",
                "component": "always-fail",
                "config": {
                    "message": f"payment for order {order} declined at "
                    f"{datetime.now(UTC).isoformat()} (card ending 4{uuid.uuid4().int % 1000:03d})",
                    "error_type": "CardDeclined",
                },
            }
        ],
        "edges": [],
    }


UNREACHABLE: dict[str, Any] = {
    "id": "checkout",
    "name": "checkout",
    "version": 1,
    "nodes": [
        {
            "id": "pay",
            "component": "always-fail",
            "config": {"message": "payment gateway unreachable", "error_type": "GatewayError"},
        }
    ],
    "edges": [],
}

FLAKY: dict[str, Any] = {
    "id": "checkout",
    "name": "checkout",
    "version": 1,
    "nodes": [
        {
            "id": "reserve",
            "component": "flaky",
            "config": {"fail_times": 5, "error_type": "StockBusy"},
            "retry_policy": {"strategy": "fail_after_attempts", "max_attempts": 2, **FAST},
        }
    ],
    "edges": [],
}


@pytest.fixture(scope="module")
def dbt(database_url: str) -> Iterator[WfmonDbtResource]:
    resource = WfmonDbtResource(database_url=database_url)
    try:
        yield resource
    finally:
        resource.teardown_after_execution(dg.build_init_resource_context())


def build_groups(dbt: WfmonDbtResource, *, full_recompute: bool = False) -> None:
    """``dbt build`` of the failure models (merge + their tests), as the asset does."""
    more = ["--vars", '{"full_recompute": true}'] if full_recompute else []
    invocation = dbt.cli(["build", "--select", "+failure_groups", *more])
    invocation.wait()
    assert invocation.is_successful()


@pytest.fixture(scope="module")
def carol(world: World, dbt: WfmonDbtResource) -> Person:
    carol = make_person(world.db, "carol", JWT_SECRET, declined("x"))
    for definition in [declined(str(uuid.uuid4())) for _ in range(3)] + [UNREACHABLE, FLAKY]:
        world.sync(world.run(carol, definition))
    build_groups(dbt)
    return carol


def groups_by_node(reply: Any) -> dict[tuple[str, str], dict[str, Any]]:
    return {(g["node_id"], g["failure_type"]): g for g in reply["groups"]}


def test_failures_with_varying_ids_share_one_group(world: World, carol: Person) -> None:
    h = world.http(carol)
    reply = h.get(f"/api/workflows/{carol.workflow.id}/failure-groups").json()
    assert reply["built_at"] is not None
    groups = groups_by_node(reply)
    assert set(groups) == {
        ("pay", "CardDeclined"),
        ("pay", "GatewayError"),
        ("reserve", "StockBusy"),
    }
    card = groups[("pay", "CardDeclined")]
    assert card["failures"] == 3 and card["executions"] == 3
    assert card["fingerprint"] == (
        "CardDeclined: payment for order <uuid> declined at <time> (card ending <n>)"
    )
    assert card["latest_execution_id"] and "declined" in card["latest_message"]
    assert card["retries"] == "none" and card["per_day"][-1] == 3 and len(card["per_day"]) == 14
    assert groups[("pay", "GatewayError")]["failures"] == 1
    stock = groups[("reserve", "StockBusy")]
    assert stock["failures"] == 1 and stock["retried_failures"] == 1
    example = h.get(f"/api/executions/{card['latest_execution_id']}")
    assert example.status == 200


def test_project_groups_sort_newest_or_biggest(world: World, carol: Person) -> None:
    h = world.http(carol)
    base = f"/api/projects/{carol.project.id}/failure-groups"
    biggest = h.get(f"{base}?sort=biggest").json()["groups"]
    assert [g["failures"] for g in biggest] == sorted(
        (g["failures"] for g in biggest), reverse=True
    )
    assert biggest[0]["failure_type"] == "CardDeclined"
    newest = h.get(base).json()
    assert newest["sort"] == "newest"
    seen = [g["last_seen"] for g in newest["groups"]]
    assert seen == sorted(seen, reverse=True) and newest["groups"][0]["node_id"] == "reserve"
    bad = h.get(f"{base}?sort=oldest")
    assert bad.status == 422 and "sort" in bad.text


def test_an_incremental_build_adds_new_failures_to_their_group(
    world: World, carol: Person, dbt: WfmonDbtResource
) -> None:
    h = world.http(carol)
    url = f"/api/workflows/{carol.workflow.id}/failure-groups"
    before = groups_by_node(h.get(url).json())[("pay", "CardDeclined")]
    latest = world.sync(world.run(carol, declined(str(uuid.uuid4()))))
    build_groups(dbt)
    after = groups_by_node(h.get(url).json())[("pay", "CardDeclined")]
    assert after["failures"] == before["failures"] + 1
    assert after["latest_execution_id"] == str(latest)
    assert after["first_seen"] == before["first_seen"]


#: The failures tables dbt builds.
TABLES = ("failure_group_days", "failure_groups")


def _figures(world: World, table: str, workflow_id: Any) -> list[tuple[Any, ...]]:
    """Every row of a failures table for one workflow, without ``updated_at``."""
    with world.db.as_system() as conn:
        rows = conn.execute(
            f"SELECT * FROM {table} WHERE workflow_id = %s", (workflow_id,)
        ).fetchall()
    return sorted(tuple(v for k, v in r.items() if k != "updated_at") for r in rows)


def test_an_incremental_build_gives_the_rows_of_a_full_recompute(
    world: World, carol: Person, dbt: WfmonDbtResource
) -> None:
    """The incremental build looks up the failures' attempts one by one (the full build
    joins them all): both give the same days and groups, failure types from the
    attempts included."""
    # A retried failure (its type comes from an attempt); the pages' counts stay as the
    # tests below expect (CardDeclined stays the biggest group).
    world.sync(world.run(carol, FLAKY))
    build_groups(dbt)
    incremental = {t: _figures(world, t, carol.workflow.id) for t in TABLES}
    stock = [r for r in incremental["failure_groups"] if "StockBusy" in r]
    assert stock, incremental["failure_groups"]
    build_groups(dbt, full_recompute=True)
    assert {t: _figures(world, t, carol.workflow.id) for t in TABLES} == incremental


def test_another_user_never_sees_the_groups(world: World, carol: Person) -> None:
    bob = world.http(world.bob)
    assert bob.get(f"/api/projects/{carol.project.id}/failure-groups").status == 404
    assert bob.get(f"/api/workflows/{carol.workflow.id}/failure-groups").status == 404
    assert (
        bob.get(f"/projects/{carol.project.id}/failures", headers={"Accept": "text/html"}).status
        == 404
    )
    mine = bob.get(f"/api/projects/{world.bob.project.id}/failure-groups").json()
    assert all(g["workflow_id"] != str(carol.workflow.id) for g in mine["groups"])
    assert world.http().get(f"/api/projects/{carol.project.id}/failure-groups").status == 401


def test_bad_ids_are_4xx(world: World, carol: Person) -> None:
    h = world.http(carol)
    assert h.get("/api/projects/not-a-uuid/failure-groups").status == 422
    assert h.get(f"/api/workflows/{uuid.uuid4()}/failure-groups").status == 404
    base = f"/api/projects/{carol.project.id}/failure-groups"
    for bad in ("page_size=0", "page_size=201", "page=0", "page=x", "workflow_id=nope"):
        reply = h.get(f"{base}?{bad}")
        assert reply.status == 422 and bad.split("=")[0] in reply.text, bad
    assert len(h.get(f"{base}?page_size=1").json()["groups"]) == 1


def test_pages_of_groups_with_the_total(world: World, carol: Person) -> None:
    h = world.http(carol)
    for base in (
        f"/api/projects/{carol.project.id}/failure-groups?sort=biggest",
        f"/api/workflows/{carol.workflow.id}/failure-groups?sort=biggest",
        f"/api/projects/{carol.project.id}/failure-groups?sort=biggest"
        f"&workflow_id={carol.workflow.id}",
    ):
        everything = h.get(base).json()
        first = h.get(f"{base}&page_size=2").json()
        second = h.get(f"{base}&page_size=2&page=2").json()
        assert (first["total"], first["pages"], first["page"]) == (3, 2, 1)
        assert (second["total"], second["pages"], second["page"]) == (3, 2, 2)
        keys = [(g["node_id"], g["fingerprint"]) for g in first["groups"] + second["groups"]]
        assert keys == [(g["node_id"], g["fingerprint"]) for g in everything["groups"]]
        assert [w["groups"] for w in everything["workflows"]] == [3]
        past = h.get(f"{base}&page_size=2&page=3")
        assert past.status == 422 and "page 3 is out of range" in past.text, past.text
        assert "last page is 2" in past.text
    # The page takes the same parameters and says the same.
    page = h.get(
        f"/projects/{carol.project.id}/failures?sort=biggest&page_size=2&page=2",
        headers={"Accept": "text/html"},
    )
    assert page.status == 200 and "Groups 3\N{EN DASH}3 of 3" in page.text
    assert 'rel="prev"' in page.text and 'rel="next"' not in page.text
    past = h.get(f"/projects/{carol.project.id}/failures?page=9", headers={"Accept": "text/html"})
    assert past.status == 422 and "out of range" in past.text


def test_the_workflow_filter_only_takes_the_projects_workflows(world: World, carol: Person) -> None:
    h = world.http(carol)
    base = f"/api/projects/{carol.project.id}/failure-groups"
    # Bob's workflow: carol cannot read it, so it is not found (whether it exists or not).
    assert h.get(f"{base}?workflow_id={world.bob.workflow.id}").status == 404
    assert h.get(f"{base}?workflow_id={uuid.uuid4()}").status == 404
    # Bob filtering his own project by carol's workflow learns nothing about her groups.
    bob = world.http(world.bob)
    mine = f"/api/projects/{world.bob.project.id}/failure-groups"
    assert bob.get(f"{mine}?workflow_id={carol.workflow.id}").status == 404


@pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Chromium")
def test_failure_groups_page(browser: Any, world: World, carol: Person) -> None:
    context = browser.new_context(viewport={"width": 1366, "height": 700}, base_url=world.url)
    context.set_default_timeout(15_000)
    page = context.new_page()
    try:
        page.goto("/signin")
        page.get_by_label("Access token").fill(carol.token)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url("**/projects")
        page.goto(f"/projects/{carol.project.id}")
        page.get_by_role("link", name="Failure groups").click()
        page.wait_for_url("**/failures")
        rows = page.locator("tr.failure-group")
        assert rows.count() == 3
        assert "last built" in page.locator("#built-at").inner_text()
        assert page.locator("tr.failure-group svg.sparkline path").count() >= 3
        page.get_by_role("link", name="biggest first").click()
        page.wait_for_url("**sort=biggest")
        assert rows.first.get_attribute("data-failures") == "4"
        shot(page, "failure-groups", doc=True)
        page.goto(f"/projects/{carol.project.id}/failures?sort=biggest&page_size=2")
        assert rows.count() == 2 and "of 3" in page.locator(".page-info").first.inner_text()
        page.get_by_role("link", name="Next →").first.click()
        page.wait_for_url("**page=2")
        assert rows.count() == 1 and "page_size=2" in page.url
        page.select_option("#f-workflow", str(carol.workflow.id))
        page.get_by_role("button", name="Show").click()
        page.wait_for_url(f"**workflow_id={carol.workflow.id}**")
        assert rows.count() == 2  # page 1 again, the page size kept
        page.goto(f"/projects/{carol.project.id}/failures?sort=biggest")
        rows.first.locator("a.example").click()
        page.wait_for_url("**/executions/**")
        page.goto(f"/workflows/{carol.workflow.id}")
        page.get_by_role("link", name="Failure groups").click()
        page.wait_for_url(f"**/workflows/{carol.workflow.id}/failures")
        assert rows.count() == 3
    finally:
        context.close()

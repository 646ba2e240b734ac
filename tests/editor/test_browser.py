"""The node panel, versions and run form in Chromium (Debian's, via Playwright).

One browser for the module; each test has its own context signed in by the cookie the
sign-in page sets. Screenshots for the user guide: ``WFMON_UPDATE_DOC_IMAGES=1`` copies
them to docs/images (node-panel*.png).
"""

from __future__ import annotations

import copy
import re
from typing import Any

from tests.api.seed import Person
from tests.browser import open_context, requires_browser, shot
from tests.editor.conftest import ALICE_FLOW, EditorWorld

pytestmark = requires_browser


def signed_in(browser: Any, world: EditorWorld, who: Person) -> Any:
    return open_context(browser, world.url, token=who.token, width=1280, height=900)


def save(panel: Any) -> str:
    """Click Save and return the status once the answer is shown (fails with the errors)."""
    panel.get_by_role("button", name="Save as a new version").click()
    status = panel.locator("#np-status")
    status.locator(".ok:has-text('Saved version'), .error").first.wait_for()
    text: str = status.inner_text()
    assert text.startswith("Saved version"), text
    return text


def new_workflow(world: EditorWorld, name: str) -> str:
    flow = copy.deepcopy(ALICE_FLOW)
    reply = world.http(world.alice).post(
        "/api/workflows",
        {"project_id": str(world.alice.project.id), "name": name, "definition": flow},
    )
    assert reply.status == 201, reply.text
    return str(reply.json()["workflow"]["id"])


def test_edit_retry_policy_save_compare_and_run(browser: Any, editor_world: EditorWorld) -> None:
    wid = new_workflow(editor_world, "ed browser flow")
    context = signed_in(browser, editor_world, editor_world.alice)
    page = context.new_page()
    try:
        page.goto(f"/workflows/{wid}")
        panel = page.locator("#node-panel")
        # The graph selects the node (its event contract); the panel opens it.
        page.locator('#wfmon-graph g.gnode[data-node="shape"]').click()
        page.wait_for_function(
            "document.querySelector('#np-node').value === 'shape'"
            " && document.querySelector('#np-sentence').textContent.length > 0"
        )
        assert panel.locator("#np-sentence").inner_text() == "fail after 2 attempts, 100ms apart"

        panel.get_by_label("Strategy").select_option("exponential_backoff")
        # Only the chosen strategy's settings are shown.
        assert panel.get_by_label("First wait").is_visible()
        assert panel.get_by_label("Interval between attempts").count() == 0
        panel.get_by_label("First wait").fill("soon")
        error = panel.locator('[data-error-for="retry_policy.initial_interval"]')
        error.wait_for(state="visible")
        assert "not a duration" in error.inner_text()
        panel.get_by_label("First wait").fill("2s")
        panel.get_by_label("Attempts in total (0 = unlimited)").fill("4")
        expected = "fail after 4 attempts, waiting 2s then x2 per retry, at most 1m40s"
        page.wait_for_function(
            f"document.querySelector('#np-sentence').textContent === {expected!r}"
        )
        assert error.is_hidden()
        shot(page.locator("#node-panel"), "node-panel", doc=True)
        # Trying another strategy and coming back loses nothing typed; a setting both
        # strategies have (attempts in total) carries over.
        panel.get_by_label("Strategy").select_option("fail_after_attempts")
        attempts = panel.get_by_label("Attempts in total (the first run counts)")
        assert attempts.input_value() == "4"
        assert panel.get_by_label("Interval between attempts").input_value() == "100ms"
        panel.get_by_label("Strategy").select_option("exponential_backoff")
        assert panel.get_by_label("First wait").input_value() == "2s"
        page.wait_for_function(
            f"document.querySelector('#np-sentence').textContent === {expected!r}"
        )

        save(panel)
        assert panel.locator("#np-status").inner_text() == "Saved version 2."
        # The page's plain node list follows the saved version without a reload.
        assert "exponential_backoff" in page.locator("ol.nodes li", has_text="shape").inner_text()
        assert page.locator("h1 .muted").inner_text().startswith("v2 ")
        versions = page.locator("#versions-table tbody")
        versions.locator('tr[data-version="2"]').wait_for()
        assert "current" in versions.locator('tr[data-version="2"]').inner_text()

        page.get_by_role("button", name="Show changes").click()
        diff = page.locator("#versions-diff")
        diff.get_by_text("retry_policy.strategy").wait_for()
        assert '"exponential_backoff"' in diff.inner_text()
        shot(page.locator("#versions"), "node-panel-versions", doc=True)

        # A cycle is refused, naming the nodes, and nothing is saved.
        panel.get_by_label("Other node").select_option("fetch")
        panel.get_by_role("button", name="Add edge from this node").click()
        panel.get_by_role("button", name="Save as a new version").click()
        problems = panel.locator(".np-problems")
        problems.wait_for()
        assert re.search(r"cycle through nodes \['fetch', 'shape'\]", problems.inner_text())
        assert versions.locator("tr").count() == 2

        # Run the current version: its execution page opens (the run itself is followed
        # live there; tests/editor/test_api.py checks it completes at this version).
        page.get_by_label("Input (JSON)").fill("{not json")
        page.get_by_role("button", name="Run the current version").click()
        assert "not valid JSON" in page.locator("#run-error").inner_text()
        page.get_by_label("Input (JSON)").fill('{"order": 7}')
        page.get_by_role("button", name="Run the current version").click()
        page.wait_for_url(re.compile(r"/executions/[0-9a-f-]{36}$"))
        status = page.locator(".exec-head").get_attribute("data-status")
        assert status in ("running", "completed"), status
        assert page.get_by_role("link", name="ed browser flow").count() >= 1
    finally:
        context.close()


def test_component_settings_connections_and_code(browser: Any, editor_world: EditorWorld) -> None:
    wid = new_workflow(editor_world, "ed browser components")
    context = signed_in(browser, editor_world, editor_world.alice)
    page = context.new_page()
    try:
        page.goto(f"/workflows/{wid}")
        panel = page.locator("#node-panel")
        page.wait_for_function("document.querySelector('#np-node').value === 'fetch'")
        panel.get_by_role("button", name="Add a node").click()
        panel.get_by_label("New node id").fill("lookup")
        panel.locator("#np-new-component").select_option("postgresql-query")
        panel.get_by_role("button", name="Add", exact=True).click()
        # Only this project's PostgreSQL connections, by name: never a URL.
        options = panel.get_by_label("Connection").locator("option").all_inner_texts()
        assert options[1:] == ["pg (postgresql)"], options
        html = page.content()
        assert "secret-pw" not in html and "bob-pw" not in html and "127.0.0.1:5" not in html
        panel.get_by_label("Connection").select_option(label="pg (postgresql)")
        panel.get_by_label("Other node").select_option("fetch")
        panel.get_by_role("button", name="Add edge into this node").click()
        panel.get_by_label(re.compile("^SQL")).fill("SELECT $1::int AS rows")
        panel.get_by_label("$1 from").select_option("upstream:fetch")
        panel.get_by_label("$1 path or value").fill("rows")
        save(panel)
        saved = editor_world.http(editor_world.alice).get(f"/api/workflows/{wid}/editor").json()
        node = next(n for n in saved["definition"]["nodes"] if n["id"] == "lookup")
        assert node["connection_id"] == editor_world.connections["pg"]
        assert node["config"] == {
            "sql": "SELECT $1::int AS rows",
            "params": [{"path": "upstream.fetch.rows"}],
        }
        shot(page.locator("#node-panel"), "node-panel-postgresql", doc=True)

        panel.get_by_role("button", name="Add a node").click()
        panel.get_by_label("New node id").fill("store")
        panel.locator("#np-new-component").select_option("redis-command")
        panel.get_by_role("button", name="Add", exact=True).click()
        options = panel.get_by_label("Connection").locator("option").all_inner_texts()
        assert options[1:] == ["cache (redis)"], options
        panel.get_by_label("Connection").select_option(label="cache (redis)")
        panel.get_by_label("Command").select_option("SET")
        panel.get_by_label("Key", exact=True).fill("rows:{workflow.order}")
        panel.get_by_label("Value", exact=True).fill("{upstream.fetch.rows}")
        save(panel)
        saved = editor_world.http(editor_world.alice).get(f"/api/workflows/{wid}/editor").json()
        store = next(n for n in saved["definition"]["nodes"] if n["id"] == "store")
        assert store["config"]["args"] == [
            {"template": "rows:{workflow.order}"},
            {"path": "upstream.fetch.rows"},
        ]

        panel.get_by_role("button", name="Add a node").click()
        panel.get_by_label("New node id").fill("cached")
        panel.locator("#np-new-component").select_option("cache-aside")
        panel.get_by_role("button", name="Add", exact=True).click()
        panel.get_by_label("Cache (Redis connection)").select_option(label="cache (redis)")
        panel.get_by_label("Wrapped component", exact=True).select_option("postgresql-query")
        wrapped_conn = panel.get_by_label("Wrapped component's connection")
        assert wrapped_conn.locator("option").all_inner_texts()[1:] == ["pg (postgresql)"]
        wrapped_conn.select_option(label="pg (postgresql)")
        panel.get_by_label("Wrapped component's settings (JSON)").fill('{"sql": "SELECT 1"}')
        panel.get_by_label("Cache key").fill("rows:{workflow.order}")
        panel.get_by_label("Time to live (seconds)").fill("60")
        save(panel)
        saved = editor_world.http(editor_world.alice).get(f"/api/workflows/{wid}/editor").json()
        cached = next(n for n in saved["definition"]["nodes"] if n["id"] == "cached")
        assert cached["connection_id"] == editor_world.connections["cache"]
        assert cached["config"] == {
            "key": "rows:{workflow.order}",
            "ttl_seconds": 60,
            "wrapped": {
                "component": "postgresql-query",
                "connection_id": editor_world.connections["pg"],
                "config": {"sql": "SELECT 1"},
            },
        }

        panel.get_by_role("button", name="Add a node").click()
        panel.get_by_label("New node id").fill("shape_ts")
        panel.locator("#np-new-component").select_option("typescript-processor")
        panel.get_by_role("button", name="Add", exact=True).click()
        editor = panel.locator("#np-code .cm-editor")
        editor.wait_for()
        assert panel.locator("#np-code .cm-lineNumbers").is_visible()
        # Syntax highlighting: the keywords get their own styled spans.
        assert panel.locator("#np-code .cm-content span").count() > 3
        panel.locator("#np-code .cm-content").click()
        page.keyboard.press("Control+End")
        page.keyboard.type("// done")
        shot(page.locator("#node-panel"), "node-panel-typescript", doc=True)
        save(panel)
        saved = editor_world.http(editor_world.alice).get(f"/api/workflows/{wid}/editor").json()
        code = next(n for n in saved["definition"]["nodes"] if n["id"] == "shape_ts")["config"][
            "code"
        ]
        assert code.rstrip().endswith("// done")
    finally:
        context.close()


def test_other_users_cannot_edit_or_run(browser: Any, editor_world: EditorWorld) -> None:
    bob = signed_in(browser, editor_world, editor_world.bob)
    alice = signed_in(browser, editor_world, editor_world.alice)
    try:
        page = bob.new_page()
        reply = page.goto(f"/workflows/{editor_world.alice.workflow.id}")
        assert reply is not None and reply.status == 404
        assert page.locator("#node-panel").count() == 0
        # A public workflow of someone else: readable with its versions, no panel, no run.
        page = alice.new_page()
        page.goto(f"/workflows/{editor_world.bobs_public}")
        page.locator('#versions-table tr[data-version="1"]').wait_for()
        assert page.locator("#node-panel").count() == 0
        assert page.locator("#run-form").count() == 0
    finally:
        bob.close()
        alice.close()

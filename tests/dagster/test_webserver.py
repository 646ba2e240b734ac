"""``dagster-webserver`` on dagster-postgres storage: started by PID on a free port, its
GraphQL lists wfmon's assets with their lineage, then it is stopped and leaves nothing."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from wfmon.dev.process import free_port, pid_alive, spawn
from wfmon.dev.services import Endpoints
from wfmon_defs.instance import (
    PROJECT_ROOT,
    dagster_environment,
    session_members,
    stop_dagster,
    wait_for_webserver,
    webserver_command,
    write_instance,
)

pytestmark = pytest.mark.timeout(180)

QUERY = """
{
  assetNodes {
    assetKey { path }
    groupName
    isPartitioned
    dependencyKeys { path }
    assetChecksOrError { ... on AssetChecks { checks { name } } }
  }
}
"""


@pytest.fixture
def webserver(tmp_path: Path, endpoints: Endpoints, database_url: str) -> Iterator[str]:
    home = tmp_path / "dagster-home"
    write_instance(home, endpoints.dagster_database_url)
    env = dagster_environment(home)
    env.update(
        WFMON_DATABASE_URL=database_url,
        WFMON_TEMPORAL_ADDRESS=endpoints.temporal_address,
    )
    port = free_port()
    log = tmp_path / "webserver.log"
    pid = spawn(webserver_command(port=port), log, env=env, cwd=PROJECT_ROOT)
    url = f"http://127.0.0.1:{port}"
    try:
        try:
            wait_for_webserver(url, timeout=120, pid=pid)
        except (TimeoutError, RuntimeError):
            raise AssertionError(log.read_text()[-4000:]) from None
        yield url
    finally:
        stop_dagster(pid, grace=20)
        assert not pid_alive(pid)
        assert session_members(pid) == [], "processes left in the webserver's session"


def graphql(url: str, query: str) -> dict[str, Any]:
    request = urllib.request.Request(
        f"{url}/graphql",
        data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        body: dict[str, Any] = json.loads(response.read())
    assert "errors" not in body, body
    data: dict[str, Any] = body["data"]
    return data


def test_webserver_graphql_lists_assets_and_lineage(webserver: str) -> None:
    nodes = {"/".join(n["assetKey"]["path"]): n for n in graphql(webserver, QUERY)["assetNodes"]}
    deps = {k: {"/".join(d["path"]) for d in n["dependencyKeys"]} for k, n in nodes.items()}
    assert deps["workflow_executions"] == {"discovered_executions"}
    assert deps["component_executions"] == {"discovered_executions"}
    assert {"workflow_executions", "component_executions"} <= deps["workflow_statistics"]
    assert "workflow_executions" in deps["workflow_daily_trends"]
    assert nodes["workflow_executions"]["isPartitioned"] is True
    assert nodes["project_statistics"]["groupName"] == "statistics"
    assert nodes["component_daily_trends"]["groupName"] == "trends"
    checks = {c["name"] for c in nodes["workflow_executions"]["assetChecksOrError"]["checks"]}
    assert "every_closed_execution_synced" in checks

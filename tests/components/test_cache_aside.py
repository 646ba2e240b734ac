"""cache-aside end to end: miss then hit, a Redis outage falling through to the wrapped
component, and a wrapped failure raised unchanged."""

from __future__ import annotations

import uuid
from typing import Any

import redis

from tests.components.conftest import Runner, World, node
from wfmon.connections import Keyring
from wfmon.db import Database
from wfmon.dev.process import free_port
from wfmon.dev.services import Endpoints


def _cached(world: World, key_suffix: str, connection: str | None = None) -> dict[str, Any]:
    return node(
        "cached",
        "cache-aside",
        {
            "key": "item:{workflow.id}:" + key_suffix,
            "ttl_seconds": 60,
            "wrapped": {
                "component": "postgresql-query",
                "config": {
                    "sql": "SELECT id, name FROM items WHERE id = $1",
                    "params": [{"path": "workflow.id"}],
                },
                "connection_id": world.pg,
            },
        },
        connection or world.redis,
    )


def test_miss_then_hit_with_ttl(run_nodes: Runner, world: World, endpoints: Endpoints) -> None:
    suffix = uuid.uuid4().hex[:8]
    first = run_nodes([_cached(world, suffix)], workflow_input={"id": 2})
    second = run_nodes([_cached(world, suffix)], workflow_input={"id": 2})
    miss, hit = first.output("cached"), second.output("cached")
    assert miss["cache"] == "miss" and hit["cache"] == "hit"
    assert miss["key"] == hit["key"] == f"item:2:{suffix}"
    assert miss["value"] == hit["value"]
    assert hit["value"]["rows"] == [{"id": 2, "name": "pear"}]
    client = redis.Redis.from_url(endpoints.redis_url)
    try:
        ttl: Any = client.ttl(f"item:2:{suffix}")
        assert 0 < ttl <= 60
        # A value that is not JSON counts as a miss and is overwritten.
        client.set(f"item:2:{suffix}", b"\xff not json")
    finally:
        client.close()
    third = run_nodes([_cached(world, suffix)], workflow_input={"id": 2})
    assert third.output("cached")["cache"] == "miss"


def test_redis_outage_falls_through(
    run_nodes: Runner, world: World, db: Database, component_keyring: Keyring
) -> None:
    down = world.add_connection(
        db, component_keyring, "cache-down", "redis", f"redis://127.0.0.1:{free_port()}/0"
    )
    out = run_nodes([_cached(world, "outage", down)], workflow_input={"id": 1})
    result = out.output("cached")
    assert result["cache"] == "unavailable" and result["cache_error"] == "ConnectionRefused"
    assert result["value"]["rows"] == [{"id": 1, "name": "apple"}]
    assert out.attempts == {"cached": 1}


def test_wrapped_failure_is_raised_and_config_checked(run_nodes: Runner, world: World) -> None:
    bad = _cached(world, uuid.uuid4().hex)
    bad["config"]["wrapped"]["config"] = {"sql": "SELECT nope FROM items"}
    out = run_nodes([bad], workflow_input={"id": 1})
    assert out.error is not None and out.error.type == "SqlError"
    assert out.attempts == {"cached": 1}
    loop = _cached(world, "x")
    loop["config"]["wrapped"] = {"component": "cache-aside"}
    out = run_nodes([loop], workflow_input={"id": 1})
    assert out.error is not None and "cannot wrap cache-aside" in out.error.message
    missing = _cached(world, "x")
    missing["config"]["key"] = "item:{workflow.nope}"
    out = run_nodes([missing], workflow_input={"id": 1})
    assert out.error is not None and out.error.type == "TransformError"


def test_wraps_typescript(run_nodes: Runner, world: World) -> None:
    suffix = uuid.uuid4().hex[:8]
    cached = node(
        "ts",
        "cache-aside",
        {
            "key": "ts:" + suffix + ":{workflow.n}",
            "wrapped": {
                "component": "typescript-processor",
                "config": {"code": "export default (d: any) => d.workflow.n ** 2"},
            },
        },
        world.redis,
    )
    assert run_nodes([cached], workflow_input={"n": 7}).output("ts")["value"] == 49
    assert run_nodes([cached], workflow_input={"n": 7}).output("ts")["cache"] == "hit"

"""redis-command end to end, including a transient outage retried under the node's
policy (a redis-server of the test's own, stopped then started again)."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.components.conftest import Runner, World, node
from wfmon.connections import Keyring, NetworkPolicy
from wfmon.db import Database
from wfmon.dev import redis as dev_redis
from wfmon.dev.process import free_port


def test_commands_values_and_ttl(run_nodes: Runner, world: World) -> None:
    binary = bytes([0, 255, 1, 128])
    key = "rc:test"
    out = run_nodes(
        [
            node(
                "set",
                "redis-command",
                {
                    "command": "set",
                    "args": [key, {"path": "workflow.value"}, "EX", 60],
                },
                world.redis,
            ),
            node("get", "redis-command", {"command": "GET", "args": [key]}, world.redis),
            node("ttl", "redis-command", {"command": "TTL", "args": [key]}, world.redis),
            node(
                "nx", "redis-command", {"command": "SET", "args": [key, "other", "NX"]}, world.redis
            ),
            node(
                "empty", "redis-command", {"command": "SET", "args": ["rc:empty", ""]}, world.redis
            ),
            node(
                "get_empty", "redis-command", {"command": "GET", "args": ["rc:empty"]}, world.redis
            ),
            node(
                "bin_set",
                "redis-command",
                {
                    "command": "SET",
                    "args": ["rc:bin", {"base64": base64.b64encode(binary).decode()}],
                },
                world.redis,
            ),
            node("bin_get", "redis-command", {"command": "GET", "args": ["rc:bin"]}, world.redis),
            node(
                "hset",
                "redis-command",
                {
                    "command": "HSET",
                    "args": ["rc:h", "a", 1, "b", {"value": {"x": [1]}}],
                },
                world.redis,
            ),
            node("hgetall", "redis-command", {"command": "HGETALL", "args": ["rc:h"]}, world.redis),
            node("missing", "redis-command", {"command": "GET", "args": ["rc:nope"]}, world.redis),
        ],
        edges=[
            {"source": "set", "target": "get"},
            {"source": "set", "target": "ttl"},
            {"source": "set", "target": "nx"},
            {"source": "empty", "target": "get_empty"},
            {"source": "bin_set", "target": "bin_get"},
            {"source": "hset", "target": "hgetall"},
        ],
        workflow_input={"value": "héllo"},
    )
    assert out.output("set") == {"result": True}
    assert out.output("get") == {"result": "héllo"}
    assert 0 < out.output("ttl")["result"] <= 60
    assert out.output("nx") == {"result": None}
    assert out.output("get_empty") == {"result": ""}
    assert out.output("bin_get") == {"result": {"base64": base64.b64encode(binary).decode()}}
    assert out.output("hgetall") == {"result": {"a": "1", "b": '{"x":[1]}'}}
    assert out.output("missing") == {"result": None}


@pytest.mark.parametrize("command", ["FLUSHALL", "CONFIG", "EVAL", "KEYS", "SHUTDOWN"])
def test_commands_outside_the_allowlist_fail_permanently(
    run_nodes: Runner, world: World, command: str
) -> None:
    out = run_nodes([node("x", "redis-command", {"command": command, "args": ["*"]}, world.redis)])
    assert out.error is not None and out.error.type == "RedisCommandNotAllowed"
    assert out.error.non_retryable and out.attempts == {"x": 1}


def test_wrong_type_is_permanent_and_arity_checked(run_nodes: Runner, world: World) -> None:
    out = run_nodes(
        [
            node(
                "lpush",
                "redis-command",
                {"command": "LPUSH", "args": ["rc:list", "a"]},
                world.redis,
            ),
        ]
    )
    assert out.error is None
    wrong = run_nodes(
        [node("w", "redis-command", {"command": "GET", "args": ["rc:list"]}, world.redis)]
    )
    assert wrong.error is not None and wrong.error.type == "RedisError"
    assert "WRONGTYPE" in wrong.error.message and wrong.attempts == {"w": 1}
    arity = run_nodes([node("a", "redis-command", {"command": "GET", "args": []}, world.redis)])
    assert arity.error is not None and "GET takes 1 argument(s), got 0" in arity.error.message


def test_policy_denies_loopback_by_default(run_nodes: Runner, world: World) -> None:
    out = run_nodes(
        [node("p", "redis-command", {"command": "PING"}, world.redis)], policy=NetworkPolicy()
    )
    assert out.error is not None and out.error.type == "HostNotAllowed"
    assert out.attempts == {"p": 1}


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[tuple[Path, int, list[int]]]:
    """A redis-server of this test's own; every PID it ever had is stopped at the end."""
    port = free_port()
    pids = [dev_redis.start(tmp_path / "redis", port)]
    yield tmp_path / "redis", port, pids
    for pid in pids:
        dev_redis.stop(pid)


def test_outage_is_retried_then_succeeds(
    run_nodes: Runner,
    world: World,
    db: Database,
    component_keyring: Keyring,
    own_redis: tuple[Path, int, list[int]],
) -> None:
    root, port, pids = own_redis
    conn_id = world.add_connection(
        db, component_keyring, f"flaky-{port}", "redis", f"redis://127.0.0.1:{port}/0"
    )
    dev_redis.stop(pids[0])  # Redis is down when the node first runs

    async def restart_after_first_attempt(handle: Any) -> None:
        await asyncio.sleep(0.6)
        pids.append(await asyncio.to_thread(dev_redis.start, root, port))

    out = run_nodes(
        [
            node(
                "inc",
                "redis-command",
                {"command": "INCR", "args": ["rc:counter"]},
                conn_id,
                attempts=4,
                interval="1s",
            )
        ],
        during=restart_after_first_attempt,
    )
    assert out.error is None, out.error
    assert out.output("inc") == {"result": 1}
    assert out.attempts["inc"] >= 2  # the first attempt met the outage and was retried
    assert f"127.0.0.1:{port}" not in out.history_json


def test_outage_exhausts_policy_with_retryable_type(
    run_nodes: Runner, world: World, db: Database, component_keyring: Keyring
) -> None:
    conn_id = world.add_connection(
        db, component_keyring, "down", "redis", f"redis://127.0.0.1:{free_port()}/0"
    )
    out = run_nodes(
        [node("d", "redis-command", {"command": "PING"}, conn_id, attempts=2, interval="1s")]
    )
    assert out.error is not None and out.error.type == "ConnectionRefused"
    assert not out.error.non_retryable and out.attempts == {"d": 2}

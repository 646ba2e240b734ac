"""Component overhead, and TypeScript processor cold vs warm latency.

For ``postgresql-query`` and ``redis-command``, the same operation three ways in one run:

- direct: an already-open client (psycopg ``AsyncConnection`` / ``redis.asyncio``);
- activity: the component's activity body in a real activity context (connection
  resolved from the cache, pooled client, JSON-safe conversion);
- node: a one-node builder workflow on the Temporal dev server, start to result.

Ratios are against direct, measured in interleaved pairs (one direct call, then one
activity call, repeated) so that load from other processes hits both sides alike: at
~0.1 ms per direct call, separate loops of each varied the ratio from 5x to 9x between
runs of the same code. The ratio is the median of the per-pair ratios.

TypeScript: cold = code never seen before (script directory written, Deno transpiles),
warm = the same code again; the floor is ``deno run`` of an empty script. Medians.
"""

from __future__ import annotations

import asyncio
import functools
import shutil
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import psycopg
import redis.asyncio
from temporalio.client import Client
from temporalio.testing import ActivityEnvironment

from bench.common import write_result
from tests.conftest import make_state_dir
from wfmon.components import DenoSandbox, register_components
from wfmon.components.sandbox import find_deno
from wfmon.connections import (
    ConnectionResolver,
    Keyring,
    NetworkPolicy,
    create_connection,
    generate_key,
)
from wfmon.db import Database
from wfmon.dev.services import EmbeddedServices
from wfmon.migrate import apply_migrations
from wfmon.model import WorkflowDefinition
from wfmon.runtime import NodeInput, RunContext, builtin_registry, start_builder_run
from wfmon.runtime.worker import build_worker
from wfmon.testing import make_owner

ACTIVITY_RUNS = 600
NODE_RUNS = 30
TS_COLD_RUNS = 8
TS_WARM_RUNS = 40
SQL = "SELECT $1::int AS n, 'x' AS s"


async def _median_ms(fn: Callable[[], Awaitable[Any]], runs: int) -> float:
    await fn()  # warm-up: connections, caches
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        await fn()
        samples.append((time.perf_counter() - t0) * 1000)
    return statistics.median(samples)


async def _paired_ms(
    direct: Callable[[], Awaitable[Any]],
    activity: Callable[[], Awaitable[Any]],
    runs: int,
) -> tuple[float, float, float]:
    """Medians of ``direct`` and ``activity`` timed in alternation, and the median of the
    per-pair ratios activity/direct."""
    await direct()
    await activity()
    pairs: list[tuple[float, float]] = []
    for _ in range(runs):
        t0 = time.perf_counter()
        await direct()
        t1 = time.perf_counter()
        await activity()
        t2 = time.perf_counter()
        pairs.append(((t1 - t0) * 1000, (t2 - t1) * 1000))
    return (
        statistics.median(d for d, _ in pairs),
        statistics.median(a for _, a in pairs),
        statistics.median(a / d for d, a in pairs),
    )


def _bench(state: Path) -> dict[str, Any]:
    # Services start outside the event loop: their health checks run their own loops.
    services = EmbeddedServices(state, temporal_ui=False, durable=False)
    try:
        endpoints = services.up()
        apply_migrations(endpoints.migrations_url)
        keyring = Keyring.parse(generate_key())
        with Database(endpoints.database_url) as db:
            owner = make_owner(db, "bench")
            project = owner.project
            with db.as_user(owner.auth_user_id) as conn:
                pg = create_connection(
                    conn,
                    project_id=project.id,
                    name="pg",
                    connection_type="postgresql",
                    url=endpoints.database_url,
                    keyring=keyring,
                )
                rd = create_connection(
                    conn,
                    project_id=project.id,
                    name="redis",
                    connection_type="redis",
                    url=endpoints.redis_url,
                    keyring=keyring,
                )
            return asyncio.run(
                _measure(endpoints, db, keyring, str(project.id), str(pg.id), str(rd.id))
            )
    finally:
        services.down()


async def _measure(
    endpoints: Any, db: Database, keyring: Keyring, project: str, pg_id: str, rd_id: str
) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    sandbox_home = Path(make_state_dir("wfmon-bench-deno-"))
    registry = builtin_registry()
    components = register_components(
        registry,
        ConnectionResolver(db, keyring, ttl=3600),
        policy=NetworkPolicy(allow_loopback=True),
        sandbox=DenoSandbox(sandbox_home),
    )
    try:
        # -- direct clients ------------------------------------------------------------
        pg_conn = await psycopg.AsyncConnection.connect(endpoints.database_url, autocommit=True)
        rd_client = redis.asyncio.Redis.from_url(endpoints.redis_url)
        await rd_client.set("bench:key", "value")

        async def pg_direct() -> Any:
            cur = psycopg.AsyncRawCursor(pg_conn)
            await cur.execute(SQL, [1])
            return await cur.fetchall()

        async def rd_direct() -> Any:
            return await rd_client.get("bench:key")

        # -- activity bodies, paired with the direct call ---------------------------------
        def node_input(component: str, config: dict[str, Any], conn: str | None) -> NodeInput:
            return NodeInput(
                node_id="n",
                component=component,
                config=config,
                connection_id=conn,
                project_id=str(project),
            )

        env = ActivityEnvironment()
        pg_node = node_input("postgresql-query", {"sql": SQL, "params": [1]}, pg_id)
        rd_node = node_input("redis-command", {"command": "GET", "args": ["bench:key"]}, rd_id)
        for kind, direct, node, run in (
            ("postgresql", pg_direct, pg_node, components.postgres.run),
            ("redis", rd_direct, rd_node, components.redis.run),
        ):
            d_ms, a_ms, ratio = await _paired_ms(
                direct, functools.partial(env.run, run, node), ACTIVITY_RUNS
            )
            figures[f"{kind}_direct_ms"] = d_ms
            figures[f"{kind}_activity_ms"] = a_ms
            figures[f"{kind}_activity_ratio"] = ratio
        await pg_conn.close()
        await rd_client.aclose()

        # -- whole one-node workflows ---------------------------------------------------
        client = await Client.connect(endpoints.temporal_address)
        queue = f"bench-{uuid.uuid4().hex[:8]}"
        worker = build_worker(client, task_queue=queue, registry=registry)
        async with worker:

            def one_node(
                component: str, config: dict[str, Any], conn: str | None
            ) -> Callable[[], Awaitable[Any]]:
                definition = WorkflowDefinition.model_validate(
                    {
                        "id": f"bench-{component}",
                        "name": component,
                        "nodes": [
                            {
                                "id": "n",
                                "component": component,
                                "config": config,
                                "connection_id": conn,
                            }
                        ],
                    }
                )

                async def go() -> Any:
                    handle = await start_builder_run(
                        client,
                        definition,
                        task_queue=queue,
                        context=RunContext(project_id=project),
                    )
                    return await handle.result()

                return go

            figures["postgresql_node_ms"] = await _median_ms(
                one_node("postgresql-query", {"sql": SQL, "params": [1]}, pg_id), NODE_RUNS
            )
            figures["redis_node_ms"] = await _median_ms(
                one_node("redis-command", {"command": "GET", "args": ["bench:key"]}, rd_id),
                NODE_RUNS,
            )
            figures["transform_node_ms"] = await _median_ms(
                one_node("transform", {"set": {"a": 1}}, None), NODE_RUNS
            )
        for kind in ("postgresql", "redis"):
            direct = figures[f"{kind}_direct_ms"]
            figures[f"{kind}_node_ratio"] = figures[f"{kind}_node_ms"] / direct
            # Temporal's own round trip dominates a node; this is what the component adds.
            figures[f"{kind}_node_minus_transform_node_ms"] = (
                figures[f"{kind}_node_ms"] - figures["transform_node_ms"]
            )

        # -- TypeScript -------------------------------------------------------------------
        sandbox = DenoSandbox(sandbox_home / "ts")
        cold = []
        for i in range(TS_COLD_RUNS):
            code = f"export default (d: {{ n: number }}) => ({{ v: d.n * {i + 2} }})"
            t0 = time.perf_counter()
            await sandbox.run(code, {"n": 3})
            cold.append((time.perf_counter() - t0) * 1000)
        warm_code = "export default (d: { n: number }) => ({ v: d.n * 2 })"
        figures["typescript_cold_ms"] = statistics.median(cold)
        empty = sandbox_home / "empty.js"
        empty.write_text("")
        deno = find_deno()

        async def bare() -> None:
            proc = await asyncio.create_subprocess_exec(
                deno,
                "run",
                "--no-config",
                "--quiet",
                str(empty),
                env={"DENO_DIR": str(sandbox_home / "bare"), "DENO_NO_UPDATE_CHECK": "1"},
            )
            await proc.wait()

        # Paired like the activities: the sandbox's warm run against a bare Deno process.
        bare_ms, warm_ms, warm_ratio = await _paired_ms(
            bare, functools.partial(sandbox.run, warm_code, {"n": 3}), TS_WARM_RUNS
        )
        figures["typescript_warm_ms"] = warm_ms
        figures["deno_empty_process_ms"] = bare_ms
        figures["typescript_warm_over_bare_deno"] = warm_ratio
    finally:
        await components.aclose()
        shutil.rmtree(sandbox_home, ignore_errors=True)
    return figures


def main() -> None:
    state = make_state_dir("wfmon-bench-components-")
    try:
        figures = _bench(state)
    finally:
        shutil.rmtree(state, ignore_errors=True)
    figures["runs"] = {
        "activity_pairs": ACTIVITY_RUNS,
        "node": NODE_RUNS,
        "typescript_cold": TS_COLD_RUNS,
        "typescript_warm": TS_WARM_RUNS,
    }
    pg_ratio = (
        f"{figures['postgresql_activity_ratio']:.1f}x/{figures['postgresql_node_ratio']:.0f}x"
    )
    rd_ratio = f"{figures['redis_activity_ratio']:.1f}x/{figures['redis_node_ratio']:.0f}x"
    summary = (
        f"activity/node vs direct: pg {pg_ratio}, redis {rd_ratio}; "
        f"node {figures['transform_node_ms']:.0f} ms is Temporal's (transform node alike); "
        f"ts cold {figures['typescript_cold_ms']:.0f} ms, "
        f"warm {figures['typescript_warm_ms']:.0f} ms"
    )
    write_result("components", figures, summary)


if __name__ == "__main__":
    main()

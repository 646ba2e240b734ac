"""The database side of live push: the LISTEN connection and its channel (migrations/0520).

The channel's name is defined once, in SQL (``wfmon_live_channel()``): a random name made
by migrations/0525 that only wfmon_user and wfmon_system may read (any role that can
connect may LISTEN, so the name is what keeps other roles, such as the attempt recorder
whose URL users' workers hold, from hearing the notifications); the listener asks for it.
Every notification's payload is :data:`PAYLOAD_KEYS` as JSON: ids only (execution,
project, workflow, owner), never row contents; or, for attempts written by an insert-only
attempt writer, :data:`RECORDED_RUN_KEY` with the run's Temporal ids (migrations/0600).

The listener is one autocommit connection per web-app process, outside the pool (a LISTEN
must outlive every unit of work). It runs no statement but ``LISTEN``, the channel's name
(as wfmon_user) and a liveness probe, so it reads no table.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Final
from uuid import UUID

from psycopg import AsyncConnection, Connection, sql

from wfmon.db.database import USER_ROLE, DbConnection
from wfmon.db.locks import libpq_url

#: ``application_name`` of the LISTEN connection (how pg_stat_activity tells it apart).
LISTENER_APPLICATION: Final = "wfmon-live"
#: Keys of a notification's JSON payload: execution, project, workflow, owner (users.id).
PAYLOAD_KEYS: Final = ("e", "p", "w", "u")
#: Key of the other payload (migrations/0600): attempts of a run were recorded by an
#: insert-only attempt writer, ``{"r": [namespace, workflow_id, run_id]}``.
RECORDED_RUN_KEY: Final = "r"
#: The triggers of migrations/0520, by table (for the benchmark's with/without figure).
LIVE_TRIGGERS: Final = {
    "workflow_executions": (
        "workflow_executions_live_insert",
        "workflow_executions_live_update",
        "workflow_executions_live_delete",
    ),
    "component_executions": (
        "component_executions_live_insert",
        "component_executions_live_update",
        "component_executions_live_delete",
    ),
    "component_execution_attempts": (
        "component_execution_attempts_live_insert",
        "component_execution_attempts_live_update",
    ),
}


async def open_listener(database_url: str, *, connect_timeout: int = 10) -> AsyncConnection[Any]:
    """A new autocommit connection LISTENing on the live channel. TCP keepalives make a
    silently dropped link fail instead of hanging; the caller closes the connection."""
    conn = await AsyncConnection.connect(
        libpq_url(database_url),
        autocommit=True,
        application_name=LISTENER_APPLICATION,
        connect_timeout=connect_timeout,
        keepalives=1,
        keepalives_idle=20,
        keepalives_interval=5,
        keepalives_count=3,
    )
    try:
        # The channel's name is a secret (migrations/0525) told to wfmon_user, not to the
        # login role itself; LISTEN needs no privilege, so the role is dropped again.
        await conn.execute(sql.SQL("SET ROLE {}").format(sql.Identifier(USER_ROLE)))
        cur = await conn.execute("SELECT wfmon_live_channel()")
        row = await cur.fetchone()
        assert row is not None
        await conn.execute("RESET ROLE")
        await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(str(row[0]))))
    except BaseException:
        await conn.close()
        raise
    return conn


async def payloads(conn: AsyncConnection[Any], *, idle: float) -> AsyncIterator[str]:
    """The payloads of ``conn``'s notifications as they arrive. After ``idle`` seconds
    without one, a liveness probe runs (it raises ``psycopg.OperationalError`` when the
    server is gone); the iteration only ends by raising."""
    while True:
        async for note in conn.notifies(timeout=idle):
            yield note.payload
        await conn.execute("SELECT 1")


def current_user_id(conn: DbConnection) -> UUID | None:
    """The caller's ``users.id`` (what the read policies compare with ``created_by``)."""
    row = conn.execute("SELECT wfmon_current_user_id() AS id").fetchone()
    return row["id"] if row else None


def listener_count(conn: DbConnection) -> int:
    """Open LISTEN connections of web apps (every process's) on this database."""
    row = conn.execute(
        "SELECT count(*) AS n FROM pg_stat_activity "
        "WHERE application_name = %s AND datname = current_database()",
        (LISTENER_APPLICATION,),
    ).fetchone()
    return int(row["n"]) if row else 0


def login_connection_count(conn: DbConnection, login: str) -> int:
    """Connections open on this database under the login role ``login``."""
    row = conn.execute(
        "SELECT count(*) AS n FROM pg_stat_activity "
        "WHERE usename = %s AND datname = current_database()",
        (login,),
    ).fetchone()
    return int(row["n"]) if row else 0


def set_live_triggers(conn: Connection[Any], *, enabled: bool) -> None:
    """Enable or disable the 0520 triggers (tables' owner only; the benchmark's baseline)."""
    action = sql.SQL("ENABLE" if enabled else "DISABLE")
    for table, triggers in LIVE_TRIGGERS.items():
        for trigger in triggers:
            conn.execute(
                sql.SQL("ALTER TABLE {} {} TRIGGER {}").format(
                    sql.Identifier(table), action, sql.Identifier(trigger)
                )
            )


def notify_raw(conn: DbConnection, payload: str) -> None:
    """Send ``payload`` on the live channel (tests: a malformed payload must be ignored)."""
    conn.execute("SELECT pg_notify(wfmon_live_channel(), %s)", (payload,))


def terminate_listeners(conn: Connection[Any]) -> int:
    """End every web app's LISTEN connection (each reconnects by itself); how many ended.
    Needs a role allowed to signal them (a superuser, or one with pg_signal_backend)."""
    row = conn.execute(
        "SELECT count(pg_terminate_backend(pid)) AS n FROM pg_stat_activity "
        "WHERE application_name = %s AND datname = current_database()",
        (LISTENER_APPLICATION,),
    ).fetchone()
    return int(row[0] if isinstance(row, tuple) else row["n"]) if row else 0

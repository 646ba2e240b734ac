"""CRUD, row-level security and the connectivity test, on the real session PostgreSQL
and Redis. Two users: Bob can never list, read, change, test or resolve Alice's
connections, and the stored URL is readable nowhere (table, logs, returned values)."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import socket
import threading
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit
from uuid import uuid4

import psycopg
import pytest

from wfmon.connections import (
    ConnectionConflict,
    ConnectionNotFound,
    ConnectionResolver,
    InvalidConnection,
    Keyring,
    NetworkPolicy,
    create_connection,
    delete_connection,
    generate_key,
    get_connection,
    list_connections,
    reencrypt_connections,
    test_connection,
    update_connection,
)
from wfmon.db import Database
from wfmon.dev.process import free_port
from wfmon.testing import WorkflowOwner


def _password(url: str) -> str:
    password = urlsplit(url).password
    assert password, "the test URL must carry a password"
    return password


def _with_password(url: str, password: str) -> str:
    parts = urlsplit(url)
    netloc = f"{parts.username}:{password}@{parts.hostname}:{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))


def _with_port(url: str, port: int) -> str:
    parts = urlsplit(url)
    userinfo = parts.netloc.rpartition("@")[0]
    netloc = f"{userinfo}@{parts.hostname}:{port}" if userinfo else f"{parts.hostname}:{port}"
    return urlunsplit(parts._replace(netloc=netloc))


def test_crud_roundtrip_masks_and_encrypts(
    db: Database,
    alice: WorkflowOwner,
    keyring: Keyring,
    pg_url: str,
    redis_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    secret = _password(pg_url)
    with db.as_user(alice.auth_user_id) as conn:
        pg = create_connection(
            conn,
            project_id=alice.project.id,
            name="warehouse",
            connection_type="postgresql",
            url=pg_url,
            config={"statement_timeout_ms": 1000},
            keyring=keyring,
        )
        rd = create_connection(
            conn,
            project_id=alice.project.id,
            name="cache",
            connection_type="redis",
            url=redis_url,
            keyring=keyring,
        )
    assert pg.masked_url == f"postgresql://127.0.0.1:{urlsplit(pg_url).port}/wfmon"
    assert pg.config["statement_timeout_ms"] == 1000 and pg.config["pool_max_size"] == 4
    assert pg.created_by == alice.user.id
    assert secret not in repr(pg) and secret not in str(dataclasses.asdict(pg))

    with db.as_user(alice.auth_user_id) as conn:
        assert [c.name for c in list_connections(conn, alice.project.id)] == ["cache", "warehouse"]
        assert get_connection(conn, rd.id).masked_url.startswith("redis://127.0.0.1:")
        # The table holds ciphertext and a key id; neither the URL nor the password.
        row = conn.execute("SELECT * FROM project_connections WHERE id = %s", (pg.id,)).fetchone()
    assert row is not None
    assert row["encryption_key_id"] == "k1"
    dump = repr(row).encode() + bytes(row["connection_url_encrypted"])
    assert secret.encode() not in dump and pg_url.encode() not in dump
    assert secret not in caplog.text

    with db.as_user(alice.auth_user_id) as conn:
        renamed = update_connection(
            conn, pg.id, keyring=keyring, name="dwh", config={"pool_max_size": 2}
        )
        assert renamed.name == "dwh" and renamed.config["pool_max_size"] == 2
        assert renamed.updated_at >= pg.updated_at
        moved = update_connection(conn, rd.id, keyring=keyring, url=_with_port(redis_url, 6390))
        assert moved.masked_url == "redis://127.0.0.1:6390/0"
        with pytest.raises(InvalidConnection, match="must start with redis://"):
            update_connection(conn, rd.id, keyring=keyring, url=pg_url)
        delete_connection(conn, rd.id)
        with pytest.raises(ConnectionNotFound):
            get_connection(conn, rd.id)
        with pytest.raises(ConnectionNotFound):
            delete_connection(conn, rd.id)


def test_duplicate_name_is_a_conflict_and_unit_of_work_survives(
    db: Database, alice: WorkflowOwner, keyring: Keyring, redis_url: str
) -> None:
    with db.as_user(alice.auth_user_id) as conn:
        first = create_connection(
            conn,
            project_id=alice.project.id,
            name="dup",
            connection_type="redis",
            url=redis_url,
            keyring=keyring,
        )
        with pytest.raises(ConnectionConflict, match="'dup' already exists"):
            create_connection(
                conn,
                project_id=alice.project.id,
                name="dup",
                connection_type="redis",
                url=redis_url,
                keyring=keyring,
            )
        # The failed insert rolled back its savepoint only.
        other = create_connection(
            conn,
            project_id=alice.project.id,
            name="other",
            connection_type="redis",
            url=redis_url,
            keyring=keyring,
        )
        with pytest.raises(ConnectionConflict):
            update_connection(conn, other.id, keyring=keyring, name="dup")
    with db.as_user(alice.auth_user_id) as conn:
        assert {c.id for c in list_connections(conn, alice.project.id)} == {first.id, other.id}


def test_concurrent_creates_one_wins(
    db: Database, alice: WorkflowOwner, keyring: Keyring, redis_url: str
) -> None:
    barrier = threading.Barrier(4)
    outcomes: list[str] = []

    def create() -> None:
        with db.as_user(alice.auth_user_id) as conn:
            barrier.wait()
            try:
                create_connection(
                    conn,
                    project_id=alice.project.id,
                    name="raced",
                    connection_type="redis",
                    url=redis_url,
                    keyring=keyring,
                )
                outcomes.append("created")
            except ConnectionConflict:
                outcomes.append("conflict")

    threads = [threading.Thread(target=create) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(outcomes) == ["conflict", "conflict", "conflict", "created"]


@pytest.fixture
def alices_connection(
    db: Database, alice: WorkflowOwner, keyring: Keyring, pg_url: str
) -> Iterator[str]:
    with db.as_user(alice.auth_user_id) as conn:
        info = create_connection(
            conn,
            project_id=alice.project.id,
            name="private-db",
            connection_type="postgresql",
            url=pg_url,
            keyring=keyring,
        )
    yield str(info.id)


def test_bob_cannot_see_change_test_or_use_alices_connection(
    db: Database,
    alice: WorkflowOwner,
    bob: WorkflowOwner,
    keyring: Keyring,
    alices_connection: str,
    local_policy: NetworkPolicy,
    redis_url: str,
) -> None:
    with db.as_user(bob.auth_user_id) as conn:
        assert list_connections(conn, alice.project.id) == []
        with pytest.raises(ConnectionNotFound):
            get_connection(conn, alices_connection)
        with pytest.raises(ConnectionNotFound):
            update_connection(conn, alices_connection, keyring=keyring, name="mine")
        with pytest.raises(ConnectionNotFound):
            delete_connection(conn, alices_connection)
        with pytest.raises(ConnectionNotFound):
            test_connection(conn, alices_connection, keyring=keyring, policy=local_policy)
        # Nor can Bob put a connection into Alice's project.
        with pytest.raises(ConnectionNotFound, match="project"):
            create_connection(
                conn,
                project_id=alice.project.id,
                name="intruder",
                connection_type="redis",
                url=redis_url,
                keyring=keyring,
            )
        # Even raw SQL sees nothing of it.
        assert conn.execute(
            "SELECT count(*) AS n FROM project_connections WHERE id = %s", (alices_connection,)
        ).fetchone() == {"n": 0}
    # ...and the worker refuses to use it for a workflow of Bob's project.
    resolver = ConnectionResolver(db, keyring)
    with pytest.raises(ConnectionNotFound):
        asyncio.run(resolver.resolve_connection(bob.project.id, alices_connection))
    resolved = asyncio.run(resolver.resolve_connection(alice.project.id, alices_connection))
    assert resolved.name == "private-db"
    assert resolved.url not in repr(resolved)
    # Alice still has it, untouched.
    with db.as_user(alice.auth_user_id) as conn:
        assert get_connection(conn, alices_connection).name == "private-db"


def test_connectivity_test_ok_and_sanitized_failures(
    db: Database,
    alice: WorkflowOwner,
    keyring: Keyring,
    pg_url: str,
    redis_url: str,
    local_policy: NetworkPolicy,
) -> None:
    secret = _password(pg_url)
    wrong = "not-the-" + secret
    refused = free_port()
    # A socket that accepts TCP (listen backlog) but never answers: forces the timeout.
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    try:
        urls = {
            "pg-ok": ("postgresql", pg_url),
            "redis-ok": ("redis", redis_url),
            "pg-badpw": ("postgresql", _with_password(pg_url, wrong)),
            "pg-refused": ("postgresql", _with_port(pg_url, refused)),
            "redis-refused": ("redis", _with_port(redis_url, refused)),
            "pg-silent": ("postgresql", _with_port(pg_url, silent.getsockname()[1])),
        }
        ids = {}
        with db.as_user(alice.auth_user_id) as conn:
            for name, (ctype, url) in urls.items():
                ids[name] = create_connection(
                    conn,
                    project_id=alice.project.id,
                    name=name,
                    connection_type=ctype,
                    url=url,
                    keyring=keyring,
                ).id
            results = {
                name: test_connection(
                    conn, ids[name], keyring=keyring, policy=local_policy, timeout=1.5
                )
                for name in urls
            }
            denied = test_connection(
                conn, ids["pg-ok"], keyring=keyring, policy=NetworkPolicy(), timeout=1.5
            )
    finally:
        silent.close()
    assert results["pg-ok"].ok and results["redis-ok"].ok, results
    assert results["pg-badpw"].error_type == "AuthenticationFailed"
    assert results["pg-refused"].error_type == "ConnectionRefused"
    assert results["redis-refused"].error_type == "ConnectionRefused"
    assert results["pg-silent"].error_type == "ConnectionTimeout"
    assert results["pg-silent"].message == "no answer within 1.5 s"
    assert 1400 < results["pg-silent"].latency_ms < 5000
    assert denied.error_type == "HostNotAllowed" and "loopback" in denied.message
    for result in [*results.values(), denied]:
        assert secret not in result.message and wrong not in result.message
        assert "127.0.0.1" not in result.message and "wfmon" not in result.message


def test_policy_rejects_denied_literal_on_create(
    db: Database, alice: WorkflowOwner, keyring: Keyring
) -> None:
    with (
        db.as_user(alice.auth_user_id) as conn,
        pytest.raises(InvalidConnection, match="link-local"),
    ):
        create_connection(
            conn,
            project_id=alice.project.id,
            name="metadata",
            connection_type="redis",
            url="redis://169.254.169.254:6379/0",
            keyring=keyring,
            policy=NetworkPolicy(),
        )


def test_rotation_reencrypts_under_the_new_key(
    db: Database,
    alice: WorkflowOwner,
    keyring: Keyring,
    redis_url: str,
    local_policy: NetworkPolicy,
) -> None:
    with db.as_user(alice.auth_user_id) as conn:
        info = create_connection(
            conn,
            project_id=alice.project.id,
            name=f"rot-{uuid4().hex[:6]}",
            connection_type="redis",
            url=redis_url,
            keyring=keyring,
        )
    old_entry = f"k1:{_key_b64(keyring)}"
    rotated = Keyring.parse(f"{generate_key('k2')},{old_entry}")
    with db.as_user(alice.auth_user_id) as conn:
        assert reencrypt_connections(conn, rotated) >= 1
        assert reencrypt_connections(conn, rotated) == 0
    new_only = Keyring(keys={"k2": rotated.keys["k2"]}, current="k2")
    with db.as_user(alice.auth_user_id) as conn:
        result = test_connection(conn, info.id, keyring=new_only, policy=local_policy)
    assert result.ok, result


def _key_b64(ring: Keyring) -> str:
    import base64

    return base64.urlsafe_b64encode(ring.keys[ring.current]).decode()


def test_app_role_cannot_read_the_table_directly(pg_url: str, alices_connection: str) -> None:
    """The login role owns nothing and holds no privileges: it cannot read the table at all."""
    with (
        psycopg.connect(pg_url) as conn,
        pytest.raises(psycopg.errors.InsufficientPrivilege, match="project_connections"),
    ):
        conn.execute("SELECT count(*) FROM project_connections")

"""What each request no longer pays for, and that nothing it answers changed: verified
tokens remembered briefly (expiry still judged on every call), JSON columns decoded by
orjson where that gives json.loads's values; and ``wfmon serve``'s one socket per worker,
which the kernel spreads connections over."""

from __future__ import annotations

import json
import socket
import time

import pytest

from tests.api.conftest import World
from wfmon.api.jwt import TokenError, decode_hs256, encode_hs256
from wfmon.api.workers import ListeningConfig
from wfmon.db import details as d
from wfmon.testing import make_owner, seed_execution

SECRET = "request-costs-secret-of-32-bytes!"

#: JSON texts where orjson and json.loads part ways, and ordinary ones.
ODD_JSON = [
    b'{"i": 1, "text": "' + b"x" * 200 + b'", "ok": true, "none": null}',
    b"123456789012345678901234567890",  # beyond 64 bits: orjson would give a float
    b"18446744073709551616",
    b"-9223372036854775809",
    b'{"a": [1, 18446744073709551615, -9223372036854775808, 1.0, 2.50, 1e22]}',
    b'{"id": "1234567890123456789012 inside a string", "n": 7}',
    b"1e400",  # orjson refuses; json.loads gives inf
    b'"\\ud800"',  # a lone surrogate: orjson refuses
    b'{"t": "\xc3\xa9 \xe2\x9c\x93 \\u2028"}',
    b"[0.1, 5e-324, 2.4e-324, -0.0, 1.7976931348623157e308]",
    b"[" * 200 + b"]" * 200,
]


@pytest.mark.parametrize("text", ODD_JSON)
def test_json_columns_decode_to_json_loads_values(text: bytes) -> None:
    # repr tells 1 from 1.0 and a big int from its float.
    assert repr(d._loads(text)) == repr(json.loads(text))


def test_json_columns_read_through_the_database_as_before(world: World) -> None:
    payload = {"big": 2**70, "edge": 2**64, "neg": -(2**63) - 1, "f": [0.1, 1.0, 1e300], "s": "é"}
    owner = make_owner(world.db, "json-columns")  # its own user: no other test sees it
    eid = seed_execution(world.db, owner, components=2, retried_every=0, payload=payload)
    with world.db.as_user(owner.auth_user_id) as conn:
        rows = d.page_component_executions(conn, eid, offset=0, limit=10)
        plain = d.list_component_executions(conn, eid)  # the connection's own json.loads
    assert [repr(r["input_data"]) for r in rows] == [repr(p["input_data"]) for p in plain]
    assert rows[0]["input_data"]["big"] == 2**70


def test_a_remembered_token_is_still_judged_on_every_call() -> None:
    now = int(time.time())
    token = encode_hs256({"sub": "u1", "exp": now + 10}, SECRET)
    first = decode_hs256(token, SECRET, leeway=0)
    first["sub"] = "changed by the caller"
    assert decode_hs256(token, SECRET, leeway=0)["sub"] == "u1"  # remembered, a copy
    # The same token judged with less leeway: expired, then not valid yet, with the
    # library's own messages (a remembered token that no longer passes is decoded again).
    with pytest.raises(TokenError, match="token has expired"):
        decode_hs256(token, SECRET, leeway=-20)
    late = encode_hs256({"sub": "u1", "nbf": now - 10}, SECRET)
    decode_hs256(late, SECRET, leeway=0)
    with pytest.raises(TokenError, match="not valid yet"):
        decode_hs256(late, SECRET, leeway=-20)
    # Remembered under its secret only, and a tampered token is another token.
    with pytest.raises(TokenError, match="signature"):
        decode_hs256(token, SECRET + "x", leeway=0)
    with pytest.raises(TokenError):
        decode_hs256(token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1], SECRET)


def test_each_worker_gets_a_socket_and_connections_are_spread() -> None:
    config = ListeningConfig("wfmon.api.workers:web_app", factory=True, host="127.0.0.1", port=0)
    sockets = config.bind_sockets(2)
    clients: list[socket.socket] = []
    try:
        assert {s.getsockname() for s in sockets} == {("127.0.0.1", config.port)}
        # A second server on the same address is refused, as a single socket's bind is.
        again = ListeningConfig("x:y", host="127.0.0.1", port=config.port)
        with pytest.raises(OSError):
            again.bind_sockets(2)
        # 40 connections all on one socket would be a 1 in 2**39 hash outcome.
        clients = [socket.create_connection(("127.0.0.1", config.port)) for _ in range(40)]
        accepted = [0, 0]
        for s in sockets:
            s.setblocking(False)
        deadline = time.monotonic() + 5
        while sum(accepted) < 40 and time.monotonic() < deadline:
            for i, s in enumerate(sockets):
                try:
                    s.accept()[0].close()
                    accepted[i] += 1
                except BlockingIOError:
                    time.sleep(0.001)
        assert sum(accepted) == 40 and min(accepted) > 0, accepted
    finally:
        for c in clients:
            c.close()
        for s in sockets:
            s.close()
    with socket.socket() as taken:  # a plain listener on the port: refused too
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        with pytest.raises(OSError):
            ListeningConfig("x:y", host="127.0.0.1", port=taken.getsockname()[1]).bind_sockets(1)

"""``wfmon token --user EMAIL`` prints a token the API accepts."""

from __future__ import annotations

import os
import subprocess
import sys
from urllib.parse import parse_qs

from tests.api.conftest import JWT_SECRET, Http, World
from wfmon.api.jwt import decode_hs256


def _wfmon(*args: str, database_url: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "WFMON_DATABASE_URL": database_url, "WFMON_JWT_SECRET": JWT_SECRET}
    return subprocess.run(
        [sys.executable, "-m", "wfmon.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_token_for_a_user_by_email(world: World, database_url: str) -> None:
    out = _wfmon("token", "--user", world.alice.user.email.upper(), database_url=database_url)
    assert out.returncode == 0, out.stderr
    token = out.stdout.strip()
    assert decode_hs256(token, JWT_SECRET)["sub"] == str(world.alice.auth_user_id)
    me = Http(world.url, token).get("/api/me").json()
    assert me["user_id"] == str(world.alice.user.id)


def test_token_for_an_unknown_user_is_refused(world: World, database_url: str) -> None:
    out = _wfmon("token", "--user", "nobody@example.com", database_url=database_url)
    assert out.returncode == 2 and "no wfmon user" in out.stderr


def test_token_link_keeps_the_token_in_the_fragment(world: World, database_url: str) -> None:
    base = "http://127.0.0.1:8000"
    out = _wfmon(
        "token", "--user", world.alice.user.email, "--link", base, database_url=database_url
    )
    assert out.returncode == 0, out.stderr
    link = out.stdout.strip()
    before, _, fragment = link.partition("#")
    assert before == f"{base}/signin"
    token = parse_qs(fragment)["token"][0]
    assert decode_hs256(token, JWT_SECRET)["sub"] == str(world.alice.auth_user_id)

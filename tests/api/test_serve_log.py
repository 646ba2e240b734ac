"""``wfmon serve``'s output never carries a token, however the browser signs in.

The real ``wfmon serve`` runs as a subprocess on a free 127.0.0.1 port (its stdout and
stderr in files) and is stopped by PID. A browser signs in through the link
``signin_url`` builds (what ``make demo`` and ``wfmon token --link`` print); the old
``/signin?token=`` link and a few other credential-named query values are sent too. Then
every token and credential must be absent from the server's output, while the access
log shows the requests were logged and the signed-in pages loaded.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import pytest

from tests.api.conftest import JWT_SECRET, Http, World
from tests.browser import HAVE_BROWSER, launch_chromium
from wfmon.api.jwt import dev_token
from wfmon.api.tokens import signin_url
from wfmon.dev.process import free_port, stop_pid
from wfmon.dev.services import Endpoints


@dataclass
class Served:
    url: str
    pid: int
    stdout: Path
    stderr: Path

    def output(self) -> str:
        return self.stdout.read_text(errors="replace") + self.stderr.read_text(errors="replace")


def _wfmon_command() -> list[str]:
    script = Path(sys.executable).parent / "wfmon"
    return [str(script)] if script.exists() else [sys.executable, "-m", "wfmon.cli"]


@pytest.fixture
def served(
    world: World, endpoints: Endpoints, database_url: str, tmp_path: Path
) -> Iterator[Served]:
    port = free_port()
    env = {
        **os.environ,
        "WFMON_DATABASE_URL": database_url,
        "WFMON_JWT_SECRET": JWT_SECRET,
        "WFMON_TEMPORAL_ADDRESS": endpoints.temporal_address,
        "WFMON_STATE_DIR": str(tmp_path / "state"),
    }
    out, err = tmp_path / "serve.stdout", tmp_path / "serve.stderr"
    with out.open("wb") as o, err.open("wb") as e:
        proc = subprocess.Popen(
            [*_wfmon_command(), "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=o,
            stderr=e,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    s = Served(f"http://127.0.0.1:{port}", proc.pid, out, err)
    try:
        deadline = time.monotonic() + 60
        while "Uvicorn running on" not in s.output():
            assert proc.poll() is None, f"wfmon serve exited: {s.output()[-2000:]}"
            assert time.monotonic() < deadline, f"wfmon serve did not start: {s.output()[-2000:]}"
            time.sleep(0.1)
        yield s
    finally:
        stop_pid(proc.pid, signal.SIGTERM, timeout=20)
        proc.wait(timeout=10)


def _cookie(reply_headers: dict[str, str]) -> str:
    return reply_headers["set-cookie"].split(";", 1)[0]


def test_signing_in_never_writes_a_token_to_the_server_log(served: Served, world: World) -> None:
    alice = world.alice
    secrets: list[str] = []

    def fresh() -> str:
        """A distinct 7-day token per way of signing in (its signature is checked too)."""
        ttl = 7 * 24 * 3600 - len(secrets)
        token = dev_token(str(alice.auth_user_id), JWT_SECRET, ttl_seconds=ttl)
        secrets.append(token.rsplit(".", 1)[1])
        return token

    # 1. The printed link, the way a browser follows it: Chromium when there is one, ...
    if HAVE_BROWSER:
        browser_token = fresh()
        link = signin_url(served.url, browser_token, f"/projects/{alice.project.id}")
        with launch_chromium() as b:
            page = b.new_page()
            page.set_default_timeout(15_000)
            page.goto(link)
            page.wait_for_url(f"**/projects/{alice.project.id}")
            assert alice.project.name in page.content()
            assert browser_token not in page.url, "the token left the address bar"
            cookies = page.context.cookies()
            assert any(c["name"] == "wfmon_token" and c["httpOnly"] for c in cookies)

    # ... and what the link makes any browser send: the URL without its fragment, then
    # (when the page is the sign-in form) the form POST the page's script sends, with the
    # fragment's token in the body.
    anon = Http(served.url)
    link = signin_url(served.url, fresh())
    path, _, fragment = link.removeprefix(served.url).partition("#")
    reply = anon.get(path, headers={"Accept": "text/html"})
    if reply.status == 200 and 'id="signin"' in reply.text:
        reply = anon.post(
            "/signin",
            raw=fragment.encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded", "Accept": "text/html"},
        )
    assert reply.status == 303 and reply.headers["location"] == "/projects", reply.text
    projects = anon.get("/projects", headers={"Cookie": _cookie(reply.headers)})
    assert projects.status == 200 and alice.project.name in projects.text

    # 2. An old-style link still signs in; its token must not be logged either.
    legacy_token = fresh()
    legacy = anon.get("/signin?" + urlencode({"token": legacy_token, "next": "/projects"}))
    assert legacy.status == 303
    projects = anon.get("/projects", headers={"Cookie": _cookie(legacy.headers)})
    assert projects.status == 200 and alice.project.name in projects.text

    # 3. Other credential-looking query values, also nested in a ``next`` target.
    for name in ("code", "api_key", "client_secret", "password", "access_token"):
        value = f"sentinel-{name}-5f2c"
        secrets.append(value)
        anon.get(f"/api/me?{name}={value}")
        nested = urlencode({"next": f"/projects?{name}={value}"})
        anon.get(f"/signin?{nested}", headers={"Accept": "text/html"})

    stop_pid(served.pid, signal.SIGTERM, timeout=20)
    log = served.output()
    assert '"GET /projects HTTP/1.1" 200' in log, f"the access log is on:\n{log[-3000:]}"
    leaked = [s for s in secrets if s in log]
    assert not leaked, f"{len(leaked)} of {len(secrets)} secrets in the log:\n{log[-3000:]}"
    assert "/signin?token=[redacted]" in log, log[-3000:]
    assert "eyJ" not in log, "nothing shaped like a JWT is logged"

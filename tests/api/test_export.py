"""Export over HTTP, from the page and from ``wfmon export``: real app, PostgreSQL, Chromium.

Every kind x format is read back with the format's own reader (csv, json, pyarrow) and
compared with the rows PostgreSQL holds for the same user.
"""

from __future__ import annotations

import csv
import http.client
import io
import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import psycopg
import pyarrow.parquet as pq
import pytest

from tests.api.conftest import JWT_SECRET, Http, World
from tests.api.seed import Person, make_person, seed_execution
from tests.api.test_browser import CHROMIUM, page, shot, sign_in  # noqa: F401 (fixture)
from wfmon.db.export import KINDS, ExportKind
from wfmon.dev.postgres import PostgresInstance
from wfmon.dev.services import EmbeddedServices, Endpoints
from wfmon.export import fields_of

KIND_LIST: list[ExportKind] = ["executions", "components", "attempts"]
FORMATS = ["csv", "jsonl", "parquet"]


# -- reading an export back ---------------------------------------------------------------


def _typed(kind: ExportKind, name: str, value: Any, *, from_text: bool) -> Any:
    """A value as the comparison holds it: UUIDs str, JSON parsed, timestamps datetime."""
    f = next(f for f in fields_of(kind) if f.name == name)
    if value is None or (from_text and value == ""):
        return None
    if f.type == "json":
        return json.loads(value) if isinstance(value, str) else value
    if f.type == "timestamp":
        out = datetime.fromisoformat(value) if isinstance(value, str) else value
        assert out.utcoffset() == timedelta(0), f"{name} is not UTC: {value!r}"
        return out
    if not from_text:
        return value
    if f.type == "int64":
        return int(value)
    if f.type == "bool":
        assert value in ("true", "false"), value
        return value == "true"
    return value


def read_export(kind: ExportKind, fmt: str, body: bytes) -> list[dict[str, Any]]:
    names = [f.name for f in fields_of(kind)]
    if fmt == "csv":
        reader = csv.reader(io.StringIO(body.decode("utf-8"), newline=""))
        header = next(reader)
        assert header == names
        return [
            {n: _typed(kind, n, v, from_text=True) for n, v in zip(names, r, strict=True)}
            for r in reader
        ]
    if fmt == "jsonl":
        out = []
        for line in body.decode("utf-8").splitlines():
            obj = json.loads(line)
            assert list(obj) == names
            out.append({n: _typed(kind, n, obj[n], from_text=False) for n in names})
        return out
    table = pq.read_table(io.BytesIO(body))
    assert table.schema.names == names
    return [
        {n: _typed(kind, n, v, from_text=False) for n, v in row.items()}
        for row in table.to_pylist()
    ]


def expected_rows(
    world: World, who: Person, kind: ExportKind, where: str = "TRUE", params: Any = ()
) -> list[dict[str, Any]]:
    """The rows PostgreSQL holds for ``who`` (their RLS), typed like :func:`read_export`."""
    spec = KINDS[kind]
    source = spec.source.as_string()
    names = [c.name for c in spec.columns]
    own = [f"{spec.alias}.{c.name}" for c in spec.own]
    context = {
        "workflow_execution_id": "e.id",
        "workflow_id": "e.workflow_id",
        "project_id": "e.project_id",
        "execution_closed_at": "e.closed_at",
        "execution_status": "e.status",
    }
    exprs = own + [context[c.name] for c in spec.context]
    statement = (
        f"SELECT {', '.join(exprs)} FROM {source} WHERE {where} "
        f"ORDER BY {spec.order_by.as_string()}"
    )
    with world.db.as_user(who.auth_user_id) as conn:
        rows = conn.cursor(row_factory=psycopg.rows.tuple_row).execute(statement, params)
        out = []
        for r in rows.fetchall():
            item = {}
            for n, v in zip(names, r, strict=True):
                if v is not None and type(v).__name__ == "UUID":
                    v = str(v)
                if isinstance(v, datetime):
                    v = v.astimezone(UTC)
                if v == "":
                    v = None
                item[n] = v
            out.append(item)
        return out


def export(http: Http, kind: str, fmt: str, **filters: Any) -> Any:
    query = urlencode({k: v for k, v in filters.items() if v is not None})
    return http.get(f"/api/export/{kind}.{fmt}" + (f"?{query}" if query else ""))


# -- round trips ---------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("kind", KIND_LIST)
def test_each_kind_and_format_round_trips(world: World, kind: ExportKind, fmt: str) -> None:
    alice = world.alice
    reply = export(world.http(alice), kind, fmt, workflow_id=alice.workflow.id)
    assert reply.status == 200, reply.text
    media = {"csv": "text/csv", "jsonl": "application/x-ndjson", "parquet": "parquet"}[fmt]
    assert media in reply.headers["content-type"]
    disposition = reply.headers["content-disposition"]
    assert disposition.startswith("attachment; filename=") and f"{kind}-" in disposition
    assert disposition.endswith(f'.{fmt}"')
    got = read_export(kind, fmt, reply.body)
    want = expected_rows(world, alice, kind, "e.workflow_id = %s", (alice.workflow.id,))
    assert len(got) == len(want) > 0
    assert got == want


def test_the_big_execution_is_exported_whole(world: World) -> None:
    alice = world.alice
    reply = export(world.http(alice), "components", "jsonl", workflow_id=alice.workflow.id)
    rows = [json.loads(line) for line in reply.body.splitlines()]
    big = [r for r in rows if r["workflow_execution_id"] == str(world.executions["big"])]
    assert len(big) == 5000
    assert big[0]["input_data"]["i"] == 0 and big[0]["retry_policy"]["maximum_attempts"] == 3
    assert [r["scheduled_event_id"] for r in big] == sorted(r["scheduled_event_id"] for r in big)


# -- filters ----------------------------------------------------------------------------------


def test_status_filter_applies_to_the_execution(world: World) -> None:
    http = world.http(world.alice)
    wf = world.alice.workflow.id
    rows = read_export(
        "executions",
        "jsonl",
        export(http, "executions", "jsonl", workflow_id=wf, status="failed").body,
    )
    assert rows and {r["status"] for r in rows} == {"failed"}
    assert str(world.executions["failed"]) in {r["id"] for r in rows}
    comps = read_export(
        "components",
        "csv",
        export(http, "components", "csv", workflow_id=wf, status="timed_out").body,
    )
    assert comps and {r["execution_status"] for r in comps} == {"timed_out"}
    attempts = read_export(
        "attempts", "jsonl", export(http, "attempts", "jsonl", workflow_id=wf, status="failed").body
    )
    assert attempts and {r["execution_status"] for r in attempts} == {"failed"}
    assert {r["activity_id"] for r in attempts} >= {"fetch", "charge"}


def test_time_and_project_filters(world: World) -> None:
    alice = world.alice
    http = world.http(alice)
    everything = read_export(
        "executions", "jsonl", export(http, "executions", "jsonl", project_id=alice.project.id).body
    )
    assert {r["project_id"] for r in everything} == {str(alice.project.id)}
    starts = sorted(r["started_at"] for r in everything)
    middle = starts[len(starts) // 2]
    since = read_export(
        "executions",
        "jsonl",
        export(
            http, "executions", "jsonl", project_id=alice.project.id, since=middle.isoformat()
        ).body,
    )
    until = read_export(
        "executions",
        "jsonl",
        export(
            http, "executions", "jsonl", project_id=alice.project.id, until=middle.isoformat()
        ).body,
    )
    assert all(r["started_at"] >= middle for r in since)
    assert all(r["started_at"] < middle for r in until)
    assert len(since) + len(until) == len(everything)
    # A naive time is UTC.
    naive = middle.astimezone(UTC).replace(tzinfo=None).isoformat()
    again = export(http, "executions", "jsonl", project_id=alice.project.id, since=naive)
    assert len(read_export("executions", "jsonl", again.body)) == len(since)


# -- row-level security ------------------------------------------------------------------------


@pytest.mark.parametrize("kind", KIND_LIST)
def test_another_users_rows_are_never_exported(world: World, kind: ExportKind) -> None:
    bob = world.http(world.bob)
    rows = read_export(kind, "jsonl", export(bob, kind, "jsonl").body)
    mine = expected_rows(world, world.bob, kind)
    assert rows == mine
    alice_ids = {str(v) for v in world.executions.values()} - {str(world.executions["bob"])}
    key = "id" if kind == "executions" else "workflow_execution_id"
    if kind != "attempts":
        assert not {r[key] for r in rows} & alice_ids
    assert str(world.alice.workflow.id) not in {r.get("workflow_id") for r in rows}
    assert str(world.alice.project.id) not in {r.get("project_id") for r in rows}


def test_filters_naming_someone_elses_workflow_or_project_are_404(world: World) -> None:
    bob = world.http(world.bob)
    for filters in (
        {"workflow_id": world.alice.workflow.id},
        {"project_id": world.alice.project.id},
    ):
        for fmt in FORMATS:
            reply = export(bob, "components", fmt, **filters)
            assert reply.status == 404, reply.text
            assert reply.json()["error"] == "not_found"
            assert "content-disposition" not in reply.headers


def test_export_needs_a_token(world: World) -> None:
    reply = export(world.http(None), "executions", "csv")
    assert reply.status == 401


# -- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("/api/export/executions.xlsx", "path.format"),
        ("/api/export/secrets.csv", "path.kind"),
        ("/api/export/executions.csv?status=exploded", "query.status"),
        ("/api/export/executions.csv?since=yesterday", "query.since"),
        ("/api/export/executions.csv?workflow_id=42", "query.workflow_id"),
    ],
)
def test_bad_input_is_a_422_naming_the_field(world: World, path: str, field: str) -> None:
    reply = world.http(world.alice).get(path)
    assert reply.status == 422, reply.text
    assert reply.headers["content-type"].startswith("application/json")
    assert "content-disposition" not in reply.headers
    assert field in {f["field"] for f in reply.json()["fields"]}


def test_since_after_until_is_a_422(world: World) -> None:
    reply = export(
        world.http(world.alice),
        "components",
        "parquet",
        since="2024-02-01T00:00:00Z",
        until="2024-01-01T00:00:00Z",
    )
    assert reply.status == 422
    assert "since" in reply.json()["message"] and "until" in reply.json()["message"]
    assert "content-disposition" not in reply.headers


# -- a search's results --------------------------------------------------------------------


def _search_ids(http: Http, q: str) -> set[str]:
    reply = http.get("/api/search?" + urlencode({"q": q, "limit": 100}))
    assert reply.status == 200, reply.text
    assert reply.json()["total"] <= 100
    return {item["id"] for item in reply.json()["items"]}


@pytest.mark.parametrize("q", ["status:failure", "node:charge", "since:30d status:completed"])
def test_export_of_a_search_is_its_results(world: World, q: str) -> None:
    http = world.http(world.alice)
    wanted = _search_ids(http, q)
    executions = read_export("executions", "jsonl", export(http, "executions", "jsonl", q=q).body)
    assert {r["id"] for r in executions} == wanted
    components = read_export("components", "csv", export(http, "components", "csv", q=q).body)
    assert {r["workflow_execution_id"] for r in components} <= wanted
    if wanted:
        assert components
    # The search narrows the other filters, never widens them.
    failed_only = read_export(
        "executions", "jsonl", export(http, "executions", "jsonl", q=q, status="failed").body
    )
    assert {r["id"] for r in failed_only} == {
        r["id"] for r in executions if r["status"] == "failed"
    }


def test_a_search_export_never_holds_another_users_rows(world: World) -> None:
    # Bob crafts a query that matches Alice's failed execution: his export stays empty.
    q = f'workflow:"{world.alice.workflow.name}" status:failed'
    assert _search_ids(world.http(world.alice), q)
    for kind in KIND_LIST:
        reply = export(world.http(world.bob), kind, "jsonl", q=q)
        assert reply.status == 200 and reply.body == b"", reply.text


def test_a_malformed_search_is_a_422_and_no_file(world: World) -> None:
    reply = export(world.http(world.alice), "executions", "csv", q="stauts:failed")
    assert reply.status == 422, reply.text
    assert reply.json()["message"].startswith("query: ") and "position" in reply.json()["message"]
    assert "content-disposition" not in reply.headers


def test_the_search_page_links_exports_of_its_results(world: World) -> None:
    q = "status:failed"
    reply = world.http(world.alice).get(
        "/search?" + urlencode({"q": q}), headers={"Accept": "text/html"}
    )
    assert reply.status == 200
    link = f"/api/export/components.parquet?q={urlencode({'q': q})[2:]}"
    assert link in reply.text


# -- secrets -----------------------------------------------------------------------------------


def test_exports_hold_no_secret_columns_nor_connection_urls(world: World) -> None:
    for kind in KIND_LIST:
        names = {f.name for f in fields_of(kind)}
        for word in ("url", "password", "secret", "token", "encrypted", "key", "temporal_history"):
            assert not {n for n in names if word in n}, (kind, word)
        for fmt in FORMATS:
            body = export(world.http(world.alice), kind, fmt).body
            assert b"postgresql://" not in body and b"redis://" not in body
            assert world.alice.token.encode() not in body


# -- streaming: a failure mid-stream, a client that leaves ------------------------------------


@pytest.fixture(scope="module")
def carol(world: World) -> Person:
    """A user with one execution of 25,000 components: more than two batches."""
    person = make_person(world.db, "carol", JWT_SECRET)
    seed_execution(world.db, person, components=25_000, retried_every=0, payload={"n": 1})
    return person


def _open_stream(world: World, who: Person, path: str) -> tuple[http.client.HTTPConnection, Any]:
    parts = urlsplit(world.url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=60)
    conn.request("GET", path, headers={"Authorization": f"Bearer {who.token}"})
    resp = conn.getresponse()
    assert resp.status == 200
    return conn, resp


@pytest.fixture(scope="module")
def superuser_url(embedded_services: EmbeddedServices, endpoints: Endpoints) -> str:
    """Superuser URL of the session's cluster: to see and end other sessions' backends."""
    port = urlsplit(endpoints.database_url).port
    assert port is not None
    return PostgresInstance(embedded_services.state_dir / "postgres", port).url("postgres")


def _export_backends(superuser_url: str) -> list[tuple[int, str]]:
    """(pid, state) of backends whose last statement used the export's cursor, while in
    a transaction (``active`` while it fetches, ``idle in transaction`` between)."""
    with psycopg.connect(superuser_url, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid, state FROM pg_stat_activity "
            "WHERE query LIKE %s AND state <> 'idle' AND pid <> pg_backend_pid()",
            ('%"wfmon_export"%',),
        ).fetchall()
    return [(int(r[0]), str(r[1])) for r in rows]


def test_a_failure_mid_stream_is_an_incomplete_transfer(
    world: World, carol: Person, superuser_url: str
) -> None:
    for fmt in ("csv", "jsonl"):
        conn, resp = _open_stream(world, carol, f"/api/export/components.{fmt}")
        try:
            assert resp.read(1000)
            backends = [p for p, _ in _export_backends(superuser_url)]
            assert backends, "the export's transaction is open while streaming"
            with psycopg.connect(superuser_url, autocommit=True) as admin:
                for pid in backends:
                    admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
            with pytest.raises(http.client.IncompleteRead):
                resp.read()
        finally:
            conn.close()


def test_a_client_that_disconnects_ends_the_unit_of_work(
    world: World, carol: Person, superuser_url: str
) -> None:
    conn, resp = _open_stream(world, carol, "/api/export/components.csv")
    assert resp.read(1000)
    assert _export_backends(superuser_url)
    conn.sock.shutdown(2) if conn.sock else None
    conn.close()
    deadline = time.monotonic() + 20
    while _export_backends(superuser_url):
        assert time.monotonic() < deadline, "the export's transaction is still open"
        time.sleep(0.2)
    # The pool is fine afterwards: the next export works.
    reply = export(world.http(carol), "components", "jsonl")
    assert reply.status == 200 and len(reply.body.splitlines()) == 25_000


# -- the page ----------------------------------------------------------------------------------


@pytest.mark.skipif(not CHROMIUM.exists(), reason=f"needs Chromium at {CHROMIUM}")
def test_export_link_on_the_workflow_page_downloads_the_filtered_list(
    page: Any,  # noqa: F811
    world: World,
    tmp_path: Path,
) -> None:
    sign_in(page, world)
    page.goto(f"/workflows/{world.alice.workflow.id}?tab=executions&status=failed")
    links = page.locator("#export-links")
    assert links.is_visible()
    links.scroll_into_view_if_needed()
    shot(page, "export", doc=True)
    with page.expect_download() as info:
        page.get_by_role("link", name="Export executions as CSV").click()
    download = info.value
    assert download.suggested_filename.startswith("wfmon-executions-")
    target = tmp_path / download.suggested_filename
    download.save_as(str(target))
    rows = read_export("executions", "csv", target.read_bytes())
    assert rows and {r["status"] for r in rows} == {"failed"}
    assert {r["workflow_id"] for r in rows} == {str(world.alice.workflow.id)}
    with page.expect_download() as info:
        page.get_by_role("link", name="Export attempts as Parquet").click()
    parquet = tmp_path / "attempts.parquet"
    info.value.save_as(str(parquet))
    table = pq.read_table(parquet)
    assert table.num_rows > 0 and set(table.column("execution_status").to_pylist()) == {"failed"}


# -- the CLI -----------------------------------------------------------------------------------


def _wfmon(*args: str, database_url: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "WFMON_DATABASE_URL": database_url, "WFMON_JWT_SECRET": JWT_SECRET}
    return subprocess.run(
        [sys.executable, "-m", "wfmon.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("fmt", FORMATS)
def test_cli_export_writes_the_file_as_the_user(
    world: World, database_url: str, tmp_path: Path, fmt: str
) -> None:
    alice = world.alice
    target = tmp_path / f"components.{fmt}"
    out = _wfmon(
        "export",
        "components",
        "--format",
        fmt,
        "--user",
        alice.user.email,
        "--workflow",
        str(alice.workflow.id),
        "--progress",
        "-o",
        str(target),
        database_url=database_url,
    )
    assert out.returncode == 0, out.stderr
    assert "rows written" in out.stderr and "rows/s" in out.stderr
    got = read_export("components", fmt, target.read_bytes())
    assert got == expected_rows(
        world, alice, "components", "e.workflow_id = %s", (alice.workflow.id,)
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == [target.name]


def test_cli_export_runs_under_the_users_rls(
    world: World, database_url: str, tmp_path: Path
) -> None:
    target = tmp_path / "bob.jsonl"
    out = _wfmon(
        "export",
        "executions",
        "--format",
        "jsonl",
        "--user",
        world.bob.user.email,
        "-o",
        str(target),
        database_url=database_url,
    )
    assert out.returncode == 0, out.stderr
    assert read_export("executions", "jsonl", target.read_bytes()) == expected_rows(
        world, world.bob, "executions"
    )
    denied = _wfmon(
        "export",
        "executions",
        "--user",
        world.bob.user.email,
        "--workflow",
        str(world.alice.workflow.id),
        "-o",
        str(tmp_path / "x.csv"),
        database_url=database_url,
    )
    assert denied.returncode == 2 and "not found" in denied.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bob.jsonl"]


def test_cli_failures_leave_no_file(world: World, database_url: str, tmp_path: Path) -> None:
    unknown = _wfmon(
        "export",
        "executions",
        "--user",
        "nobody@example.com",
        "-o",
        str(tmp_path / "a.csv"),
        database_url=database_url,
    )
    assert unknown.returncode == 2 and "no wfmon user" in unknown.stderr
    bad = _wfmon(
        "export",
        "executions",
        "--user",
        world.alice.user.email,
        "--since",
        "2024-02-01",
        "--until",
        "2024-01-01",
        "-o",
        str(tmp_path / "b.csv"),
        database_url=database_url,
    )
    assert bad.returncode == 2 and "since" in bad.stderr
    # The rename at the end fails (the target is a directory): the written file goes too.
    (tmp_path / "taken").mkdir()
    failed = _wfmon(
        "export",
        "components",
        "--user",
        world.alice.user.email,
        "-o",
        str(tmp_path / "taken"),
        database_url=database_url,
    )
    assert failed.returncode != 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]
    assert not list((tmp_path / "taken").iterdir())


def test_cli_interrupted_mid_export_leaves_no_file(
    world: World, carol: Person, database_url: str, tmp_path: Path
) -> None:
    env = {**os.environ, "WFMON_DATABASE_URL": database_url, "WFMON_JWT_SECRET": JWT_SECRET}
    target = tmp_path / "carol.jsonl"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "wfmon.cli",
            "export",
            "components",
            "--format",
            "jsonl",
            "--user",
            carol.user.email,
            "--progress",
            "-o",
            str(target),
        ],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    deadline = time.monotonic() + 60
    while not list(tmp_path.glob(".carol.jsonl.*.part")):
        assert proc.poll() is None, proc.stderr.read()
        assert time.monotonic() < deadline
        time.sleep(0.01)
    proc.send_signal(signal.SIGINT)
    proc.wait(30)
    if proc.returncode == 0:  # it finished before the signal: then the file is whole
        assert len(target.read_text().splitlines()) == 25_000
    else:
        assert list(tmp_path.iterdir()) == []


# -- PostgreSQL formats the file: the same bytes as the Python writers ---------------------

#: Values a CSV or JSON writer must get right: quotes, separators, line breaks (inside a
#: value), control characters, non-ASCII, an empty text, NULLs, whole-second times.
AWKWARD = 'say "hi", then\r\nleave;\ttab \x01\x02\x0b\x1f back\\slash \\v \\N é ✓ \u2028 𝄞'


@pytest.fixture(scope="module")
def dora(world: World) -> Person:
    """A user whose execution holds awkward text in every kind of column."""
    from wfmon.db.rows import ComponentExecutionRow
    from wfmon.model import ComponentStatus, ExecutionStatus
    from wfmon.testing import attempt_row, execution_row, write_execution

    person = make_person(world.db, "dora", JWT_SECRET)
    t0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)  # whole seconds: no microseconds
    row = execution_row(
        person,
        status=ExecutionStatus.FAILED,
        started_at=t0,
        input={"text": AWKWARD, "nested": {"a": [1, 2.5, None, True]}},
        output=None,
        error_message=AWKWARD,
    )
    components = [
        ComponentExecutionRow(
            node_id=f"n{i}",
            scheduled_event_id=5 + i,
            status=ComponentStatus.FAILED if i % 2 else ComponentStatus.COMPLETED,
            component_name=["", AWKWARD, "plain", "a,b", "\\N"][i % 5],
            activity_type="transform",
            started_at=t0 + timedelta(microseconds=i * 250_000),
            completed_at=None if i == 3 else t0 + timedelta(seconds=i, microseconds=7),
            duration_ms=i,
            input_data={"s": AWKWARD, "i": i},
            output_data=[{"ok": True}, 42, [], "a,b", [1, 2], None, True, {"x": AWKWARD}][i],
            error_message=AWKWARD if i % 2 else None,
            retry_count=i,
            is_expected_retry=bool(i % 2),
            temporal_activity_id=f"n{i}",
            temporal_attempt=1,
        )
        for i in range(8)
    ]
    attempts = [
        attempt_row(
            row,
            "n1",
            1,
            t0,
            activity_type="transform",
            ended_at=t0 + timedelta(microseconds=1),
            outcome="failed",
            failure_type="Weird",
            failure_message=AWKWARD,
            failure_stack="line 1\nline 2\n",
        )
    ]
    write_execution(world.db, row, components=components, attempts=attempts)
    return person


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("kind", KIND_LIST)
def test_the_copy_export_is_what_the_python_writers_write(
    world: World, dora: Person, kind: ExportKind, fmt: str
) -> None:
    """The export (COPY, formatted by PostgreSQL) against the row-by-row Python writers
    over the same rows: CSV and JSON Lines byte for byte, Parquet value for value."""
    from wfmon.db.export import ExportFilter, iter_export_batches
    from wfmon.export import ExportFormat, export_chunks

    body = export(world.http(dora), kind, fmt).body
    with world.db.as_user(dora.auth_user_id) as conn:
        old = b"".join(
            export_chunks(
                ExportFormat(fmt), fields_of(kind), iter_export_batches(conn, kind, ExportFilter())
            )
        )
    if fmt == "parquet":
        got, want = pq.read_table(io.BytesIO(body)), pq.read_table(io.BytesIO(old))
        assert got.schema == want.schema and got.num_rows == want.num_rows > 0
        assert got.to_pylist() == want.to_pylist()
    else:
        assert body == old and body.count(b"\n") >= 1


@pytest.mark.parametrize("fmt", FORMATS)
def test_batches_are_bounded_by_bytes_and_the_file_is_the_same(world: World, fmt: str) -> None:
    """Rows with large payloads come in smaller batches (memory, and Arrow's 32-bit string
    offsets); the file written from them is the one the default batches write."""
    from wfmon.db.export import ExportFilter, iter_export_copy
    from wfmon.export import ExportFormat
    from wfmon.export.writers import COPY_FORMATS, export_copy_chunks

    alice = world.alice
    filters = ExportFilter(workflow_id=alice.workflow.id)
    fields = fields_of("components")
    copy_format = COPY_FORMATS[ExportFormat(fmt)]
    with world.db.as_user(alice.auth_user_id) as conn:
        whole = b"".join(
            export_copy_chunks(
                ExportFormat(fmt),
                fields,
                iter_export_copy(conn, "components", filters, copy_format),
            )
        )
    with world.db.as_user(alice.auth_user_id) as conn:
        batches = list(
            iter_export_copy(conn, "components", filters, copy_format, batch_bytes=64 << 10)
        )
    sizes = [sum(len(p) for p in b.parts) for b in batches]
    largest_row = max(len(p) for b in batches for p in b.parts)
    assert len(batches) > 10 and all(b.rows == len(b.parts) >= 1 for b in batches)
    assert max(sizes) < (64 << 10) + largest_row
    assert sum(b.rows for b in batches) >= 5000
    small = b"".join(export_copy_chunks(ExportFormat(fmt), fields, batches))
    if fmt == "parquet":
        assert pq.read_table(io.BytesIO(small)).to_pylist() == (
            pq.read_table(io.BytesIO(whole)).to_pylist()
        )
    else:
        assert small == whole

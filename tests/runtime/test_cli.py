"""``wfmon run`` and ``wfmon worker`` against the session's real services."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from temporal_harness import TemporalHarness

from wfmon.cli import main
from wfmon.connections.crypto import generate_key
from wfmon.dev.services import Endpoints

DEFINITION = {
    "id": "cli-demo",
    "name": "CLI demo",
    "version": 1,
    "nodes": [
        {
            "id": "hello",
            "component": "transform",
            "config": {"template": {"msg": "hi {workflow.name}"}},
        },
    ],
}


@pytest.fixture
def service_env(endpoints: Endpoints, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    env = {
        "WFMON_TEMPORAL_ADDRESS": endpoints.temporal_address,
        "WFMON_DATABASE_URL": endpoints.database_url,
        "WFMON_REDIS_URL": endpoints.redis_url,
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


def test_run_waits_and_prints_ids_and_result(
    runtime: TemporalHarness,
    service_env: dict[str, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    path = tmp_path / "def.json"
    path.write_text(json.dumps(DEFINITION))
    code = main(
        [
            "run",
            str(path),
            "--input",
            '{"name": "Bo"}',
            "--wait",
            "--task-queue",
            runtime.queues.builder,
            "--project-id",
            "p1",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert "workflow id  cli-demo-" in out and "run id       " in out
    assert 'result       {"hello": {"msg": "hi Bo"}}' in out


def test_run_rejects_bad_definitions_naming_the_field(
    service_env: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = {
        **DEFINITION,
        "nodes": [
            {
                "id": "x",
                "component": "flaky",
                "retry_policy": {"strategy": "fail_after_attempts", "max_attempts": -2},
            }
        ],
    }
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(bad))
    assert main(["run", str(path)]) == 2
    err = capsys.readouterr().err
    assert "nodes.0.retry_policy.fail_after_attempts.max_attempts" in err
    path.write_text(json.dumps({**DEFINITION, "nodes": [{"id": "x", "component": "nope"}]}))
    assert main(["run", str(path)]) == 2
    assert "unknown component(s) nope" in capsys.readouterr().err


def test_worker_runs_until_sigterm(
    service_env: dict[str, str], tmp_path: Path, endpoints: Endpoints
) -> None:
    queue = f"cli-worker-{uuid.uuid4().hex[:6]}"
    env = {
        **os.environ,
        **service_env,
        "WFMON_STATE_DIR": str(tmp_path),
        "WFMON_SECRET_KEY": generate_key(),
    }
    wfmon = Path(sys.executable).parent / "wfmon"
    proc = subprocess.Popen(
        [str(wfmon), "worker", "--task-queue", queue, "--no-sync"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert f"wfmon worker on task queue '{queue}', attempts to PostgreSQL" in first, first
        # Built-ins and, with a database and a key, the connection-backed components.
        assert "components: transform, flaky, sleep, always-fail, postgresql-query" in first
        path = tmp_path / "def.json"
        path.write_text(json.dumps(DEFINITION))
        done = subprocess.run(
            [str(wfmon), "run", str(path), "--wait", "--task-queue", queue, "--input", "{}"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        # The input has no "name": the transform fails, and the root cause is printed.
        # Known SDK bug (temporalio/sdk-python#300): a short-lived client process may abort
        # in interpreter finalization after its work is done; only that is tolerated here.
        finalization_abort = done.returncode == -signal.SIGABRT and (
            "PyGILState_Release" in done.stderr
        )
        assert done.returncode == 1 or finalization_abort, done.stdout + done.stderr
        assert "caused by  TransformError: path 'workflow.name'" in done.stdout
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=30)
        assert code == 0, proc.stdout.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

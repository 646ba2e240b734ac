"""``wfmon demo`` end to end: everything comes up, data is synced, nothing is left running."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from tests.conftest import make_state_dir
from wfmon.dev.process import pid_alive
from wfmon_defs.instance import session_members


def test_demo_brings_everything_up_and_stops_every_process() -> None:
    state = make_state_dir("wfmon-demo-")
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("WFMON_")}
        env["WFMON_STATE_DIR"] = str(state)
        result = subprocess.run(
            [str(Path(sys.executable).parent / "wfmon"), "demo", "--exit-after", "1"],
            env=env,
            capture_output=True,
            text=True,
            timeout=480,
        )
        out = result.stdout
        assert result.returncode == 0, out + result.stderr
        assert "Temporal Web UI   http://127.0.0.1:" in out
        assert re.search(r"executions: \d+ completed, \d+ failed", out)
        synced = re.search(r"synced (\d+) execution", out)
        assert synced and int(synced.group(1)) >= 30, out
        assert "with expected retries" in out and "failed" in out
        assert "Dagster UI        http://127.0.0.1:" in out
        assert re.search(r"statistics filled by Dagster: \d+ workflows, 2 projects", out), out
        assert "sign in as alice" in out
        for secret in (state / "postgres").glob("*password"):
            assert secret.read_text().strip() not in out + result.stderr, secret.name

        children = [int(pid) for pid in re.findall(r"running, pid (\d+)", out)]
        assert len(children) == 3, out  # worker, web app, Dagster
        recorded = json.loads((state / "services.json").read_text())
        assert all(rec["pid"] is None for rec in recorded.values()), recorded
        assert not any(pid_alive(pid) for pid in children), "every child was stopped"
        assert not any(session_members(pid) for pid in children), "nor any grandchild"
    finally:
        shutil.rmtree(state, ignore_errors=True)

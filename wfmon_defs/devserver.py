"""``python -m wfmon_defs.devserver --port P --home DIR``: Dagster for ``make demo``.

Writes the instance (dagster-postgres storage on database ``dagster`` of wfmon's server),
then replaces this process with :func:`~wfmon_defs.instance.dagster_dev_command` (webserver
+ daemon), so the PID the caller holds is Dagster's. The caller starts it in a new session
and stops it with SIGTERM, then the process group (DESIGN.md: ``env --default-signal=INT``
makes ``dagster dev`` obey). ``dagster dev`` prepares the dbt manifest as it loads the
code location (``resources/dbt.py``).
Lives here, not in ``wfmon/``, because ``wfmon`` never imports Dagster.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from wfmon.settings import load_settings, resolve_endpoints
from wfmon_defs.instance import (
    PROJECT_ROOT,
    dagster_dev_command,
    dagster_environment,
    write_instance,
)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m wfmon_defs.devserver")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--home", type=Path, required=True, help="DAGSTER_HOME")
    args = parser.parse_args(argv)

    write_instance(args.home, resolve_endpoints(load_settings()).dagster_database_url)
    env = dagster_environment(args.home)
    command = dagster_dev_command(port=args.port)
    os.chdir(PROJECT_ROOT)
    os.execvpe(command[0], command, env)


if __name__ == "__main__":
    main()

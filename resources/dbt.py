"""dbt as a Dagster resource: :class:`dagster_dbt.DbtCliResource` pointed at wfmon's database.

dbt connects as the login role of the database URL and switches to ``wfmon_system``
(``role`` in the profile), the only role the statistics tables let write. The profile is
written for each process into a private directory (mode 0700, file 0600) from the resolved
URL, so the password is never on a command line, in an environment variable or in dbt's
logged invocation arguments.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import dagster as dg
from dagster_dbt import DbtCliInvocation, DbtCliResource
from pydantic import Field, PrivateAttr

from wfmon.settings import load_settings, resolve_endpoints

#: The dbt project of this repository.
DBT_PROJECT_DIR = Path(__file__).resolve().parent.parent / "dbt_project"
#: The role dbt writes as (migrations/0001, 0004).
DBT_ROLE = "wfmon_system"


def dbt_executable() -> str:
    """``dbt`` next to the running Python (the venv's), else the one on PATH."""
    beside = Path(sys.executable).parent / "dbt"
    if beside.exists():
        return str(beside)
    return shutil.which("dbt") or "dbt"


def profile_for(database_url: str, *, threads: int = 2) -> dict[str, Any]:
    """The dbt ``profiles.yml`` content (profile ``wfmon``) for a postgresql:// URL.

    Raises :class:`ValueError` naming what is missing when the URL cannot be used.
    """
    parts = urlsplit(database_url)
    if parts.scheme not in ("postgresql", "postgres", "postgresql+psycopg", "postgresql+psycopg2"):
        raise ValueError("the wfmon database URL must start with postgresql://")
    if not parts.hostname or not parts.username:
        raise ValueError("the wfmon database URL must name a host and a user")
    return {
        "wfmon": {
            "target": "dagster",
            "outputs": {
                "dagster": {
                    "type": "postgres",
                    "host": parts.hostname,
                    "port": parts.port or 5432,
                    "user": unquote(parts.username),
                    "password": unquote(parts.password or ""),
                    "dbname": parts.path.lstrip("/") or "wfmon",
                    "schema": "public",
                    "role": DBT_ROLE,
                    "threads": threads,
                }
            },
        }
    }


class WfmonDbtResource(dg.ConfigurableResource):  # type: ignore[type-arg]
    """Runs dbt commands of ``dbt_project/`` against the wfmon database.

    ``database_url`` unset means ``WFMON_DATABASE_URL`` or the embedded server, resolved
    when the first command runs. :meth:`cli` is :meth:`DbtCliResource.cli` (Dagster events
    are streamed from it), with the wfmon profile in place.
    """

    database_url: str | None = Field(default=None, description="postgresql:// URL of wfmon.")
    project_dir: str = Field(default=str(DBT_PROJECT_DIR), description="The dbt project.")
    threads: int = Field(default=2, description="dbt threads.")

    _profiles_dir: str | None = PrivateAttr(default=None)

    def profiles_dir(self) -> str:
        """A private directory holding the generated ``profiles.yml`` (created once)."""
        if self._profiles_dir is None:
            url = self.database_url or resolve_endpoints(load_settings()).database_url
            directory = tempfile.mkdtemp(prefix="wfmon-dbt-profile-")
            path = Path(directory) / "profiles.yml"
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                # JSON is valid YAML.
                json.dump(profile_for(url, threads=self.threads), f)
            self._profiles_dir = directory
        return self._profiles_dir

    def dbt_cli(self) -> DbtCliResource:
        """The underlying :class:`DbtCliResource`."""
        return DbtCliResource(
            project_dir=self.project_dir,
            profiles_dir=self.profiles_dir(),
            profile="wfmon",
            target="dagster",
            dbt_executable=dbt_executable(),
        )

    def cli(
        self,
        args: Sequence[str],
        *,
        context: dg.AssetExecutionContext | dg.OpExecutionContext | None = None,
        raise_on_error: bool = True,
    ) -> DbtCliInvocation:
        """Start ``dbt <args>``; stream its events with ``.stream()`` or ``.wait()``."""
        return self.dbt_cli().cli(list(args), context=context, raise_on_error=raise_on_error)

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._profiles_dir is not None:
            shutil.rmtree(self._profiles_dir, ignore_errors=True)
            self._profiles_dir = None

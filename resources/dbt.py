"""dbt as a Dagster resource: :class:`dagster_dbt.DbtCliResource` pointed at wfmon's database;
the dbt project and its manifest.

dbt connects as the login role of the database URL and switches to ``wfmon_system``
(``role`` in the profile), the only role the statistics tables let write. The profile is
written for each process into a private directory (mode 0700, file 0600) from the resolved
URL, so the password is never on a command line, in an environment variable or in dbt's
logged invocation arguments.

The manifest the dbt assets are built from is ``dbt_project/target/manifest.json``
(ignored by git), prepared by dagster-dbt's own preparer (``dbt parse``, no database
connection) through :func:`prepare_manifest`:

* under ``dagster dev`` on every load of the code location (:meth:`DbtProject.prepare_if_dev`);
* at build time of a deployment with ``dagster-dbt project prepare-and-package --file
  resources/dbt.py`` (the maintained CLI; it finds :data:`dbt_project` here);
* anywhere else (tests, CI, ``dagster-webserver``, a notebook) by the process that loads the
  definitions, when the manifest is missing or older than a file of the dbt project.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final
from urllib.parse import unquote, urlsplit

import dagster as dg
from dagster_dbt import DbtCliInvocation, DbtCliResource, DbtProject
from pydantic import Field, PrivateAttr

from wfmon.settings import load_settings, resolve_endpoints

#: The dbt project of this repository.
DBT_PROJECT_DIR = Path(__file__).resolve().parent.parent / "dbt_project"
#: The role dbt writes as (migrations/0001, 0004).
DBT_ROLE = "wfmon_system"
#: The tags of every statistics refresh run (a ``dbt build`` of the models): the instance
#: runs one such run at a time (``wfmon_defs/instance.py``), since two concurrent MERGEs
#: into the statistics tables would race on new keys.
STATISTICS_REFRESH_TAGS: Final[Mapping[str, str]] = MappingProxyType(
    {"wfmon/statistics-refresh": "true"}
)

#: ``dbt_project/`` for dagster-dbt; its manifest comes from :func:`prepare_manifest`.
dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR)


def dbt_executable() -> str:
    """``dbt`` next to the running Python (the venv's), else the one on PATH."""
    beside = Path(sys.executable).parent / "dbt"
    if beside.exists():
        return str(beside)
    return shutil.which("dbt") or "dbt"


def _manifest_outdated(project: DbtProject) -> bool:
    """True when the manifest is missing or older than ``dbt_project.yml`` or a model,
    macro or test of ``project``."""
    manifest = project.manifest_path
    if not manifest.exists():
        return True
    built = manifest.stat().st_mtime
    files = [project.project_dir / "dbt_project.yml"]
    for sub in ("models", "macros", "tests"):
        files += [p for p in (project.project_dir / sub).rglob("*") if p.is_file()]
    return any(f.stat().st_mtime > built for f in files)


@contextlib.contextmanager
def _dbt_on_path() -> Iterator[None]:
    """The venv's ``bin`` first on ``PATH`` while dagster-dbt's preparer runs: it starts
    ``dbt`` by name, and a venv program (``.venv/bin/pytest``) may run without it on PATH."""
    before = os.environ.get("PATH")
    venv_bin = str(Path(sys.executable).parent)
    os.environ["PATH"] = os.pathsep.join([venv_bin, before or os.defpath])
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("PATH", None)
        else:
            os.environ["PATH"] = before


def prepare_manifest(project: DbtProject = dbt_project) -> Path:
    """``project.manifest_path``, prepared first when needed, by dagster-dbt's preparer.

    Under ``dagster dev`` (``DAGSTER_IS_DEV_CLI``) :meth:`DbtProject.prepare_if_dev` parses
    the project on every load. Elsewhere ``prepare_if_dev`` does nothing and a deployment
    ships the manifest ``dagster-dbt project prepare-and-package --file resources/dbt.py``
    built; when there is none or it is older than the project's files (a fresh checkout,
    tests, CI, an edited model), ``project.preparer.prepare`` parses it here. The preparer
    holds a file lock, so processes loading the definitions at once parse once.
    """
    with _dbt_on_path():
        project.prepare_if_dev()
        if _manifest_outdated(project):
            project.preparer.prepare(project)
    return project.manifest_path


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

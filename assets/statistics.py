"""Statistics and trends: the dbt models of ``dbt_project/`` as Dagster assets.

Each dbt model is an asset (``workflow_statistics``, ``project_statistics``,
``workflow_daily_trends``, ``component_daily_trends``) downstream of the synced tables
(dbt sources mapped to the ``workflow_executions`` / ``component_executions`` assets), and
each dbt test is an asset check on its model. A Python check adds what dbt tests cannot
say simply: the statistics agree with the executions they summarise.

Every model carries :func:`statistics_follow_sync` as its automation condition, so the
statistics follow any materialization of the synced-history assets (a sensor's sync run, a
partition materialized by hand, a backfill of any range) without waiting for the schedule:
the automation-condition sensor ``statistics_after_sync`` (``wfmon_defs/sensors.py``)
requests one refresh of all four models once the sync runs have finished.
"""

import fcntl
import json
import os
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, DbtProject, dbt_assets
from pydantic import Field

from assets.metadata import OWNERS
from resources.database import WfmonDatabaseResource
from resources.dbt import (
    DBT_PROJECT_DIR,
    STATISTICS_REFRESH_TAGS,
    WfmonDbtResource,
    dbt_executable,
    prepare_manifest,
)
from wfmon.db import statistics

dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR)

WORKFLOW_STATISTICS = dg.AssetKey("workflow_statistics")
PROJECT_STATISTICS = dg.AssetKey("project_statistics")
#: Label of the condition below, shown in the UI's automation evaluations.
FOLLOW_SYNC_LABEL = "statistics follow synced histories"


def statistics_follow_sync() -> dg.AutomationCondition[dg.AssetKey | dg.AssetCheckKey]:
    """True once a synced-history dependency (``workflow_executions`` or
    ``component_executions``, any partition) was materialized since this model was last
    requested, and nothing upstream or of this model is still running.

    * Coalesced: any number of partitions materialized between two evaluations (a
      100-day backfill in one run, or many sensor runs) make one request, and nothing is
      requested while a sync run or backfill is still in progress (``any_deps_in_progress``),
      so a backfill gets one refresh when it ends.
    * Never lost: the condition is reset only when the model is *requested*, not when it
      is updated, so a sync that lands while a refresh (e.g. the schedule's) is running asks
      for one more refresh after it (``in_progress`` holds it back until then).
    * A run that materialized the models together with their sync dependencies does not
      trigger again (``any_deps_updated`` ignores such updates).
    """
    requested = (
        dg.AutomationCondition.newly_requested() | dg.AutomationCondition.initial_evaluation()
    )
    return (
        dg.AutomationCondition.any_deps_updated().since(requested.with_label("requested"))
        & ~dg.AutomationCondition.any_deps_in_progress()
        & ~dg.AutomationCondition.in_progress()
    ).with_label(FOLLOW_SYNC_LABEL)


def _sources_newer_than(path: Path) -> bool:
    if not path.exists():
        return True
    built = path.stat().st_mtime
    files = [DBT_PROJECT_DIR / "dbt_project.yml"]
    for sub in ("models", "macros", "tests"):
        files += [p for p in (DBT_PROJECT_DIR / sub).rglob("*") if p.is_file()]
    return any(f.stat().st_mtime > built for f in files)


def ensure_manifest(project: DbtProject = dbt_project) -> Path:
    """``target/manifest.json`` of the dbt project, parsed again when missing or older than
    any model, macro or test (``dbt parse``: no database connection needed).

    Safe when several processes load the definitions at once (a file lock serialises the
    parse). Raises :class:`RuntimeError` with dbt's output when parsing fails.
    """
    manifest = project.manifest_path
    if not _sources_newer_than(manifest):
        return manifest
    manifest.parent.mkdir(parents=True, exist_ok=True)
    with open(manifest.parent / ".parse.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if _sources_newer_than(manifest):
            env = {**os.environ, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
            done = subprocess.run(
                [
                    dbt_executable(),
                    "parse",
                    "--project-dir",
                    str(project.project_dir),
                    "--profiles-dir",
                    str(project.project_dir),
                    "--target-path",
                    str(manifest.parent),
                    "--quiet",
                ],
                env=env,
                capture_output=True,
                text=True,
                check=False,
            )
            if done.returncode != 0 or not manifest.exists():
                raise RuntimeError(f"dbt parse failed:\n{done.stdout}\n{done.stderr}")
    return manifest


class WfmonDbtTranslator(DagsterDbtTranslator):
    """Groups by folder (``statistics``, ``trends``), one owner, dbt tests as asset checks."""

    def __init__(self) -> None:
        super().__init__(settings=DagsterDbtTranslatorSettings(enable_asset_checks=True))

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        if dbt_resource_props.get("resource_type") == "source":
            return "sync"
        fqn = dbt_resource_props.get("fqn", [])
        return "trends" if "trends" in fqn else "statistics"

    def get_owners(self, dbt_resource_props: Mapping[str, Any]) -> list[str]:
        return list(OWNERS)

    def get_automation_condition(
        self, dbt_resource_props: Mapping[str, Any]
    ) -> dg.AutomationCondition[dg.AssetKey | dg.AssetCheckKey] | None:
        if dbt_resource_props.get("resource_type") != "model":
            return None
        return statistics_follow_sync()


class StatisticsConfig(dg.Config):
    """How the statistics are refreshed."""

    full_recompute: bool = Field(
        default=False,
        description=(
            "Recompute every workflow, project and day instead of those with changed "
            "executions (still a MERGE: nothing is dropped)."
        ),
    )


@dbt_assets(
    manifest=prepare_manifest(dbt_project),
    project=dbt_project,
    dagster_dbt_translator=WfmonDbtTranslator(),
    io_manager_key="wfmon_tables",
    name="statistics_dbt_models",
    op_tags=STATISTICS_REFRESH_TAGS,
)
def statistics_dbt_models(
    context: dg.AssetExecutionContext, config: StatisticsConfig, dbt: WfmonDbtResource
) -> Iterator[Any]:
    """``dbt build`` of the selected models: each MERGEs into its RLS-protected table as
    wfmon_system, then its tests run and are reported as asset checks."""
    args = ["build"]
    if config.full_recompute:
        args += ["--vars", json.dumps({"full_recompute": True})]
    yield from dbt.cli(args, context=context).stream()


@dg.asset_check(
    asset=WORKFLOW_STATISTICS,
    name="statistics_match_executions",
    description=(
        "Every workflow with executions has a statistics row whose run counts equal the "
        "executions' (workflows with executions changed after the row's refresh are skipped: "
        "the next refresh covers them)."
    ),
    blocking=False,
)
def workflow_statistics_match_executions(database: WfmonDatabaseResource) -> dg.AssetCheckResult:
    with database.as_system() as conn:
        rows = statistics.workflow_statistics_mismatches(conn)
        checked = statistics.count_statistics(conn)
    return dg.AssetCheckResult(
        passed=not rows,
        metadata={
            "statistics_rows": int(checked["workflows"]),
            "mismatches": len(rows),
            "mismatch_sample": [dict(r) for r in rows[:10]],
        },
    )


@dg.asset_check(
    asset=PROJECT_STATISTICS,
    name="statistics_match_executions",
    description=(
        "Every project with executions has a statistics row whose execution and failure "
        "counts equal the executions' (projects changed after the refresh are skipped)."
    ),
    blocking=False,
)
def project_statistics_match_executions(database: WfmonDatabaseResource) -> dg.AssetCheckResult:
    with database.as_system() as conn:
        rows = statistics.project_statistics_mismatches(conn)
    return dg.AssetCheckResult(
        passed=not rows,
        metadata={"mismatches": len(rows), "mismatch_sample": [dict(r) for r in rows[:10]]},
    )

"""The Dagster code location: every asset, check, job, sensor, schedule and resource of wfmon.

Assembled in one place; the pieces live in ``assets/``, ``resources/`` and the sibling
modules of this package. Resources default to the ``WFMON_*`` settings (or the embedded
services), resolved when first used, so loading the definitions needs no running service.
Tests call :func:`build_definitions` with their own URLs: they swap configuration, not code.
"""

from __future__ import annotations

import dagster as dg

from assets.executions import discovered_executions, sync_executions
from assets.failures import failure_groups_match_their_days
from assets.statistics import (
    project_statistics_match_executions,
    statistics_dbt_models,
    workflow_statistics_match_executions,
)
from resources import (
    ProjectConnectionsResource,
    TemporalResource,
    WfmonDatabaseResource,
    WfmonDbtResource,
    WfmonTablesIOManager,
)
from wfmon_defs.jobs import refresh_statistics_job, sync_executions_job
from wfmon_defs.schedules import (
    nightly_reconciliation,
    nightly_statistics_recompute,
    statistics_refresh_schedule,
)
from wfmon_defs.sensors import alerts_sensor, new_executions_sensor, statistics_after_sync


def build_definitions(
    *,
    database_url: str | None = None,
    temporal_address: str | None = None,
    temporal_namespace: str | None = None,
) -> dg.Definitions:
    """wfmon's definitions; unset arguments fall back to the ``WFMON_*`` settings."""
    database = WfmonDatabaseResource(url=database_url)
    return dg.Definitions(
        assets=[discovered_executions, sync_executions, statistics_dbt_models],
        asset_checks=[
            workflow_statistics_match_executions,
            project_statistics_match_executions,
            failure_groups_match_their_days,
        ],
        jobs=[sync_executions_job, refresh_statistics_job],
        sensors=[new_executions_sensor, statistics_after_sync, alerts_sensor],
        schedules=[
            statistics_refresh_schedule,
            nightly_reconciliation,
            nightly_statistics_recompute,
        ],
        resources={
            "temporal": TemporalResource(address=temporal_address, namespace=temporal_namespace),
            "database": database,
            "dbt": WfmonDbtResource(database_url=database_url),
            "connections": ProjectConnectionsResource(database=database),
            "wfmon_tables": WfmonTablesIOManager(database=database),
        },
        # Steps of a run share one process: a sync run is two short steps, and a process
        # per step would cost more than the work (Dagster import ~3 s each).
        executor=dg.in_process_executor,
    )


defs = build_definitions()

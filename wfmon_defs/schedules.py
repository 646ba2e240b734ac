"""Schedules: statistics every few minutes; nightly reconciliation of the last two days."""

from datetime import timedelta
from typing import Final

import dagster as dg

from assets.partitions import PARTITION_FORMAT
from wfmon_defs.jobs import (
    RANGE_END_TAG,
    RANGE_START_TAG,
    refresh_statistics_job,
    sync_executions_job,
)

STATISTICS_CRON: Final = "*/5 * * * *"
RECONCILIATION_CRON: Final = "30 2 * * *"
RECOMPUTE_CRON: Final = "0 3 * * *"

statistics_refresh_schedule = dg.ScheduleDefinition(
    name="statistics_refresh_schedule",
    job=refresh_statistics_job,
    cron_schedule=STATISTICS_CRON,
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Incremental statistics refresh (only what changed since the last one).",
)


@dg.schedule(
    name="nightly_reconciliation",
    job=sync_executions_job,
    cron_schedule=RECONCILIATION_CRON,
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description=(
        "Re-discovers the two previous days from visibility and syncs whatever is missing "
        "(one run for the range): catches anything the sensor did not."
    ),
)
def nightly_reconciliation(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    today = context.scheduled_execution_time.date()
    first = (today - timedelta(days=2)).strftime(PARTITION_FORMAT)
    last = (today - timedelta(days=1)).strftime(PARTITION_FORMAT)
    return dg.RunRequest(
        run_key=f"reconcile:{first}:{last}",
        tags={RANGE_START_TAG: first, RANGE_END_TAG: last, "wfmon/reconciliation": "true"},
    )


nightly_statistics_recompute = dg.ScheduleDefinition(
    name="nightly_statistics_recompute",
    job=refresh_statistics_job,
    cron_schedule=RECOMPUTE_CRON,
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    run_config=dg.RunConfig(ops={"statistics_dbt_models": {"config": {"full_recompute": True}}}),
    description="Recomputes every statistics key after the reconciliation (still a MERGE).",
)

"""Failure groups on the data platform: the assets ``failure_group_executions``,
``failure_group_days`` and ``failure_groups`` and their checks.

The three assets are the dbt models of ``dbt_project/models/failures`` (one per model, like
the statistics): they are part of the dbt multi-asset ``statistics_dbt_models``
(``assets/statistics.py`` builds every model of the dbt project), so they carry the same
automation condition (``statistics_follow_sync``) and are refreshed by the same sensor
(``statistics_after_sync``), job (``refresh_statistics_job``), schedule and nightly
recompute as the statistics, in the same ``dbt build``. Each writes its RLS table of
migrations/0410 and 0630 as wfmon_system; its dbt tests are asset checks.

This module adds what a dbt test cannot say simply: a group's totals equal the sum of its
days (the sparkline and the totals tell the same story).
"""

from __future__ import annotations

import dagster as dg

from resources.database import WfmonDatabaseResource
from wfmon.db import failures

FAILURE_GROUPS = dg.AssetKey("failure_groups")
FAILURE_GROUP_DAYS = dg.AssetKey("failure_group_days")


@dg.asset_check(
    asset=FAILURE_GROUPS,
    name="groups_match_their_days",
    description=(
        "Every failure group's failure count equals the sum of its per-day rows (groups "
        "whose days were rebuilt after the group are skipped: the next build covers them)."
    ),
    blocking=False,
)
def failure_groups_match_their_days(database: WfmonDatabaseResource) -> dg.AssetCheckResult:
    with database.as_system() as conn:
        rows = failures.failure_group_mismatches(conn)
        groups = failures.count_failure_groups(conn)
    return dg.AssetCheckResult(
        passed=not rows,
        metadata={
            "groups": groups,
            "mismatches": len(rows),
            "mismatch_sample": [{k: str(v) for k, v in r.items()} for r in rows[:10]],
        },
    )

"""Jobs: sync a day of executions; refresh the statistics."""

from __future__ import annotations

from typing import Final

import dagster as dg

from assets.executions import COMPONENT_EXECUTIONS, DISCOVERED, WORKFLOW_EXECUTIONS
from assets.statistics import statistics_dbt_models
from resources.dbt import STATISTICS_REFRESH_TAGS

#: Partition range tags (a range of days is one run: the assets' backfill policy).
RANGE_START_TAG: Final = "dagster/asset_partition_range_start"
RANGE_END_TAG: Final = "dagster/asset_partition_range_end"

sync_executions_job = dg.define_asset_job(
    "sync_executions_job",
    selection=dg.AssetSelection.assets(DISCOVERED, WORKFLOW_EXECUTIONS, COMPONENT_EXECUTIONS),
    description=(
        "Discover and sync the executions that closed in a day (or a range of days): "
        "visibility -> workflow_executions rows -> coordinator sync -> checks."
    ),
)

refresh_statistics_job = dg.define_asset_job(
    "refresh_statistics_job",
    selection=dg.AssetSelection.assets(statistics_dbt_models),
    tags=STATISTICS_REFRESH_TAGS,
    description="dbt build of the statistics and trend models (incremental MERGE) and their tests.",
)

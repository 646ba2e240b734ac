"""Dagster assets and asset checks of wfmon: the synced execution tables (partitioned by
close day) and the dbt statistics built on them."""

from assets.executions import discovered_executions, sync_executions
from assets.statistics import (
    project_statistics_match_executions,
    statistics_dbt_models,
    workflow_statistics_match_executions,
)

__all__ = [
    "discovered_executions",
    "project_statistics_match_executions",
    "statistics_dbt_models",
    "sync_executions",
    "workflow_statistics_match_executions",
]

"""Shared asset metadata: owners, column schemas of the synced tables."""

from __future__ import annotations

from typing import Final

import dagster as dg

from resources.tables import asset_columns
from wfmon.db.columns import Column

OWNERS: Final = ["team:data-platform"]
SYNC_GROUP: Final = "sync"


def schema(columns: tuple[Column, ...]) -> dg.TableSchema:
    """The Dagster column schema of ``columns`` (names, SQL types, descriptions)."""
    return dg.TableSchema(
        columns=[dg.TableColumn(c.name, c.sql_type, description=c.description) for c in columns]
    )


#: What the execution assets load, described once in :mod:`wfmon.db.columns`.
EXECUTION_COLUMNS: Final = schema(asset_columns("workflow_executions"))
COMPONENT_COLUMNS: Final = schema(asset_columns("component_executions"))

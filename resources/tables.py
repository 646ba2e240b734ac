"""Reading wfmon's tables as pandas DataFrames (what notebooks get from ``load_asset_value``).

Each readable asset is one table read of :mod:`wfmon.db.tables`. Partitioned assets read
the rows whose ``closed_at`` falls in the partition's time window ``[start, end)`` (UTC
days), the same window the sync asset discovers and the same day dbt's trends use.
Histories and payloads (``temporal_history_*``, ``input``/``output``) are left out: they
are large and have their own readers in ``wfmon``.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Final

import pandas as pd

from wfmon.db.columns import Column
from wfmon.db.database import DbConnection
from wfmon.db.tables import TABLE_READS
from wfmon.db.tables import read_table as read_rows

#: Asset key (its last path component) -> the table it reads.
ASSET_TABLES: Final[dict[str, str]] = {
    "discovered_executions": "workflow_executions",
    **{name: name for name in TABLE_READS},
}


def asset_columns(name: str) -> tuple[Column, ...]:
    """The described columns asset ``name`` loads (its Dagster column schema)."""
    columns = TABLE_READS[ASSET_TABLES[name]].columns
    if columns is None:
        raise KeyError(f"{name!r} has no column spec (dbt describes its models)")
    return columns


def read_table(
    conn: DbConnection,
    name: str,
    window: tuple[datetime, datetime] | None = None,
) -> pd.DataFrame:
    """The rows of asset ``name`` visible in ``conn``'s unit of work, as a DataFrame.

    ``window`` is ``[start, end)`` on close time (partitioned assets only). UUID columns
    become strings so that they group and plot directly. Raises :class:`KeyError` for an
    asset that is not a wfmon table.
    """
    try:
        table = ASSET_TABLES[name]
    except KeyError:
        raise KeyError(
            f"{name!r} is not a wfmon table asset (readable: {', '.join(sorted(ASSET_TABLES))})"
        ) from None
    columns, rows = read_rows(conn, table, window)
    frame = pd.DataFrame(rows, columns=columns)
    for column in frame.columns:
        if frame[column].map(lambda v: isinstance(v, uuid.UUID)).any():
            frame[column] = frame[column].map(lambda v: None if v is None else str(v))
    return frame

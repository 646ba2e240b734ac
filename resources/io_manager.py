"""An IO manager whose storage is wfmon's PostgreSQL: assets write their tables themselves,
``load_asset_value`` / downstream inputs read them back as pandas DataFrames."""

from __future__ import annotations

import uuid
from typing import Any

import dagster as dg
import pandas as pd
from pydantic import Field

from resources.database import WfmonDatabaseResource
from resources.tables import read_table


class WfmonTablesIOManager(dg.ConfigurableIOManager):
    """Reads the wfmon table behind an asset (see :mod:`resources.tables`).

    Guarantees: nothing is ever written by this IO manager (the sync and dbt write the
    tables, in their own transactions); a partitioned asset loads exactly the rows whose
    close time lies in the partition's window; reads run as ``wfmon_system`` unless
    ``auth_user_id`` is set, in which case row-level security limits them to what that
    user may see.
    """

    database: WfmonDatabaseResource
    auth_user_id: str | None = Field(
        default=None, description="Read as this end user (auth.uid()) instead of the system."
    )

    def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        if obj is not None and not isinstance(obj, pd.DataFrame):
            raise TypeError(
                f"asset {context.asset_key.to_user_string()} returned {type(obj).__name__}: "
                "wfmon table assets write their rows themselves and return nothing"
            )

    def load_input(self, context: dg.InputContext) -> pd.DataFrame:
        name = context.asset_key.path[-1]
        window = None
        if context.has_asset_partitions:
            tw = context.asset_partitions_time_window
            window = (tw.start, tw.end)
        if self.auth_user_id:
            with self.database.as_user(uuid.UUID(self.auth_user_id)) as conn:
                return read_table(conn, name, window)
        with self.database.as_system() as conn:
            return read_table(conn, name, window)

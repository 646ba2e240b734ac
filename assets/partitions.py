"""Partitions of the execution assets: UTC days of execution close time.

Never one partition per execution: a day holds any number of executions, and the sensor,
the reconciliation schedule and backfills all address days. A partition's window is
``[00:00, 24:00)`` UTC; today's partition exists from the start of the day (end_offset=1),
so executions closing now land in a partition the sensor can request.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import dagster as dg

#: First partition. ``WFMON_PARTITIONS_START`` (YYYY-MM-DD) moves it.
PARTITIONS_START = os.environ.get("WFMON_PARTITIONS_START", "2025-01-01")
PARTITION_FORMAT = "%Y-%m-%d"

execution_close_partitions = dg.DailyPartitionsDefinition(
    start_date=PARTITIONS_START, timezone="UTC", end_offset=1
)

#: Syncing a range of days is one run (one discovery + one batch of syncs), not one per day.
single_run_backfill = dg.BackfillPolicy.single_run()

#: Visibility and the database store microseconds; the discovery window is ``(after, until]``.
ONE_MICROSECOND = timedelta(microseconds=1)


def partition_key_for(closed_at: datetime) -> str:
    """The partition holding an execution that closed at ``closed_at``."""
    return closed_at.astimezone(UTC).strftime(PARTITION_FORMAT)


def discovery_bounds(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    """``(closed_after, closed_until)`` for discovery so that it lists exactly ``[start, end)``."""
    return start - ONE_MICROSECOND, end - ONE_MICROSECOND

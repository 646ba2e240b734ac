"""Multi-row writes in one statement, as PostgreSQL allows them under row-level security.

COPY FROM is refused on tables with row-level security for roles the policies apply to,
so bulk writes send all rows as one JSON array and expand it server-side with
``jsonb_to_recordset``: one statement and one parameter, whatever the row count.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import fields, is_dataclass
from datetime import datetime
from functools import partial
from typing import Any
from uuid import UUID

from psycopg import sql
from psycopg.types.json import Jsonb


def _encode(value: object) -> str:
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, datetime):
        if value.tzinfo is None:
            # A naive time would be read in the session's time zone: refuse to guess.
            raise ValueError(f"timestamp {value.isoformat()} has no time zone")
        return value.isoformat()
    raise TypeError(f"cannot store {type(value).__name__} in a JSON row")


def _shallow(row: Any) -> dict[str, Any]:
    return {f.name: getattr(row, f.name) for f in fields(row)}


def rows_param(rows: Sequence[Any]) -> Jsonb:
    """Dataclass rows as one jsonb array parameter (UUIDs and aware datetimes as text)."""
    # Shallow on purpose: dataclasses.asdict deep-copies every JSON payload, which cost
    # more than the whole insert (measured on 20-component executions).
    plain = [_shallow(r) if is_dataclass(r) and not isinstance(r, type) else r for r in rows]
    return Jsonb(plain, dumps=partial(json.dumps, default=_encode))


def recordset(columns: Mapping[str, str], alias: str = "r") -> sql.Composed:
    """``jsonb_to_recordset(%s) AS alias(col type, ...)`` for the given column -> SQL type."""
    defs = sql.SQL(", ").join(
        sql.SQL("{} {}").format(sql.Identifier(name), sql.SQL(sql_type))
        for name, sql_type in columns.items()
    )
    return sql.SQL("jsonb_to_recordset(%s) AS {}({})").format(sql.Identifier(alias), defs)


def column_list(columns: Mapping[str, str], alias: str | None = None) -> sql.Composed:
    """``col, col, ...`` (qualified with ``alias.`` when given)."""
    if alias is None:
        return sql.SQL(", ").join(sql.Identifier(c) for c in columns)
    return sql.SQL(", ").join(sql.Identifier(alias, c) for c in columns)

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

import orjson
from psycopg import Connection, sql
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


_dumps = partial(json.dumps, default=_encode)


def fast_json(value: object) -> bytes | str:
    """The JSON :func:`rows_param` writes for ``value``, by orjson (~15x faster than
    ``json.dumps`` on a sync's rows: 29 against 454 µs an execution), for values the
    caller knows hold no NaN or infinite float and no naive datetime: orjson writes the
    first as ``null`` and the second without an offset, where ``json.dumps`` writes
    ``NaN`` (which PostgreSQL refuses) and :func:`_encode` refuses the second. PostgreSQL
    stores the same jsonb from either text (``tests/db/test_bulk_json.py``). What orjson
    refuses (an integer beyond 64 bits, a lone surrogate, a key that is not a string) is
    written by ``json.dumps``, as before."""
    try:
        return orjson.dumps(value, default=_encode, option=orjson.OPT_PASSTHROUGH_DATACLASS)
    except orjson.JSONEncodeError:
        return _dumps(value)


def rows_param(rows: Sequence[Any], *, fast: bool = False) -> Jsonb:
    """Dataclass rows as one jsonb array parameter (UUIDs and aware datetimes as text);
    ``fast``: written by :func:`fast_json`, whose conditions the caller vouches for."""
    # Shallow on purpose: dataclasses.asdict deep-copies every JSON payload, which cost
    # more than the whole insert (measured on 20-component executions).
    plain = [_shallow(r) if is_dataclass(r) and not isinstance(r, type) else r for r in rows]
    return Jsonb(plain, dumps=fast_json if fast else _dumps)


def recordset(
    columns: Mapping[str, str], alias: str = "r", param: str | None = None
) -> sql.Composed:
    """``jsonb_to_recordset(%s) AS alias(col type, ...)`` for the given column -> SQL type
    (``%(param)s`` instead of ``%s`` when ``param`` names the parameter)."""
    defs = sql.SQL(", ").join(
        sql.SQL("{} {}").format(sql.Identifier(name), sql.SQL(sql_type))
        for name, sql_type in columns.items()
    )
    placeholder = sql.Placeholder(param) if param else sql.Placeholder()
    return sql.SQL("jsonb_to_recordset({}) AS {}({})").format(
        placeholder, sql.Identifier(alias), defs
    )


def column_list(columns: Mapping[str, str], alias: str | None = None) -> sql.Composed:
    """``col, col, ...`` (qualified with ``alias.`` when given)."""
    if alias is None:
        return sql.SQL(", ").join(sql.Identifier(c) for c in columns)
    return sql.SQL(", ").join(sql.Identifier(alias, c) for c in columns)


# -- the plain-COPY floor (bench/bench_sync.py) -------------------------------------------
#
# What writing a sync's rows costs PostgreSQL at least: the same rows, copied in one
# transaction into tables shaped like the real ones (same columns, defaults and indexes),
# without row-level security, triggers or per-execution statements.


def export_rows(conn: Connection[Any], table: str, key_column: str, keys: Sequence[Any]) -> bytes:
    """``table``'s rows whose ``key_column`` is among ``keys``, in COPY's text format (read
    under the connection's row-level security)."""
    query = sql.SQL("COPY (SELECT * FROM {} WHERE {} = ANY(%s)) TO STDOUT").format(
        sql.Identifier(table), sql.Identifier(key_column)
    )
    out = bytearray()
    with conn.cursor() as cur, cur.copy(query, (list(keys),)) as copy:
        for block in copy:
            out += block
    return bytes(out)


def create_scratch_copy(conn: Connection[Any], table: str, scratch: str) -> None:
    """An empty table ``scratch`` like ``table`` (columns, defaults, indexes; no policies,
    triggers or foreign keys)."""
    conn.execute(
        sql.SQL("CREATE TABLE {} (LIKE {} INCLUDING ALL)").format(
            sql.Identifier(scratch), sql.Identifier(table)
        )
    )


def copy_rows_into(conn: Connection[Any], table: str, data: bytes) -> None:
    """COPY ``data`` (COPY text format) into ``table``."""
    query = sql.SQL("COPY {} FROM STDIN").format(sql.Identifier(table))
    with conn.cursor() as cur, cur.copy(query) as copy:
        copy.write(data)


def drop_table(conn: Connection[Any], table: str) -> None:
    """Drop ``table`` if it exists."""
    conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(table)))


def set_autovacuum(conn: Connection[Any], table: str, enabled: bool) -> None:
    """Turn autovacuum of ``table`` (and its TOAST table) on or off (the table's owner)."""
    conn.execute(
        sql.SQL(
            "ALTER TABLE {} SET (autovacuum_enabled = {}, toast.autovacuum_enabled = {})"
        ).format(sql.Identifier(table), sql.Literal(enabled), sql.Literal(enabled))
    )


def vacuum_analyze(conn: Connection[Any], tables: Sequence[str]) -> None:
    """``VACUUM (ANALYZE)`` of ``tables`` (an autocommit connection of their owner)."""
    conn.execute(
        sql.SQL("VACUUM (ANALYZE) {}").format(sql.SQL(", ").join(map(sql.Identifier, tables)))
    )

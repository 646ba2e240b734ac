"""What an export contains: formats, and each kind's fields with their export types.

The fields come from :data:`wfmon.db.export.KINDS` (the one column definition); this module
only says how each SQL type is written:

=============  ===========  ==========================  =================================
SQL type       export type  CSV / JSON Lines            Parquet
=============  ===========  ==========================  =================================
uuid           uuid         text ``8-4-4-4-12``         string
text           string       text                        string
timestamptz    timestamp    ISO 8601, UTC (``+00:00``)  timestamp[us, tz=UTC]
integer        int64        decimal                     int64
bigint         int64        decimal                     int64
boolean        bool         ``true`` / ``false``        bool
jsonb          json         JSON text (JSONL: nested)   string (JSON text)
=============  ===========  ==========================  =================================
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final, Literal

import pyarrow as pa

from wfmon.db.export import EXPORT_KINDS, KINDS, ExportKind

ExportType = Literal["uuid", "string", "timestamp", "int64", "bool", "json"]

#: SQL type (as :mod:`wfmon.db.columns` writes it) -> export type.
EXPORT_TYPES: Final[dict[str, ExportType]] = {
    "uuid": "uuid",
    "text": "string",
    "timestamptz": "timestamp",
    "integer": "int64",
    "bigint": "int64",
    "boolean": "bool",
    "jsonb": "json",
}

#: Export type -> Parquet (Arrow) type.
ARROW_TYPES: Final[dict[ExportType, pa.DataType]] = {
    "uuid": pa.string(),
    "string": pa.string(),
    "timestamp": pa.timestamp("us", tz="UTC"),
    "int64": pa.int64(),
    "bool": pa.bool_(),
    "json": pa.string(),
}


class ExportFormat(StrEnum):
    """A file format an export is written in."""

    CSV = "csv"
    JSONL = "jsonl"
    PARQUET = "parquet"


#: ``Content-Type`` of each format.
MEDIA_TYPES: Final[dict[ExportFormat, str]] = {
    ExportFormat.CSV: "text/csv; charset=utf-8",
    ExportFormat.JSONL: "application/x-ndjson",
    ExportFormat.PARQUET: "application/vnd.apache.parquet",
}


class Kind(StrEnum):
    """What is exported (the values of :data:`wfmon.db.export.EXPORT_KINDS`)."""

    EXECUTIONS = "executions"
    COMPONENTS = "components"
    ATTEMPTS = "attempts"


assert tuple(k.value for k in Kind) == EXPORT_KINDS


@dataclass(frozen=True)
class Field:
    """One exported column."""

    name: str
    type: ExportType
    sql_type: str
    description: str


def fields_of(kind: ExportKind) -> tuple[Field, ...]:
    """The columns an export of ``kind`` writes, in order."""
    return tuple(
        Field(c.name, EXPORT_TYPES[c.sql_type], c.sql_type, c.description)
        for c in KINDS[kind].columns
    )


def arrow_schema(fields: tuple[Field, ...]) -> pa.Schema:
    """The Parquet schema of ``fields``; JSON columns say so in their field metadata."""
    return pa.schema(
        [
            pa.field(
                f.name,
                ARROW_TYPES[f.type],
                nullable=True,
                metadata={"wfmon.type": f.type, "description": f.description},
            )
            for f in fields
        ]
    )


def markdown_table(kind: ExportKind) -> str:
    """The user guide's column table of ``kind`` (docs/user-guide/export.md)."""
    lines = ["| column | type | Parquet | description |", "|---|---|---|---|"]
    for f in fields_of(kind):
        lines.append(f"| `{f.name}` | {f.type} | {ARROW_TYPES[f.type]} | {f.description} |")
    return "\n".join(lines)

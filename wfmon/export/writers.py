"""Streaming writers: CSV, JSON Lines and Parquet, one batch of rows at a time.

Exports use :func:`export_copy_chunks`: the rows come from PostgreSQL's COPY
(:func:`wfmon.db.export.iter_export_copy`) of the plain values. CSV and JSON Lines are
built from COPY's text format with Arrow (:mod:`wfmon.export.copy_text`); Parquet from
COPY's CSV (pyarrow's CSV reader, then :class:`pyarrow.parquet.ParquetWriter`). The
row-by-row writers below write the same files from row tuples; tests compare the two.

A writer is opened on a binary sink (a file, or :class:`ChunkSink` for an HTTP stream),
takes batches of row tuples in the order of its fields (what
:func:`wfmon.db.export.iter_export_batches` yields) and holds nothing between batches
but what the format needs (Parquet: the row-group metadata for the footer). So memory is
bounded by one batch, whatever the number of rows.

- CSV (stdlib :mod:`csv`, RFC 4180 quoting, ``\\r\\n`` line ends): a header line, then
  one line per row; NULL is an empty field; timestamps ISO 8601 in UTC; booleans
  ``true``/``false``; JSON columns as JSON text.
- JSON Lines: one JSON object per line, keys in field order; NULL is ``null``; timestamps
  ISO 8601 strings in UTC (the fraction without trailing zeros, as PostgreSQL's
  ``to_json`` writes them); UUIDs strings; JSON columns nested as JSON values.
- Parquet (:mod:`pyarrow.parquet`): the kind's explicit schema
  (:func:`wfmon.export.schema.arrow_schema`), one row group per batch.

A file is complete only when :meth:`Writer.close` returned: a Parquet file has no footer
before it, and a CSV or JSON Lines file cut short ends in the middle of a batch.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import datetime
from json.encoder import encode_basestring
from typing import Any, Final, Protocol

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
from psycopg.abc import Buffer

from wfmon.db.export import CopyBatch, CopyFormat
from wfmon.export.copy_text import CopyTextLines, csv_lines, json_lines
from wfmon.export.schema import ExportFormat, Field, arrow_schema

Row = Sequence[Any]


class Sink(Protocol):
    """Where a writer writes: a binary file, or a :class:`ChunkSink`."""

    def write(self, data: bytes, /) -> Any: ...


class Writer(Protocol):
    """Writes one export file to its sink, batch by batch."""

    def write_batch(self, rows: Sequence[Row]) -> None: ...

    def close(self) -> None:
        """Finish the file (Parquet: the footer). The sink itself stays open."""
        ...


def _iso(value: Any) -> str:
    text: str = value.isoformat()
    return text


class CsvWriter:
    def __init__(self, sink: Sink, fields: Sequence[Field]) -> None:
        self._sink = sink
        self._timestamps = [i for i, f in enumerate(fields) if f.type == "timestamp"]
        self._bools = [i for i, f in enumerate(fields) if f.type == "bool"]
        self._buffer = io.StringIO()
        self._csv = csv.writer(self._buffer, lineterminator="\r\n")
        self._csv.writerow([f.name for f in fields])
        self._flush()

    def _flush(self) -> None:
        self._sink.write(self._buffer.getvalue().encode("utf-8"))
        self._buffer.seek(0)
        self._buffer.truncate()

    def _rows(self, rows: Sequence[Row]) -> Iterator[Row]:
        timestamps, bools = self._timestamps, self._bools
        for row in rows:
            r = list(row)
            for i in timestamps:
                v = r[i]
                if v is not None:
                    r[i] = v.isoformat()
            for i in bools:
                v = r[i]
                if v is not None:
                    r[i] = "true" if v else "false"
            yield r

    def write_batch(self, rows: Sequence[Row]) -> None:
        self._csv.writerows(self._rows(rows))
        self._flush()

    def close(self) -> None:
        self._flush()


def _json_timestamp(value: datetime) -> str:
    """PostgreSQL's ``to_json`` of a timestamptz in a UTC session: ``isoformat()`` with the
    fraction's trailing zeros dropped (what the COPY export writes, see
    :data:`wfmon.db.export.CopyFormat`)."""
    text = value.isoformat()
    if len(text) > 26 and text[19] == ".":  # YYYY-MM-DDTHH:MM:SS.ffffff+00:00
        text = text[:20] + text[20:26].rstrip("0") + text[26:]
    return '"' + text + '"'


def _json_value(type_: str) -> Callable[[Any], str]:
    if type_ in ("uuid", "string"):
        encode: Callable[[Any], str] = encode_basestring
        return encode
    if type_ == "timestamp":
        return _json_timestamp
    if type_ == "int64":
        return str
    if type_ == "bool":
        return lambda v: "true" if v else "false"
    if type_ == "json":
        return lambda v: v  # already JSON text (jsonb::text), one line
    raise ValueError(f"no JSON encoding for export type {type_!r}")


class JsonLinesWriter:
    def __init__(self, sink: Sink, fields: Sequence[Field]) -> None:
        self._sink = sink
        self._prefixes = [
            ("{" if i == 0 else ",") + encode_basestring(f.name) + ":" for i, f in enumerate(fields)
        ]
        self._encoders = [_json_value(f.type) for f in fields]

    def write_batch(self, rows: Sequence[Row]) -> None:
        prefixes, encoders = self._prefixes, self._encoders
        lines = [
            "".join(
                [
                    p + ("null" if v is None else e(v))
                    for p, e, v in zip(prefixes, encoders, row, strict=True)
                ]
            )
            + "}\n"
            for row in rows
        ]
        self._sink.write("".join(lines).encode("utf-8"))

    def close(self) -> None:
        pass


class ParquetWriter:
    def __init__(self, sink: Sink, fields: Sequence[Field]) -> None:
        self._schema = arrow_schema(tuple(fields))
        self._types = [f.type for f in self._schema]
        self._writer = pq.ParquetWriter(sink, self._schema, compression="snappy")

    def write_batch(self, rows: Sequence[Row]) -> None:
        if not rows:
            return
        columns = list(zip(*rows, strict=True))
        arrays = [pa.array(col, type=t) for col, t in zip(columns, self._types, strict=True)]
        self._writer.write_batch(pa.RecordBatch.from_arrays(arrays, schema=self._schema))

    def close(self) -> None:
        self._writer.close()


_WRITERS: dict[ExportFormat, Callable[[Sink, Sequence[Field]], Writer]] = {
    ExportFormat.CSV: CsvWriter,
    ExportFormat.JSONL: JsonLinesWriter,
    ExportFormat.PARQUET: ParquetWriter,
}


def open_writer(fmt: ExportFormat, sink: Sink, fields: Sequence[Field]) -> Writer:
    """A writer of ``fmt`` on ``sink`` for rows of ``fields``."""
    return _WRITERS[ExportFormat(fmt)](sink, fields)


class ChunkSink(io.RawIOBase):
    """A binary sink that keeps what was written until :meth:`take` hands it out."""

    def __init__(self) -> None:
        super().__init__()
        self._parts: list[bytes] = []
        self._position = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        self._parts.append(chunk)
        self._position += len(chunk)
        return len(chunk)

    def tell(self) -> int:
        return self._position

    def take(self) -> bytes:
        data = b"".join(self._parts)
        self._parts.clear()
        return data


def export_chunks(
    fmt: ExportFormat,
    fields: Sequence[Field],
    batches: Iterable[Sequence[Row]],
    *,
    on_batch: Callable[[int], None] | None = None,
) -> Iterator[bytes]:
    """The bytes of a whole export file, one chunk per batch (the last one after the
    file is finished). If ``batches`` raises, so does this, before the file is complete."""
    sink = ChunkSink()
    writer = open_writer(fmt, sink, fields)
    for batch in batches:
        writer.write_batch(batch)
        if on_batch is not None:
            on_batch(len(batch))
        chunk = sink.take()
        if chunk:
            yield chunk
    writer.close()
    chunk = sink.take()
    if chunk:
        yield chunk


# -- rows PostgreSQL formatted (COPY) ---------------------------------------------------------

#: The :data:`wfmon.db.export.CopyFormat` each export format reads.
COPY_FORMATS: Final[dict[ExportFormat, CopyFormat]] = {
    ExportFormat.CSV: "text",
    ExportFormat.JSONL: "text",
    ExportFormat.PARQUET: "arrow",
}


def csv_header(fields: Sequence[Field]) -> bytes:
    """The CSV header line (what :mod:`csv` writes, ``\\r\\n``-terminated)."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow([f.name for f in fields])
    return buffer.getvalue().encode("utf-8")


class _ArrowCsv:
    """Batches of COPY CSV rows (:data:`CopyFormat` ``arrow``) -> Arrow tables of the
    kind's schema, parsed by :mod:`pyarrow.csv` (C++; NULL an empty unquoted field, ``""``
    an empty string; values may hold newlines)."""

    def __init__(self, fields: Sequence[Field]) -> None:
        self.schema = arrow_schema(tuple(fields))
        # One thread: the other core is PostgreSQL's, which formats the rows meanwhile
        # (measured: threads cost more CPU per row for the same file).
        self._read = pa_csv.ReadOptions(column_names=self.schema.names, use_threads=False)
        self._parse = pa_csv.ParseOptions(newlines_in_values=True)
        self._convert = pa_csv.ConvertOptions(
            column_types={f.name: f.type for f in self.schema},
            null_values=[""],
            strings_can_be_null=True,
            quoted_strings_can_be_null=False,
            true_values=["t"],
            false_values=["f"],
            timestamp_parsers=[pa_csv.ISO8601],
        )

    def table(self, rows: Sequence[Buffer]) -> pa.Table:
        data = pa.py_buffer(b"".join(rows))
        table = pa_csv.read_csv(
            pa.BufferReader(data),
            read_options=self._read,
            parse_options=self._parse,
            convert_options=self._convert,
        )
        return pa.Table.from_arrays(table.columns, schema=self.schema)


def export_copy_chunks(
    fmt: ExportFormat,
    fields: Sequence[Field],
    batches: Iterable[CopyBatch],
    *,
    on_batch: Callable[[int], None] | None = None,
) -> Iterator[bytes]:
    """The bytes of a whole export file from batches of rows PostgreSQL formatted as
    ``COPY_FORMATS[fmt]`` (:func:`wfmon.db.export.iter_export_copy`), one chunk per batch
    (the last one after the file is finished); the same file :func:`export_chunks` writes
    from row tuples. If ``batches`` raises, so does this, before the file is complete."""
    fmt = ExportFormat(fmt)
    if fmt is ExportFormat.PARQUET:
        yield from _parquet_chunks(fields, batches, on_batch)
    elif fmt is ExportFormat.JSONL:
        yield from _text_chunks(json_lines(fields), b"", batches, on_batch)
    else:
        yield from _text_chunks(csv_lines(fields), csv_header(fields), batches, on_batch)


def _text_chunks(
    lines: CopyTextLines,
    header: bytes,
    batches: Iterable[CopyBatch],
    on_batch: Callable[[int], None] | None,
) -> Iterator[bytes]:
    # The header goes out with the first batch: the first chunk is the query's first rows.
    for batch in batches:
        chunk, rows = lines.lines(batch.parts)
        if on_batch is not None:
            on_batch(rows)
        if header:
            chunk, header = header + chunk, b""
        yield chunk
    if header:
        yield header


def _parquet_chunks(
    fields: Sequence[Field],
    batches: Iterable[CopyBatch],
    on_batch: Callable[[int], None] | None,
) -> Iterator[bytes]:
    arrow = _ArrowCsv(fields)
    sink = ChunkSink()
    writer = pq.ParquetWriter(sink, arrow.schema, compression="snappy")
    for batch in batches:
        table = arrow.table(batch.parts)
        writer.write_table(table, row_group_size=max(1, table.num_rows))
        if on_batch is not None:
            on_batch(table.num_rows)
        chunk = sink.take()
        if chunk:
            yield chunk
    writer.close()
    chunk = sink.take()
    if chunk:
        yield chunk

"""CSV and JSON Lines built with Arrow from rows of COPY's text format.

PostgreSQL sends the plain values (:data:`wfmon.db.export.CopyFormat` ``text``:
tab-separated, NULL ``\\N``, backslash escapes, no quoting), which costs it least;
:mod:`pyarrow.csv` reads a batch of them as text columns, and each line is joined column by
column with Arrow's compute functions (C++, one call per column and batch, not per row).
The files are byte for byte what :class:`wfmon.export.writers.CsvWriter` and
:class:`~wfmon.export.writers.JsonLinesWriter` write from row tuples
(tests/api/test_export.py compares them on awkward values).

Most texts need no per-row work: COPY's escapes (``\\\\ \\b \\f \\n \\r \\t``) are JSON's too,
and a CSV field needs quoting only when it holds ``,``, ``"`` or a line break. The few
that need more (a quote, a control character, non-ASCII in JSON; a comma, a quote or an
escape in CSV) go through Python, value by value.

No Python value is converted to Arrow here (no ``pa.scalar``, ``pa.array``, nor a ``str``
passed to a compute function): pyarrow imports pandas on its first such conversion
(apache/arrow#34994), 1.3 s on the first export of each process. Constants and fixed
values are built from their bytes (:func:`_texts`, :func:`_fixed_width`) instead.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from functools import cache
from json.encoder import encode_basestring
from typing import Any, Final

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
from psycopg.abc import Buffer

from wfmon.export.schema import ExportType, Field

Encode = Callable[[pa.Array], pa.Array]

#: COPY's text-format escapes and what they stand for (it writes no others).
_COPY_ESCAPES: Final = {
    "\\": "\\",
    "b": "\b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "v": "\v",
}
_COPY_ESCAPE: Final = re.compile(r"\\(.)")


def _copy_text(value: str) -> str:
    """The text a value of COPY's text format stands for."""
    return _COPY_ESCAPE.sub(lambda m: _COPY_ESCAPES[m.group(1)], value)


_STRING: Final = pa.string()
_BINARY: Final = pa.binary()


def _texts(values: Sequence[str], type: pa.DataType = _STRING) -> pa.Array:
    """``values`` as an Arrow string (or binary) array, built from their UTF-8 bytes."""
    data = [v.encode("utf-8") for v in values]
    offsets = np.zeros(len(data) + 1, np.int32)
    np.cumsum([len(d) for d in data], out=offsets[1:])
    return pa.Array.from_buffers(
        type, len(data), [None, pa.py_buffer(offsets), pa.py_buffer(b"".join(data))]
    )


@cache
def _text(value: str, type: pa.DataType = _STRING) -> pa.Scalar:
    """``value`` as an Arrow string (or binary) scalar."""
    return _texts([value], type)[0]


def _fixed_width(type: pa.DataType, value: bytes) -> pa.Scalar:
    """The scalar of a fixed-width ``type`` whose value is the bytes ``value``."""
    return pa.Array.from_buffers(type, 1, [None, pa.py_buffer(value)])[0]


_FALSE: Final = _fixed_width(pa.bool_(), b"\x00")


def _contains_any(column: pa.Array, needles: Sequence[str]) -> pa.Array:
    found = pc.match_substring(column, needles[0])
    for needle in needles[1:]:
        found = pc.or_(found, pc.match_substring(column, needle))
    return found


def _fix(column: pa.Array, needs: pa.Array, fix: Callable[[str], str]) -> pa.Array:
    """``column`` with ``fix`` applied (in Python) to the values where ``needs`` is true."""
    needs = needs.fill_null(_FALSE)
    if not pc.any(needs).as_py():
        return column
    fixed = [fix(s) for s in column.filter(needs).to_pylist()]
    return pc.replace_with_mask(column, needs, _texts(fixed))


#: A timestamp of a whole second in PostgreSQL's ISO text (``2026-12-01 10:00:00+00``).
_WHOLE_SECOND_LENGTH: Final = _fixed_width(pa.int32(), np.int32(22).tobytes())


def _iso_timestamps(column: pa.Array, *, full_fraction: bool) -> pa.Array:
    """PostgreSQL's ISO text in UTC (``2026-12-01 10:00:00.25+00``; the fraction without
    trailing zeros, none on a whole second) as ``2026-12-01T10:00:00.25+00:00``, or with
    ``full_fraction`` as ``datetime.isoformat()`` writes it (``...10:00:00.250000+00:00``)."""
    # Fixed positions (the space at 10, "+00" at the end), as bytes: slicing by position
    # costs a third of searching for the space.
    text = column.view(pa.binary())
    body = pc.binary_replace_slice(pc.binary_slice(text, 0, -3), 10, 11, b"T")
    if full_fraction:
        whole = pc.equal(pc.binary_length(text), _WHOLE_SECOND_LENGTH)
        padded = pc.ascii_rpad(body.view(pa.string()), 26, "0").view(pa.binary())
        body = pc.if_else(whole, body, padded)
    return pc.binary_join_element_wise(body, _text("+00:00", _BINARY), _text("", _BINARY)).view(
        pa.string()
    )


def _bools(column: pa.Array) -> pa.Array:
    return pc.if_else(pc.equal(column, _text("t")), _text("true"), _text("false"))


def _as_is(column: pa.Array) -> pa.Array:
    return column


def _json_text(column: pa.Array) -> pa.Array:
    # jsonb::text holds no control characters: COPY's only escape in it is "\\".
    return pc.replace_substring(column, "\\\\", "\\")


# -- JSON Lines -------------------------------------------------------------------------------


def _json_string_insides(column: pa.Array) -> pa.Array:
    # Printable ASCII without a quote or "\v" (COPY's escape, not JSON's) already is the
    # inside of a JSON string; checked with three cheap scans (~0.05 µs a value against
    # 0.13 for one regular expression).
    needs = pc.or_(_contains_any(column, ['"', "\\v"]), pc.invert(pc.ascii_is_printable(column)))
    return _fix(column, needs, lambda s: encode_basestring(_copy_text(s))[1:-1])


#: Per export type: whether its JSON is a string, and the string's inside (or the JSON).
_JSON: Final[dict[ExportType, tuple[bool, Encode]]] = {
    "string": (True, _json_string_insides),
    "uuid": (True, _as_is),
    "timestamp": (True, lambda c: _iso_timestamps(c, full_fraction=False)),
    "int64": (False, _as_is),
    "bool": (False, _bools),
    "json": (False, _json_text),
}


# -- CSV --------------------------------------------------------------------------------------


def _csv_field(text: str) -> str:
    """``text`` as :mod:`csv` writes a field (``QUOTE_MINIMAL``, ``\\r\\n`` line ends)."""
    if any(c in text for c in ',"\r\n'):
        return '"' + text.replace('"', '""') + '"'
    return text


def _csv_strings(column: pa.Array) -> pa.Array:
    return _fix(
        column, _contains_any(column, ["\\", '"', ","]), lambda s: _csv_field(_copy_text(s))
    )


def _doubled_quotes(column: pa.Array) -> pa.Array:
    """``column`` with each ``"`` written twice (CSV's escape inside a quoted field).

    numpy moves the bytes in one scatter: ~0.4 µs a 160-byte JSON value against ~0.7 for
    ``pc.replace_substring``, which handles each of its ~20 quotes on its own."""
    n = len(column)
    offsets = np.frombuffer(column.buffers()[1], np.int32, n + 1, 4 * column.offset)
    start, end = int(offsets[0]), int(offsets[-1])
    if column.offset or end == start:
        return pc.replace_substring(column, '"', '""')
    data = np.frombuffer(column.buffers()[2], np.uint8, end - start, start)
    quotes = np.flatnonzero(data == ord('"'))
    if not len(quotes):
        return column
    # A value moves right by the quotes before it; the k-th quote (from 0) lands at
    # quote + k and its copy at quote + k + 1.
    starts = offsets - start
    new_offsets = (starts + np.searchsorted(quotes, starts)).astype(np.int32)
    doubled = np.full(len(data) + len(quotes), ord('"'), np.uint8)
    kept = np.ones(len(doubled), bool)
    kept[quotes + np.arange(1, len(quotes) + 1)] = False
    doubled[kept] = data
    return pa.StringArray.from_buffers(
        n, pa.py_buffer(new_offsets), pa.py_buffer(doubled), column.buffers()[0], column.null_count
    )


def _csv_json(column: pa.Array) -> pa.Array:
    text = _json_text(column)
    quoted = pc.binary_join_element_wise(_text('"'), _doubled_quotes(text), _text('"'), _text(""))
    needs = _contains_any(text, ['"', ","])
    if pc.all(needs).as_py():  # objects and arrays of strings: the usual case
        return quoted
    return pc.if_else(needs, quoted, text)


_CSV: Final[dict[ExportType, Encode]] = {
    "string": _csv_strings,
    "uuid": _as_is,
    "timestamp": lambda c: _iso_timestamps(c, full_fraction=True),
    "int64": _as_is,
    "bool": _bools,
    "json": _csv_json,
}


# -- lines ------------------------------------------------------------------------------------


class CopyTextLines:
    """Batches of COPY text-format rows of ``fields`` -> the lines of one file format."""

    def __init__(self, fields: Sequence[Field], join: Callable[[pa.RecordBatch], pa.Array]):
        self._names = [f.name for f in fields]
        # Tab-separated, no quoting; escapes are kept as they are (the encoders read them).
        self._parse = pa_csv.ParseOptions(delimiter="\t", quote_char=False, escape_char=False)
        self._convert = pa_csv.ConvertOptions(
            column_types={n: pa.string() for n in self._names},
            null_values=["\\N"],
            strings_can_be_null=True,
        )
        self._join = join

    def lines(self, rows: Sequence[Buffer]) -> tuple[bytes, int]:
        """The lines of ``rows`` (each with its line end) and how many there are."""
        data = b"".join(rows)
        # One block: the batch becomes one record batch, so each compute call runs once.
        read = pa_csv.ReadOptions(
            column_names=self._names, use_threads=False, block_size=len(data) + 1
        )
        table = pa_csv.read_csv(
            pa.BufferReader(pa.py_buffer(data)),
            read_options=read,
            parse_options=self._parse,
            convert_options=self._convert,
        )
        parts = [_string_bytes(self._join(batch)) for batch in table.to_batches()]
        return (parts[0] if len(parts) == 1 else b"".join(parts)), table.num_rows


def json_lines(fields: Sequence[Field]) -> CopyTextLines:
    """JSON Lines: one object per row, keys in field order (``JsonLinesWriter``'s bytes)."""
    keys = [
        ("{" if i == 0 else ",") + encode_basestring(f.name) + ":" for i, f in enumerate(fields)
    ]
    types = [_JSON[f.type] for f in fields]

    def join(batch: pa.RecordBatch) -> pa.Array:
        # The text between values (keys, quotes) is constant; a string column without
        # nulls has its quotes in that text.
        pieces: list[Any] = []
        text = ""
        for key, (is_string, inside), column in zip(keys, types, batch.columns, strict=True):
            value = inside(column)
            if is_string and column.null_count == 0:
                pieces += [_text(text + key + '"'), value]
                text = '"'
                continue
            if is_string:
                value = pc.binary_join_element_wise(_text('"'), value, _text('"'), _text(""))
            pieces += [
                _text(text + key),
                value.fill_null(_text("null")) if value.null_count else value,
            ]
            text = ""
        return pc.binary_join_element_wise(*pieces, _text(text + "}\n"), _text(""))

    return CopyTextLines(fields, join)


def csv_lines(fields: Sequence[Field]) -> CopyTextLines:
    """CSV rows without the header (``CsvWriter``'s bytes): NULL an empty field."""
    encoders = [_CSV[f.type] for f in fields]

    def join(batch: pa.RecordBatch) -> pa.Array:
        pieces: list[Any] = []
        for encode, column in zip(encoders, batch.columns, strict=True):
            value = encode(column)
            pieces += [value.fill_null(_text("")) if value.null_count else value, _text(",")]
        pieces[-1] = _text("\r\n")
        return pc.binary_join_element_wise(*pieces, _text(""))

    return CopyTextLines(fields, join)


def _string_bytes(strings: pa.Array) -> bytes:
    """The bytes of ``strings`` (no nulls) one after the other, as Arrow holds them."""
    offsets = memoryview(strings.buffers()[1]).cast("i")
    start, end = offsets[strings.offset], offsets[strings.offset + len(strings)]
    data: bytes = strings.buffers()[2][start:end].to_pybytes()
    return data

"""The CSV and JSON Lines encoders' array functions against Arrow's own, on edge cases the
exports' byte-for-byte test (tests/api/test_export.py) may not reach."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from wfmon.export.copy_text import _doubled_quotes, _iso_timestamps, _texts

QUOTED = [
    ['{"a": "b"}', None, "", '"', '""', "no quotes", '{"x": [1, "\\"y\\""]}', None],
    ["plain", "", None],
    [None, None],
    ['"' * 100, 'é"✓"𝄞'],
    [],
]


@pytest.mark.parametrize("values", QUOTED)
def test_doubled_quotes_is_replace_substring(values: list[str | None]) -> None:
    column = pa.array(values, pa.string())
    want = pc.replace_substring(column, '"', '""')
    got = _doubled_quotes(column)
    assert got.equals(want)
    assert got.null_count == column.null_count
    # A slice (non-zero offset) of the same values.
    if len(values) > 1:
        assert _doubled_quotes(column[1:]).equals(want[1:])


def test_iso_timestamps_whole_seconds_fractions_and_nulls() -> None:
    column = pa.array(
        [
            "2026-12-01 10:00:00+00",
            "2026-12-01 10:00:00.25+00",
            "2026-12-01 10:00:00.000007+00",
            None,
            "0099-01-02 03:04:05.5+00",
        ],
        pa.string(),
    )
    assert _iso_timestamps(column, full_fraction=True).to_pylist() == [
        "2026-12-01T10:00:00+00:00",
        "2026-12-01T10:00:00.250000+00:00",
        "2026-12-01T10:00:00.000007+00:00",
        None,
        "0099-01-02T03:04:05.500000+00:00",
    ]
    assert _iso_timestamps(column, full_fraction=False).to_pylist() == [
        "2026-12-01T10:00:00+00:00",
        "2026-12-01T10:00:00.25+00:00",
        "2026-12-01T10:00:00.000007+00:00",
        None,
        "0099-01-02T03:04:05.5+00:00",
    ]


@pytest.mark.parametrize("values", [[], [""], ["a", "", "é✓𝄞", "x" * 1000]])
def test_texts_built_from_bytes_are_arrows_own(values: list[str]) -> None:
    assert _texts(values).equals(pa.array(values, pa.string()))
    assert _texts(values, pa.binary()).equals(pa.array([v.encode() for v in values], pa.binary()))


# COPY text rows (tab-separated, "\N" NULL) for CSV and JSON Lines, COPY CSV for Parquet:
# each export type, a NULL, and values that take the per-value Python path.
_FIRST_EXPORT = textwrap.dedent(
    r"""
    import sys
    from wfmon.db.export import EXPORT_KINDS, CopyBatch
    from wfmon.export.schema import ExportFormat, fields_of
    from wfmon.export.writers import export_copy_chunks

    TEXT = {"string": 'a "q", b\\tc é', "uuid": "6f1c9d1e-0000-4000-8000-000000000001",
            "timestamp": "2026-12-01 10:00:00.25+00", "int64": "3", "bool": "t",
            "json": '{"a": "x,y", "b": [1, 2]}'}
    CSV = {**TEXT, "string": '"a ""q"", b"', "json": '"{""a"": 1}"'}
    for kind in EXPORT_KINDS:
        fields = fields_of(kind)
        for fmt in ExportFormat:
            parquet = fmt is ExportFormat.PARQUET
            values, sep, null = (CSV, ",", "") if parquet else (TEXT, "\t", "\\N")
            row = sep.join(null if i % 3 == 0 else values[f.type] for i, f in enumerate(fields))
            batch = CopyBatch([(row + "\n").encode()] * 3, 3)
            assert b"".join(export_copy_chunks(fmt, fields, [batch])), (kind, fmt)
    print("pandas" in sys.modules)
    """
)


def test_the_first_export_of_a_process_does_not_import_pandas() -> None:
    """pyarrow imports pandas (1.3 s) on its first conversion of a Python value; an export
    makes none, so the first one in an app process costs what the others do."""
    done = subprocess.run(
        [sys.executable, "-c", _FIRST_EXPORT], capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "False"

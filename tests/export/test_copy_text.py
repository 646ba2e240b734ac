"""The CSV and JSON Lines encoders' array functions against Arrow's own, on edge cases the
exports' byte-for-byte test (tests/api/test_export.py) may not reach."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from wfmon.export.copy_text import _doubled_quotes, _iso_timestamps

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

"""``fast_json`` (orjson) gives PostgreSQL the same jsonb as ``json.dumps``, and the payload
decoder says when a value may hold what orjson would write differently (NaN, Infinity).

The sync writes its rows with ``wfmon.db.bulk.fast_json`` when the history reader found no
payload that may hold a NaN or an infinite float. These tests compare, in a real
PostgreSQL, the jsonb stored from each writer's text on awkward values, and check the
decoder's test for non-finite numbers against Python's own ``json.loads``.
"""

from __future__ import annotations

import json
import random
import uuid
from datetime import UTC, datetime, timedelta, timezone
from enum import StrEnum
from typing import Any

import psycopg
import pytest
from temporalio.api.common.v1 import Payload
from temporalio.converter import DataConverter, DefaultPayloadConverter

from wfmon.db import Database
from wfmon.db.bulk import _dumps, fast_json
from wfmon.history.payloads import _NON_FINITE_TEXT, PayloadDecoder


class Colour(StrEnum):
    RED = "red"


_rng = random.Random(15)
FLOATS = [
    0.1, 0.30000000000000004, 1.0, 100.0, 1e15, 1e16, 1e22, 1.5e-7, 1e-5, 0.0001, -0.0, 5e-324,
    1.7976931348623157e308, 2.0**53 + 2, 123456789.123456789, -2.5,
    *(_rng.uniform(-1e6, 1e6) for _ in range(300)),
    *(_rng.random() * 10.0 ** _rng.randint(-300, 300) for _ in range(300)),
]  # fmt: skip
INTS = [0, -1, 2**53 + 1, 2**63 - 1, -(2**63), 2**64 - 1, 2**64, 2**70, -(2**80)]
STRINGS = [
    "", "plain", 'quote " and \\ slash', "tab\tnew\nline\r", "\x01\x1f\x7f", "é ü ß ∑ 中文",
    "emoji 🎉", "\u2028\u2029", "</script>", "NaN", "Infinity",
]  # fmt: skip
VALUES: list[Any] = [
    *FLOATS,
    *INTS,
    *STRINGS,
    None,
    True,
    False,
    [],
    {},
    {"nested": {"list": [1, 2.5, "x", None, {"deep": [[], {}]}], "k": {"": ""}}},
    {"é": 1, "key with space": [True]},
    [FLOATS[:20], INTS, STRINGS],
    datetime(2026, 12, 2, 5, 8, tzinfo=UTC),
    datetime(2026, 12, 2, 5, 8, 0, 1, tzinfo=UTC),
    datetime(2026, 12, 2, 5, 8, 59, 999999, tzinfo=timezone(timedelta(hours=-3, minutes=-30))),
    uuid.UUID("0192c0de-0000-7000-8000-00000000000a"),
    Colour.RED,
    {"row": [uuid.uuid4(), datetime.now(UTC), Colour.RED]},
]


def _stored(db: Database, text: bytes | str) -> str:
    """The jsonb PostgreSQL stores from this JSON text, as its canonical text."""
    with db.as_system() as conn:
        row = conn.execute("SELECT %s::jsonb::text AS v", (_as_text(text),)).fetchone()
    assert row is not None
    return str(row["v"])


def _as_text(data: bytes | str) -> str:
    return data.decode() if isinstance(data, bytes) else data


def test_fast_json_stores_what_json_dumps_stores(db: Database) -> None:
    fast = [_as_text(fast_json(v)) for v in VALUES]
    slow = [_as_text(_dumps(v)) for v in VALUES]
    # One round trip: a JSON array of every value, from each writer.
    assert _stored(db, "[" + ",".join(fast) + "]") == _stored(db, "[" + ",".join(slow) + "]")
    # And each alone (an array hides nothing, but a top-level scalar is stored as one too).
    for value, f, s in zip(VALUES, fast, slow, strict=True):
        if not isinstance(value, list | dict):
            assert _stored(db, f) == _stored(db, s), value


@pytest.mark.parametrize(
    "value",
    [
        {"big": 2**64},  # orjson refuses integers beyond 64 bits
        {1: "a key that is not a string"},
        ["lone \ud800 surrogate"],
    ],
    ids=["big-int", "int-key", "surrogate"],
)
def test_what_orjson_refuses_is_written_by_json_dumps(value: Any) -> None:
    assert fast_json(value) == _dumps(value)


def test_values_json_cannot_hold_fail_as_before() -> None:
    class Thing:
        pass

    # (A naive datetime is the caller's to rule out: write_synced_execution checks its rows'
    # times and writes a row with a naive one with json.dumps, which refuses it.)
    for bad in (Thing(), b"bytes", [Thing()]):
        with pytest.raises((TypeError, ValueError)) as slow:
            _dumps(bad)
        with pytest.raises(type(slow.value)):
            fast_json(bad)


def test_postgresql_refuses_a_nul_from_either_writer(db: Database) -> None:
    for text in (fast_json({"a": "\x00"}), _dumps({"a": "\x00"})):
        with pytest.raises(psycopg.DataError):
            _stored(db, text)


# -- the decoder's test for NaN and infinite floats ----------------------------------------

NUMBER_TEXTS = [
    b"NaN", b"Infinity", b"-Infinity", b"1e308", b"1e309", b"-1E+400", b"1.5e-300", b"1e99",
    b"9" * 199 + b"e99", b"9" * 200, b"9" * 309 + b".0", b"0." + b"9" * 400, b"12.5",
    b'"NaN inside a string"', b"[1, 2.0, 3e10]", b'{"x": 1e-400}',
]  # fmt: skip


def _non_finite(value: Any) -> bool:
    if isinstance(value, float):
        return value != value or value in (float("inf"), float("-inf"))
    if isinstance(value, list):
        return any(_non_finite(v) for v in value)
    if isinstance(value, dict):
        return any(_non_finite(v) for v in value.values())
    return False


@pytest.mark.parametrize("text", NUMBER_TEXTS, ids=lambda t: t[:20].decode())
def test_the_non_finite_test_matches_whatever_json_loads_makes_non_finite(text: bytes) -> None:
    if _non_finite(json.loads(text)):
        assert _NON_FINITE_TEXT.search(text)


def test_random_large_numbers_never_slip_past_the_test() -> None:
    rng = random.Random(12)
    for _ in range(3000):
        digits = rng.randint(1, 260)
        text = (
            rng.choice([b"", b"-"])
            + str(rng.randint(1, 9)).encode()
            + b"7" * (digits - 1)
            + rng.choice([b"", b".5"])
            + rng.choice([b"", b"e" + str(rng.randint(0, 120)).encode()])
        )
        if _non_finite(json.loads(text)):
            assert _NON_FINITE_TEXT.search(text), text


def _json_payload(data: bytes) -> Payload:
    return Payload(metadata={"encoding": b"json/plain"}, data=data)


def test_the_decoder_flags_a_payload_that_may_hold_a_non_finite_number() -> None:
    decoder = PayloadDecoder()
    decoder.decode_all([_json_payload(b'{"ratio": 0.5}'), _json_payload(b'"text"')])
    assert not decoder.non_finite_possible
    decoder.decode(_json_payload(b'{"ratio": NaN}'))
    assert decoder.non_finite_possible


def test_a_converter_of_the_callers_always_counts_as_possibly_non_finite() -> None:
    assert not PayloadDecoder(DataConverter.default.payload_converter).non_finite_possible
    assert PayloadDecoder(DefaultPayloadConverter()).non_finite_possible

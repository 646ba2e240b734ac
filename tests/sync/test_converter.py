"""The sync's message converter gives Temporal's default converter's JSON and values.

``wfmon.sync.converter`` replaces Temporal's generic dataclass walk for the sync's own
messages. These tests compare it with the default converter on every message class: the
same payload bytes when encoding, equal objects when decoding, and for values that are
not shaped as the messages are, the default converter's own result or error. No services
are needed.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
from typing import Any

import pytest
from temporalio.api.common.v1 import Payload
from temporalio.client import Client
from temporalio.converter import DataConverter, DefaultPayloadConverter, JSONTypeConverter

from wfmon.sync.converter import (
    MESSAGE_CLASSES,
    SyncPayloadConverter,
    _MessageTypes,
    sync_client,
    with_sync_messages,
)
from wfmon.sync.messages import (
    CoordinatorConfig,
    CoordinatorInput,
    CoordinatorState,
    ExecutionRef,
    LiveExecution,
    SyncBatch,
    SyncFailures,
    SyncOutcome,
    SyncResult,
)

DEFAULT = DefaultPayloadConverter()
FAST = SyncPayloadConverter()

REF = ExecutionRef("default", "order-17", "0192c0de-0000-7000-8000-000000000001")
OTHER = ExecutionRef("tenant-ä", 'quote "and" \\ slash', "")
SYNCED = SyncResult(
    execution=REF,
    outcome=SyncOutcome.SYNCED,
    execution_status="completed",
    still_running=True,
    component_count=20,
    event_count=91,
    history_bytes=41_117,
    duration_ms=12,
)
FAILED = SyncResult(OTHER, SyncOutcome.FAILED, error="Temporal: unavailable", retryable=True)

#: One or more values of every message class, with optional fields set and unset.
MESSAGES: list[Any] = [
    REF,
    OTHER,
    SYNCED,
    FAILED,
    SyncResult(REF, SyncOutcome.NOT_FOUND),
    SyncResult(REF, SyncOutcome.BUSY, error="", retryable=True),
    SyncBatch([REF, OTHER]),
    SyncBatch([]),
    CoordinatorConfig(),
    CoordinatorConfig(max_concurrent_batches=2, batch_size=1, live_resync_seconds=0.25),
    LiveExecution(REF, next_sync_at=1_764_650_000.125),
    CoordinatorInput(),
    CoordinatorInput(
        config=CoordinatorConfig(batch_size=7),
        queued=[REF, OTHER],
        live=[LiveExecution(OTHER, 12.0)],
        completed_syncs=3,
        failed_syncs=1,
    ),
    SyncFailures([FAILED, SYNCED]),
    CoordinatorState(["a"], ["b", "c"], [], 2, 10, 1),
]


def test_every_message_class_is_covered() -> None:
    assert {type(m) for m in MESSAGES} == set(MESSAGE_CLASSES)


@pytest.mark.parametrize("message", MESSAGES, ids=lambda m: type(m).__name__)
def test_a_message_encodes_to_the_default_converters_bytes(message: Any) -> None:
    assert FAST.to_payloads([message]) == DEFAULT.to_payloads([message])


@pytest.mark.parametrize("message", MESSAGES, ids=lambda m: type(m).__name__)
def test_a_message_decodes_to_the_default_converters_value(message: Any) -> None:
    payloads = DEFAULT.to_payloads([message])
    (fast,) = FAST.from_payloads(payloads, [type(message)])
    (default,) = DEFAULT.from_payloads(payloads, [type(message)])
    assert fast == default == message
    assert type(fast) is type(message)
    assert type(fast.outcome) is SyncOutcome if isinstance(fast, SyncResult) else True


def test_a_list_of_results_decodes_as_the_batch_workflow_reads_it() -> None:
    payloads = DEFAULT.to_payloads([[SYNCED, FAILED]])
    (fast,) = FAST.from_payloads(payloads, [list[SyncResult]])
    assert fast == DEFAULT.from_payloads(payloads, [list[SyncResult]])[0] == [SYNCED, FAILED]


def _json(data: bytes) -> Payload:
    return Payload(metadata={"encoding": b"json/plain"}, data=data)


# Values the messages never take: the fast path steps aside and Temporal decides.
ODD: list[tuple[type, bytes]] = [
    (CoordinatorConfig, b'{"batch_size":5.0}'),  # a float for an int: Temporal truncates
    (CoordinatorConfig, b'{"max_concurrent_batches":true}'),  # a bool for an int
    (CoordinatorConfig, b'{"live_resync_seconds":3}'),  # an int for a float
    (
        SyncResult,
        b'{"execution":{"namespace":"n","workflow_id":"w","run_id":"r"},'
        b'"outcome":"synced","extra":1}',
    ),  # unknown keys are ignored
]
BAD: list[tuple[type, bytes]] = [
    (ExecutionRef, b'{"namespace":"n","workflow_id":"w"}'),  # a required field missing
    (ExecutionRef, b'{"namespace":1,"workflow_id":"w","run_id":"r"}'),
    (
        SyncResult,
        b'{"execution":{"namespace":"n","workflow_id":"w","run_id":"r"},"outcome":"exploded"}',
    ),  # not a SyncOutcome
    (SyncBatch, b'{"executions":{"namespace":"n"}}'),
    (SyncBatch, b"[]"),
]


@pytest.mark.parametrize(("cls", "data"), ODD)
def test_an_odd_value_decodes_as_temporal_decodes_it(cls: type, data: bytes) -> None:
    (fast,) = FAST.from_payloads([_json(data)], [cls])
    (default,) = DEFAULT.from_payloads([_json(data)], [cls])
    assert fast == default
    assert [type(getattr(fast, f.name)) for f in dataclasses.fields(fast)] == [
        type(getattr(default, f.name)) for f in dataclasses.fields(default)
    ]


@pytest.mark.parametrize(("cls", "data"), BAD)
def test_a_malformed_value_fails_as_temporal_fails(cls: type, data: bytes) -> None:
    with pytest.raises(Exception) as default:
        DEFAULT.from_payloads([_json(data)], [cls])
    with pytest.raises(type(default.value)) as fast:
        FAST.from_payloads([_json(data)], [cls])
    assert str(fast.value) == str(default.value)


def test_other_types_go_through_the_default_converter() -> None:
    values = [None, b"\x00bytes", {"a": [1, 2.5, "x"]}, "text", 3]
    assert FAST.to_payloads(values) == DEFAULT.to_payloads(values)
    assert FAST.from_payloads(DEFAULT.to_payloads(values)) == values


def test_only_the_default_payload_converter_is_replaced() -> None:
    fast = with_sync_messages(DataConverter.default)
    assert fast.payload_converter_class is SyncPayloadConverter
    assert fast.failure_converter_class is DataConverter.default.failure_converter_class

    class Custom(DefaultPayloadConverter):
        pass

    custom = DataConverter(payload_converter_class=Custom)
    assert with_sync_messages(custom) is custom


def test_the_fast_path_builds_the_messages_itself() -> None:
    # Not Temporal's walk with a detour: the converter answers for a well-formed value.
    types = _MessageTypes()
    value = json.loads(DEFAULT.to_payloads([SYNCED])[0].data)
    assert types.to_typed_value(SyncResult, value) == SYNCED
    assert types.to_typed_value(SyncResult, {"outcome": "synced"}) is JSONTypeConverter.Unhandled
    assert types.to_typed_value(list[SyncResult], [value]) is JSONTypeConverter.Unhandled


def test_the_sync_client_shares_the_connection_and_namespace() -> None:
    # lazy: nothing is dialled, so no server is needed.
    client = asyncio.run(Client.connect("127.0.0.1:1", namespace="tenant", lazy=True))
    synced = sync_client(client)
    assert synced.service_client is client.service_client
    assert synced.namespace == "tenant"
    assert synced.data_converter.payload_converter_class is SyncPayloadConverter
    assert sync_client(synced) is synced

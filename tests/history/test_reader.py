"""The reader's contract on inputs no scenario produces: bad JSON, unknown events, every
payload encoding, size caps, streaming pages, and what a definition changes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from google.protobuf.json_format import MessageToDict
from temporalio.api.common.v1 import Payload, WorkflowExecution
from temporalio.client import WorkflowHistory
from temporalio.converter import BinaryProtoPayloadConverter, DataConverter

from wfmon.history import (
    ComponentStatus,
    HistoryFormatError,
    HistoryReader,
    PayloadDecoder,
    ReadOptions,
    builder_definition,
    events_from_json,
    read_history,
    read_history_json,
)
from wfmon.model import WorkflowDefinition

HISTORIES = Path(__file__).resolve().parents[1] / "fixtures" / "histories"


def fixture_json(name: str) -> dict[str, object]:
    data: dict[str, object] = json.loads((HISTORIES / f"{name}.json").read_text())
    return data


# -- malformed input ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("{not json", "history is not valid JSON"),
        ("[1, 2]", "must be an object with an 'events' list, not list"),
        ('{"history": []}', "has no 'events' list"),
        ('{"events": [42]}', "events[0] is int, not an object"),
        ('{"events": []}', "history has no events"),
    ],
)
def test_malformed_json_names_the_problem(text: str, says: str) -> None:
    with pytest.raises(HistoryFormatError, match=None) as info:
        read_history_json(text)
    assert says in str(info.value)


def test_malformed_event_is_located() -> None:
    data = fixture_json("success")
    events = data["events"]
    assert isinstance(events, list)
    events[3]["eventTime"] = "yesterday-ish"
    with pytest.raises(HistoryFormatError) as info:
        events_from_json(data)
    assert "events[3] (eventId 4) is malformed" in str(info.value)


def test_unknown_event_type_is_a_warning_not_a_crash() -> None:
    data = fixture_json("success")
    events = data["events"]
    assert isinstance(events, list)
    events.insert(
        5,
        {
            "eventId": "999",
            "eventTime": events[4]["eventTime"],
            "eventType": "EVENT_TYPE_FROM_THE_FUTURE",
            "futureEventAttributes": {"x": 1},
        },
    )
    report = read_history_json(data)
    assert [c.node_id for c in report.components] == ["greet", "count", "combine"]
    assert any("unknown event type" in w and "999" in w for w in report.warnings)


def test_reader_rejects_non_events() -> None:
    with pytest.raises(HistoryFormatError, match=r"expected temporalio\.api\.history\.v1"):
        read_history([{"eventId": 1}])  # type: ignore[list-item]


def test_activity_events_without_their_scheduled_event_warn() -> None:
    history = WorkflowHistory.from_json("x", fixture_json("success"))
    scheduled = {
        e.event_id for e in history.events if e.HasField("activity_task_scheduled_event_attributes")
    }
    report = read_history(e for e in history.events if e.event_id not in scheduled)
    assert report.components == []
    assert len(report.warnings) == 6  # started + completed of three activities
    assert "which is not in the history read" in report.warnings[0]


# -- payloads ----------------------------------------------------------------------------


def payload_of(value: object) -> Payload:
    return DataConverter.default.payload_converter.to_payloads([value])[0]


def test_payload_encodings() -> None:
    decoder = PayloadDecoder()
    assert decoder.decode(payload_of(None)) is None  # binary/null
    assert decoder.decode(payload_of({"a": [1, 2]})) == {"a": [1, 2]}
    proto = WorkflowExecution(workflow_id="w", run_id="r")
    assert decoder.decode(payload_of(proto)) == {"workflowId": "w", "runId": "r"}
    binary = BinaryProtoPayloadConverter().to_payload(proto)
    assert binary is not None
    assert decoder.decode(binary) == {"workflowId": "w", "runId": "r"}
    raw = decoder.decode(payload_of(b"\x00\xffbytes"))
    assert raw == {
        "_wfmon": "bytes",
        "encoding": "binary/plain",
        "size_bytes": 7,
        "base64": "AP9ieXRlcw==",
    }


def test_payloads_that_lie_about_their_encoding_are_shown_not_fatal() -> None:
    decoder = PayloadDecoder()
    bad_json = Payload(metadata={"encoding": b"json/plain"}, data=b"\xff{not json")
    assert decoder.decode(bad_json)["_wfmon"] == "undecodable"
    unknown_proto = Payload(
        metadata={"encoding": b"json/protobuf", "messageType": b"nobody.Knows"},
        data=b'{"a": 1}',
    )
    assert decoder.decode(unknown_proto) == {"a": 1}
    odd = Payload(metadata={"encoding": b"x/custom"}, data=b"abc")
    assert decoder.decode(odd)["_wfmon"] == "bytes"


def test_payload_cap_is_configurable_and_marked() -> None:
    decoder = PayloadDecoder(limit_bytes=10)
    out = decoder.decode(payload_of("x" * 100))
    assert out == {
        "_wfmon": "truncated",
        "encoding": "json/plain",
        "size_bytes": 102,
        "preview": '"xxxxxxxxx',
    }
    report = read_history_json(fixture_json("success"), options=ReadOptions(payload_limit_bytes=50))
    assert report.component("combine").input_data[0]["_wfmon"] == "truncated"  # type: ignore[index]
    assert report.component("count").output_data == {"n": 3}  # small enough to keep


# -- cancellations -----------------------------------------------------------------------
# The recorded ``cancellations`` history (tests/fixtures/history_scenarios.py,
# CancelsItsPartsWorkflow) edited where the Python SDK cannot produce what other SDKs and
# servers write: cancel details on a child or a workflow, requests naming other runs.


def events_of(data: dict[str, object], event_type: str) -> list[dict[str, object]]:
    events = data["events"]
    assert isinstance(events, list)
    found = [e for e in events if e["eventType"] == f"EVENT_TYPE_{event_type}"]
    assert found, event_type
    return found


def details_of(*values: object) -> dict[str, object]:
    return {"payloads": [MessageToDict(payload_of(v)) for v in values]}


def test_canceled_child_details_are_its_reason_not_its_output() -> None:
    data = fixture_json("cancellations")
    (canceled,) = events_of(data, "CHILD_WORKFLOW_EXECUTION_CANCELED")
    attrs = canceled["childWorkflowExecutionCanceledEventAttributes"]
    assert isinstance(attrs, dict)
    attrs["details"] = details_of({"reason": "superseded"}, "by the parent")
    child = read_history_json(data).components[1]
    assert child.status is ComponentStatus.CANCELED
    assert child.output_data is None
    assert child.error_message == (
        'the child workflow was canceled: {"reason":"superseded"}, by the parent'
    )


def test_canceled_workflow_details_are_its_reason_not_its_output() -> None:
    data = fixture_json("canceled")
    (canceled,) = events_of(data, "WORKFLOW_EXECUTION_CANCELED")
    attrs = canceled["workflowExecutionCanceledEventAttributes"]
    assert isinstance(attrs, dict)
    attrs["details"] = details_of("operator asked", None)
    ex = read_history_json(data).execution
    assert ex.output_data is None
    assert ex.error_message == "the workflow was canceled: operator asked"


def test_long_cancel_details_are_cut() -> None:
    data = fixture_json("cancellations")
    (canceled,) = events_of(data, "ACTIVITY_TASK_CANCELED")
    attrs = canceled["activityTaskCanceledEventAttributes"]
    assert isinstance(attrs, dict)
    attrs["details"] = details_of("x" * 10_000)
    message = read_history_json(data).components[0].error_message
    assert message is not None and message.startswith("canceled: xxx")
    assert len(message) == len("canceled: ") + 2000 and message.endswith("…")


def _cancel_request(data: dict[str, object]) -> dict[str, object]:
    (initiated,) = events_of(data, "REQUEST_CANCEL_EXTERNAL_WORKFLOW_EXECUTION_INITIATED")
    attrs = initiated["requestCancelExternalWorkflowExecutionInitiatedEventAttributes"]
    assert isinstance(attrs, dict)
    return attrs


def test_cancel_request_matches_the_child_by_workflow_id_and_run_id() -> None:
    data = fixture_json("cancellations")
    target = _cancel_request(data)["workflowExecution"]
    assert isinstance(target, dict)
    target.pop("runId")  # no run named: the child with that workflow id
    assert read_history_json(data).components[1].cancel_requested is True


def test_cancel_request_for_another_run_or_workflow_leaves_the_child_alone() -> None:
    data = fixture_json("cancellations")
    request = _cancel_request(data)
    target = request["workflowExecution"]
    assert isinstance(target, dict)
    target["runId"] = "another-run"
    report = read_history_json(data)
    assert report.components[1].cancel_requested is False
    # A child-only request that names no child of this history is worth a warning ...
    assert len(report.warnings) == 1 and "asks to cancel child workflow" in report.warnings[0]
    # ... one for some other workflow is not: that workflow is not a component of this run.
    request["childWorkflowOnly"] = False
    target["workflowId"] = "someone-else"
    report = read_history_json(data)
    assert report.components[1].cancel_requested is False
    assert report.warnings == []


# -- streaming and definitions -----------------------------------------------------------


def test_pages_give_the_same_report_as_the_whole_history() -> None:
    history = WorkflowHistory.from_json("x", fixture_json("retry_then_success"))
    whole = read_history(history)
    reader = HistoryReader(workflow_id="x")
    events = history.events
    for start in range(0, len(events), 4):
        reader.feed(events[start : start + 4])
    assert reader.finish() == whole


#: Run in a fresh interpreter: tracemalloc.start()/stop() race with threads that allocate
#: meanwhile (CPython 3.11, gh-128679), and the test session has many (Temporal's core,
#: connection pools, app servers): in one CI run the stop() crashed the whole session.
_STREAMING_PEAK = """
import sys, tracemalloc
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import WorkflowHistory
from wfmon.history import HistoryReader

history = WorkflowHistory.from_json("x", open(sys.argv[1]).read())
body = history.events[:-1]  # everything but the close event
task_events = [e for e in body if e.HasField("workflow_task_completed_event_attributes")]

def stream(count):
    next_id = body[-1].event_id
    for i in range(count):
        event = HistoryEvent()
        event.CopyFrom(task_events[i % len(task_events)])
        next_id += 1
        event.event_id = next_id
        yield event

reader = HistoryReader()
reader.feed(body)
tracemalloc.start()
reader.feed(stream(20_000))
peak = tracemalloc.get_traced_memory()[1]
tracemalloc.stop()
print(peak, len(reader.finish().warnings))
"""


def test_memory_stays_flat_when_streaming() -> None:
    """20,000 more events streamed from a generator leave nothing behind: the reader keeps
    one record per component, never the events."""
    done = subprocess.run(
        [sys.executable, "-c", _STREAMING_PEAK, str(HISTORIES / "success.json")],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    peak, warnings = (int(v) for v in done.stdout.split())
    assert peak < 256 * 1024
    assert warnings == 0


def test_definition_maps_nodes_and_flags_strangers() -> None:
    data = fixture_json("success")
    definition = WorkflowDefinition.model_validate(
        {
            "id": "other",
            "name": "other",
            "version": 9,
            "nodes": [{"id": "greet", "component": "greeter"}, {"id": "count", "component": "x"}],
        }
    )
    report = read_history_json(data, definition=definition)
    assert report.component("greet").component_name == "greeter"
    assert report.component("combine").component_name == "transform"
    assert report.warnings == ["activity 'combine' is not a node of definition 'other' v9"]
    # The version recorded at start wins over the definition passed in.
    assert report.execution.definition_version == 2


def test_builder_definition_is_validated_once_and_bad_ones_name_the_problem() -> None:
    definition = {
        "id": "wf",
        "name": "wf",
        "version": 3,
        "nodes": [{"id": "a", "component": "transform", "timeouts": {"start_to_close": "2m"}}],
    }
    first = builder_definition([{"definition": definition, "input": 1}])
    again = builder_definition([{"definition": json.loads(json.dumps(definition)), "input": 2}])
    assert again is first, "the same definition is validated once"
    assert first.version == 3 and first.nodes[0].timeouts.start_to_close.total_seconds() == 120

    changed = builder_definition([{"definition": {**definition, "version": 4}}])
    assert changed.version == 4 and changed is not first
    for bad in ([], [{}], [{"definition": {**definition, "nodes": []}}], None):
        with pytest.raises(ValueError, match="builder workflow input holds no valid definition"):
            builder_definition(bad)

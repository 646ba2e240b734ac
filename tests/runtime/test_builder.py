"""The builder workflow on a real dev server: order, concurrency, data flow, retry
policies in force, memo/search attributes, and attempt records matching Temporal."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from typing import Any

import pytest
from temporal_harness import TemporalHarness
from temporalio.client import WorkflowFailureError
from temporalio.common import SearchAttributeKey
from temporalio.exceptions import ApplicationError

from wfmon.history import ComponentStatus, HistoryReport, read_history
from wfmon.model import WorkflowDefinition
from wfmon.runtime import BuilderRunInput, BuilderWorkflow, RunContext, start_builder_run
from wfmon.runtime.attempts import AttemptOutcome, AttemptRecord


def make(nodes: list[dict[str, Any]], edges: Sequence[tuple[str, str]] = ()) -> WorkflowDefinition:
    return WorkflowDefinition.model_validate(
        {
            "id": f"wf-{uuid.uuid4().hex[:6]}",
            "name": "test",
            "version": 3,
            "nodes": nodes,
            "edges": [{"source": s, "target": t} for s, t in edges],
        }
    )


async def run_to_end(
    h: TemporalHarness, d: WorkflowDefinition, payload: Any = None, **kw: Any
) -> tuple[Any, HistoryReport]:
    handle = await start_builder_run(h.client, d, payload, task_queue=h.queues.builder, **kw)
    try:
        result: Any = await handle.result()
    except WorkflowFailureError as err:
        result = err
    return result, read_history(await handle.fetch_history())


def attempts_of(h: TemporalHarness, workflow_id: str) -> list[AttemptRecord]:
    h.run(h.recorder.flush())
    return sorted(
        (r for r in h.sink.records if r.workflow_id == workflow_id),
        key=lambda r: (r.activity_id, r.attempt),
    )


def test_branches_run_concurrently_and_outputs_flow_along_edges(runtime: TemporalHarness) -> None:
    d = make(
        [
            {"id": "left", "component": "sleep", "config": {"seconds": 1}},
            {"id": "right", "component": "sleep", "config": {"seconds": 1}},
            {
                "id": "join",
                "component": "transform",
                "config": {"pick": {"l": "upstream.left.slept_seconds", "who": "workflow.who"}},
            },
        ],
        [("left", "join"), ("right", "join")],
    )
    result, report = runtime.run(run_to_end(runtime, d, {"who": "me"}))
    assert result.outputs["join"] == {"l": 1.0, "who": "me"}
    left, right, join = (report.component(n) for n in ("left", "right", "join"))
    # Both sleeps were scheduled in the same workflow task and overlapped in time.
    assert left.scheduled_event_id + 1 == right.scheduled_event_id
    assert left.completed_at and right.started_at and right.started_at < left.completed_at
    assert report.execution.duration_ms is not None and report.execution.duration_ms < 1900
    assert right.completed_at and join.started_at
    assert join.started_at >= max(left.completed_at, right.completed_at)


def test_memo_and_search_attributes_record_who_and_which_version(
    runtime: TemporalHarness,
) -> None:
    d = make([{"id": "only", "component": "transform"}])

    async def go() -> Any:
        handle = await start_builder_run(
            runtime.client,
            d,
            None,
            task_queue=runtime.queues.builder,
            context=RunContext(workflow_id="wf-uuid-1", project_id="p-1", user_id="u-1"),
        )
        await handle.result()
        return await handle.describe()

    desc = runtime.run(go())
    assert runtime.run(desc.memo()) == {
        "wfmon_workflow_id": "wf-uuid-1",
        "project_id": "p-1",
        "user_id": "u-1",
        "definition_version": 3,
    }
    sa = desc.typed_search_attributes
    assert sa.get(SearchAttributeKey.for_keyword("WfmonProjectId")) == "p-1"
    assert sa.get(SearchAttributeKey.for_keyword("WfmonUserId")) == "u-1"
    assert sa.get(SearchAttributeKey.for_keyword("WfmonWorkflowId")) == "wf-uuid-1"
    assert sa.get(SearchAttributeKey.for_int("WfmonDefinitionVersion")) == 3


def test_attempt_records_match_the_attempts_temporal_made(runtime: TemporalHarness) -> None:
    fast = {"strategy": "fail_after_attempts", "max_attempts": 3, "interval": "100ms"}
    d = make(
        [
            {
                "id": "shaky",
                "component": "flaky",
                "config": {"fail_times": 2},
                "retry_policy": fast,
            },
            {
                "id": "steady",
                "component": "flaky",
                "config": {"fail_times": 0},
                "retry_policy": fast,
            },
        ]
    )
    _, report = runtime.run(run_to_end(runtime, d))
    records = attempts_of(runtime, report.execution.workflow_id or "")
    by_node: dict[str, list[AttemptRecord]] = {}
    for r in records:
        by_node.setdefault(r.activity_id, []).append(r)
    assert set(by_node) == {"shaky", "steady"}
    for node_id, attempts in by_node.items():
        row = report.component(node_id)
        # One record per attempt Temporal made, numbered like Temporal numbers them.
        assert [a.attempt for a in attempts] == list(range(1, row.temporal_attempt + 1))
        assert attempts[-1].outcome is AttemptOutcome.COMPLETED
        assert all(a.outcome is AttemptOutcome.FAILED for a in attempts[:-1])
        for a in attempts:
            assert (a.run_id, a.activity_type, a.workflow_type) == (
                report.execution.run_id,
                row.activity_type,
                "WfmonBuilderWorkflow",
            )
            assert a.started_at <= a.ended_at and not a.is_local
        if len(attempts) > 1:
            assert attempts[-2].failure_message == row.last_failure_message
            assert attempts[-2].failure_type == "FlakyError"
            assert attempts[-2].failure_stack and "flaky" in attempts[-2].failure_stack
    assert report.component("shaky").temporal_attempt == 3


def test_policies_are_in_force(runtime: TemporalHarness) -> None:
    d = make(
        [
            {
                "id": "limited",
                "component": "flaky",
                "config": {"fail_times": 9},
                "retry_policy": {
                    "strategy": "fail_after_attempts",
                    "max_attempts": 2,
                    "interval": "100ms",
                },
            },
        ]
    )
    result, report = runtime.run(run_to_end(runtime, d))
    assert isinstance(result, WorkflowFailureError)
    assert isinstance(result.cause, ApplicationError) and result.cause.type == "NodeFailed"
    limited = report.component("limited")
    assert (limited.temporal_attempt, limited.error_type) == (2, "retry_exhausted")
    outcomes = [a.outcome for a in attempts_of(runtime, report.execution.workflow_id or "")]
    assert outcomes == [AttemptOutcome.FAILED, AttemptOutcome.FAILED]

    d = make(
        [
            {
                "id": "never",
                "component": "always-fail",
                "config": {"error_type": "Broken"},
                "retry_policy": {"strategy": "keep_trying", "interval": "100ms"},
            }
        ]
    )
    result, report = runtime.run(run_to_end(runtime, d))
    never = report.component("never")
    assert (never.temporal_attempt, never.error_type, never.failure_type) == (
        1,
        "non_retryable",
        "Broken",
    )
    records = attempts_of(runtime, report.execution.workflow_id or "")
    assert [(r.outcome, r.non_retryable) for r in records] == [(AttemptOutcome.FAILED, True)]


def test_timed_out_attempt_is_recorded_as_timed_out(runtime: TemporalHarness) -> None:
    d = make(
        [
            {
                "id": "slow",
                "component": "sleep",
                "config": {"seconds": 3},
                "timeouts": {"start_to_close": "1s"},
                "retry_policy": {"strategy": "no_retries"},
            }
        ]
    )
    _, report = runtime.run(run_to_end(runtime, d))
    assert report.component("slow").status is ComponentStatus.TIMED_OUT

    async def recorded() -> list[AttemptRecord]:
        # The worker learns of the timeout on its own clock; give it a moment.
        for _ in range(50):
            await runtime.recorder.flush()
            found = [
                r for r in runtime.sink.records if r.workflow_id == report.execution.workflow_id
            ]
            if found:
                return found
            await asyncio.sleep(0.1)
        return []

    (record,) = runtime.run(recorded())
    # The worker never heard of the timeout and finished its 3 s sleep; Temporal had
    # already timed the attempt out, and that is what the record says.
    assert record.outcome is AttemptOutcome.TIMED_OUT
    assert record.failure_message and record.failure_message.startswith("start_to_close")
    assert record.duration_ms >= 1000


def test_invalid_definition_fails_without_retrying(runtime: TemporalHarness) -> None:
    bad = {
        "id": "x",
        "name": "x",
        "nodes": [{"id": "a", "component": "t"}],
        "edges": [{"source": "a", "target": "a"}],
    }

    async def go() -> BaseException:
        handle = await runtime.client.start_workflow(
            BuilderWorkflow.run,
            BuilderRunInput(definition=bad),
            id=f"bad-{uuid.uuid4()}",
            task_queue=runtime.queues.builder,
        )
        with pytest.raises(WorkflowFailureError) as info:
            await handle.result()
        return info.value.cause

    cause = runtime.run(go())
    assert isinstance(cause, ApplicationError) and cause.type == "InvalidDefinition"
    assert "cycle" in cause.message

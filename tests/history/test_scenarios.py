"""Exact component rows for every scenario, read from fixtures and from live runs."""

from __future__ import annotations

import itertools
from datetime import timedelta

from wfmon.history import (
    ComponentExecution,
    ComponentKind,
    ComponentStatus,
    ExecutionStatus,
    HistoryReport,
)

Reports = dict[str, list[HistoryReport]]


def only(reports: Reports, name: str) -> HistoryReport:
    (report,) = reports[name]
    assert report.warnings == []
    return report


def assert_timing(report: HistoryReport) -> None:
    """Durations are positive, match the event times, and fit inside the execution."""
    ex = report.execution
    assert ex.started_at is not None
    for c in report.components:
        if c.completed_at is None:
            continue
        assert c.started_at is not None and c.started_at_ns is not None
        assert c.completed_at_ns is not None and c.completed_at_ns > c.started_at_ns
        assert c.duration_ms == round((c.completed_at_ns - c.started_at_ns) / 1e6)
        assert abs((c.completed_at - c.started_at) - timedelta(milliseconds=c.duration_ms)) < (
            timedelta(milliseconds=1)
        )
        assert ex.started_at <= c.started_at
        if ex.closed_at is not None:
            assert c.completed_at <= ex.closed_at
        if c.kind is ComponentKind.ACTIVITY:
            assert c.duration_ms > 0


def assert_builder_summary(report: HistoryReport, status: ExecutionStatus) -> None:
    ex = report.execution
    assert ex.workflow_type == "WfmonBuilderWorkflow"
    assert ex.status is status
    assert (ex.wfmon_workflow_id, ex.project_id, ex.user_id) == (
        "wfmon-wf-1",
        "project-7",
        "user-42",
    )
    assert ex.definition_version == 2
    assert ex.search_attributes["WfmonProjectId"] == "project-7"
    assert ex.search_attributes["WfmonDefinitionVersion"] == 2
    assert ex.run_id and ex.workflow_id
    assert_timing(report)


def node_input(c: ComponentExecution) -> dict[str, object]:
    assert c.input_data is not None and len(c.input_data) == 1
    value = c.input_data[0]
    assert isinstance(value, dict)
    return value


def test_success(reports: Reports) -> None:
    report = only(reports, "success")
    assert_builder_summary(report, ExecutionStatus.COMPLETED)
    assert report.execution.duration_ms and report.execution.duration_ms > 0
    rows = {c.node_id: c for c in report.components}
    # Three nodes share one component: the mapping must come from activity ids.
    assert [c.node_id for c in report.components][-1] == "combine"
    assert set(rows) == {"greet", "count", "combine"}
    for c in rows.values():
        assert (c.component_name, c.activity_type, c.kind) == (
            "transform",
            "transform",
            ComponentKind.ACTIVITY,
        )
        assert c.status is ComponentStatus.COMPLETED
        assert (c.temporal_attempt, c.retry_count, c.is_expected_retry) == (1, 0, False)
        assert c.temporal_activity_id == c.node_id
        assert c.error_type is None and c.error_message is None
    assert rows["greet"].output_data == {"msg": "Hello Ada"}
    assert rows["count"].output_data == {"n": 3}
    assert rows["combine"].output_data == {"msg": "Hello Ada", "n": 3}
    assert node_input(rows["combine"])["upstream"] == {
        "greet": {"msg": "Hello Ada"},
        "count": {"n": 3},
    }
    assert node_input(rows["greet"])["workflow_input"] == {"name": "Ada", "count": 3}
    # combine waited for both branches.
    assert rows["combine"].started_at >= max(  # type: ignore[operator]
        rows["greet"].completed_at,
        rows["count"].completed_at,  # type: ignore[type-var]
    )
    assert report.execution.output_data == {
        "outputs": {
            "greet": {"msg": "Hello Ada"},
            "count": {"n": 3},
            "combine": {"msg": "Hello Ada", "n": 3},
        }
    }


def test_expected_retries_then_success(reports: Reports) -> None:
    report = only(reports, "retry_then_success")
    assert_builder_summary(report, ExecutionStatus.COMPLETED)
    first, after = report.components
    assert (first.node_id, first.status, first.temporal_attempt, first.retry_count) == (
        "first",
        ComponentStatus.COMPLETED,
        3,
        2,
    )
    assert first.is_expected_retry is True
    assert first.last_failure_message == "flaky: attempt 2 fails on purpose (2 planned failures)"
    assert first.retry_policy == {
        "initial_interval": "100ms",
        "backoff_coefficient": 1.0,
        "maximum_interval": "100ms",
        "maximum_attempts": 3,
        "non_retryable_error_types": [],
    }
    assert first.output_data == {"attempt": 3, "output": "ok"}
    # Three attempts, retries spaced by the server: the row spans all of them.
    assert first.attempt_started_at is not None and first.started_at is not None
    assert first.attempt_started_at > first.started_at
    assert (after.status, after.is_expected_retry, after.output_data) == (
        ComponentStatus.COMPLETED,
        False,
        {"attempts": 3},
    )


def test_every_strategy(reports: Reports) -> None:
    report = only(reports, "strategies")
    assert_builder_summary(report, ExecutionStatus.COMPLETED)
    rows = {c.node_id: c for c in report.components}
    assert rows["keep"].retry_policy is not None
    assert rows["keep"].retry_policy["maximum_attempts"] == 0
    assert (rows["keep"].temporal_attempt, rows["keep"].is_expected_retry) == (2, True)
    assert rows["backoff"].retry_policy == {
        "initial_interval": "100ms",
        "backoff_coefficient": 2.0,
        "maximum_interval": "200ms",
        "maximum_attempts": 3,
        "non_retryable_error_types": [],
    }
    assert (rows["backoff"].temporal_attempt, rows["backoff"].is_expected_retry) == (2, True)
    assert rows["once"].retry_policy is not None
    assert rows["once"].retry_policy["maximum_attempts"] == 1
    assert (rows["once"].status, rows["once"].output_data) == (
        ComponentStatus.COMPLETED,
        {"ok": True},
    )


def test_retries_exhausted_are_not_expected(reports: Reports) -> None:
    report = only(reports, "retries_exhausted")
    assert_builder_summary(report, ExecutionStatus.FAILED)
    (doomed,) = report.components
    assert (doomed.status, doomed.error_type, doomed.retry_state) == (
        ComponentStatus.FAILED,
        "retry_exhausted",
        "maximum_attempts_reached",
    )
    assert (doomed.temporal_attempt, doomed.retry_count, doomed.is_expected_retry) == (2, 1, False)
    assert doomed.failure_type == "FlakyError"
    assert doomed.error_message == "flaky: attempt 2 fails on purpose (5 planned failures)"
    assert doomed.last_failure_message == "flaky: attempt 1 fails on purpose (5 planned failures)"
    assert doomed.failure_stack and "flaky" in doomed.failure_stack
    ex = report.execution
    assert (ex.error_type, ex.failure_type) == ("workflow_failure", "NodeFailed")
    assert ex.error_message == (
        "node 'doomed' (flaky) failed: flaky: attempt 2 fails on purpose (5 planned failures)"
    )


def test_non_retryable_failures(reports: Reports) -> None:
    boom = only(reports, "non_retryable").component("boom")
    assert (boom.status, boom.error_type, boom.failure_type, boom.retry_state) == (
        ComponentStatus.FAILED,
        "non_retryable",
        "BadInput",
        "non_retryable_failure",
    )
    assert (boom.temporal_attempt, boom.is_expected_retry) == (1, False)
    assert boom.error_message == "input is unusable"
    # A retryable error type the node lists as non-retryable stops retries too.
    picky = only(reports, "non_retryable_type").component("picky")
    assert (picky.status, picky.error_type, picky.failure_type, picky.temporal_attempt) == (
        ComponentStatus.FAILED,
        "non_retryable",
        "Nope",
        1,
    )
    assert picky.retry_policy is not None
    assert picky.retry_policy["non_retryable_error_types"] == ["Nope"]


def test_activity_timeout(reports: Reports) -> None:
    report = only(reports, "activity_timeout")
    assert_builder_summary(report, ExecutionStatus.FAILED)
    slow = report.component("slow")
    assert (slow.status, slow.error_type, slow.retry_state, slow.is_expected_retry) == (
        ComponentStatus.TIMED_OUT,
        "timeout:start_to_close",
        "maximum_attempts_reached",
        False,
    )
    assert slow.duration_ms is not None and 1000 <= slow.duration_ms < 3000


def test_canceled(reports: Reports) -> None:
    report = only(reports, "canceled")
    assert_builder_summary(report, ExecutionStatus.CANCELED)
    wait = report.component("wait")
    assert (wait.status, wait.error_type, wait.cancel_requested) == (
        ComponentStatus.CANCELED,
        "canceled",
        True,
    )


def test_terminated_and_workflow_timeout_leave_nodes_abandoned(reports: Reports) -> None:
    for name, status in (
        ("terminated", ExecutionStatus.TERMINATED),
        ("workflow_timeout", ExecutionStatus.TIMED_OUT),
    ):
        report = only(reports, name)
        assert_builder_summary(report, status)
        wait = report.component("wait")
        assert (wait.status, wait.error_type) == (ComponentStatus.CANCELED, "abandoned")
        assert wait.completed_at == report.execution.closed_at
    term = only(reports, "terminated").execution
    assert term.error_type == "terminated"
    assert term.error_message is not None
    assert term.error_message.endswith("stopped by the fixture generator")
    assert only(reports, "workflow_timeout").execution.error_type == "timeout:workflow"


def test_running_execution_mid_retry(reports: Reports) -> None:
    report = only(reports, "running_retrying")
    ex = report.execution
    assert ex.status is ExecutionStatus.RUNNING and ex.closed_at is None
    stubborn = report.component("stubborn")
    assert stubborn.status is ComponentStatus.RETRYING
    assert stubborn.temporal_attempt >= 2 and stubborn.retry_count == stubborn.temporal_attempt - 1
    assert stubborn.is_expected_retry is True  # attempts remain under the policy
    assert stubborn.last_failure_message is not None
    assert stubborn.last_failure_message.startswith("flaky: attempt ")
    assert stubborn.failure_type == "FlakyError"
    assert stubborn.next_retry_at is not None and stubborn.started_at is not None
    assert stubborn.next_retry_at > stubborn.started_at
    assert stubborn.completed_at is None and stubborn.duration_ms is None


def test_local_activities(reports: Reports) -> None:
    report = only(reports, "local_activity")
    assert report.execution.status is ExecutionStatus.COMPLETED
    first, second = report.components
    for c in (first, second):
        assert (c.kind, c.activity_type, c.component_name, c.status) == (
            ComponentKind.LOCAL_ACTIVITY,
            "local-flaky",
            "local-flaky",
            ComponentStatus.COMPLETED,
        )
    assert (first.temporal_attempt, first.retry_count, first.is_expected_retry) == (3, 2, True)
    assert (first.output_data, second.output_data) == (3, 1)
    assert (first.node_id, second.node_id) == ("1", "2")
    assert_timing(report)


def test_child_workflows(reports: Reports) -> None:
    report = only(reports, "child_workflow")
    ok, failed = report.components
    assert (ok.kind, ok.component_name, ok.status, ok.output_data, ok.input_data) == (
        ComponentKind.CHILD_WORKFLOW,
        "ChildEcho",
        ComponentStatus.COMPLETED,
        "child ok",
        [False],
    )
    assert ok.child_workflow_id and ok.child_workflow_id.endswith("-child-ok")
    assert ok.child_run_id
    assert (failed.status, failed.error_type, failed.failure_type, failed.error_message) == (
        ComponentStatus.FAILED,
        "child_workflow_failure",
        "ChildFailure",
        "child fails on purpose",
    )
    assert report.execution.output_data == [
        "child ok",
        "failed: ChildFailure: child fails on purpose",
    ]
    assert_timing(report)


def test_continue_as_new_chain(reports: Reports) -> None:
    chain = reports["continue_as_new"]
    assert [r.execution.status for r in chain] == [
        ExecutionStatus.CONTINUED_AS_NEW,
        ExecutionStatus.CONTINUED_AS_NEW,
        ExecutionStatus.COMPLETED,
    ]
    for prev, nxt in itertools.pairwise(chain):
        assert prev.execution.next_run_id == nxt.execution.run_id
        assert nxt.execution.continued_from_run_id == prev.execution.run_id
        assert nxt.execution.first_execution_run_id == chain[0].execution.run_id
    assert chain[-1].execution.next_run_id is None
    assert [r.components[0].input_data for r in chain] == [[2, "run"], [1, "run"], [0, "run"]]
    assert chain[-1].execution.output_data == 0


def test_payloads_all_arguments_null_and_bytes(reports: Reports) -> None:
    report = only(reports, "mixed_payloads")
    echo, raw = report.components
    assert echo.input_data == [None, "x"]  # binary/null decodes to None, both arguments kept
    assert echo.output_data == {"value": None, "suffix": "x"}
    out = raw.output_data
    assert out["_wfmon"] == "truncated" and out["encoding"] == "binary/plain"
    assert out["size_bytes"] == 70_000
    assert len(out["preview"]) <= 64 * 1024


def test_cancellations_scenario(reports: Reports) -> None:
    """The parent cancels an activity no worker picked up and a running child."""
    report = only(reports, "cancellations")
    assert report.execution.status is ExecutionStatus.COMPLETED
    assert report.execution.output_data == ["activity: CancelledError", "child: CancelledError"]
    activity, child = report.components
    assert (activity.kind, child.kind) == (ComponentKind.ACTIVITY, ComponentKind.CHILD_WORKFLOW)
    for c in (activity, child):
        assert (c.status, c.error_type) == (ComponentStatus.CANCELED, "canceled")
    assert_timing(report)


def test_canceled_activity_details_are_its_reason_not_its_output(reports: Reports) -> None:
    """The server canceled the activity before any attempt started; ActivityTaskCanceled's
    details say so. They are why it ended (error_message), not what it produced."""
    activity = only(reports, "cancellations").components[0]
    assert (activity.status, activity.cancel_requested) == (ComponentStatus.CANCELED, True)
    assert activity.output_data is None
    assert activity.error_message == "canceled: ACTIVITY_ID_NOT_STARTED"
    assert activity.attempt_started_at is None


def test_child_cancel_requested_by_the_parent(reports: Reports) -> None:
    """Canceling a child handle writes RequestCancelExternalWorkflowExecutionInitiated
    naming the child (workflow id and run id): the child shows it, like an activity's
    ActivityTaskCancelRequested."""
    child = only(reports, "cancellations").components[1]
    assert child.child_workflow_id and child.child_workflow_id.endswith("-child")
    assert child.child_run_id
    assert (child.status, child.cancel_requested) == (ComponentStatus.CANCELED, True)
    assert child.output_data is None
    assert child.error_message == "the child workflow was canceled"
    # The other scenarios' children were never asked to cancel.
    assert [c.cancel_requested for c in only(reports, "child_workflow").components] == [
        False,
        False,
    ]

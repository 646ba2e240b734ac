"""Determinism: recorded histories of wfmon's workflows replay against today's code.

The fixtures in ``tests/fixtures/replay`` are real executions (see its README). Replaying
them with :class:`temporalio.worker.Replayer` runs the current workflow code against each
recorded history, under the same workflow sandbox and data converter as the workers
(``build_worker`` uses the SDK's default converter; ``build_sync_worker`` the default one
with the sync's messages converted by ``wfmon.sync.converter``, which reads and writes the
same JSON), and fails with a
``NondeterminismError`` when the code would issue different commands than it did: the
change would break executions in flight. No services are needed.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.api.history.v1 import HistoryEvent
from temporalio.client import WorkflowHistory
from temporalio.converter import DataConverter
from temporalio.worker import Replayer

from wfmon.model import BUILDER_WORKFLOW_TYPE
from wfmon.runtime.workflow import BuilderWorkflow
from wfmon.sync.converter import with_sync_messages
from wfmon.sync.messages import COORDINATOR_WORKFLOW_TYPE, SYNC_BATCH_WORKFLOW_TYPE
from wfmon.sync.workflows import SyncBatchWorkflow, SyncCoordinatorWorkflow

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "replay"
MANIFEST: dict[str, dict[str, Any]] = json.loads((FIXTURES / "manifest.json").read_text())

#: Exactly the workflows the workers register.
WORKFLOWS = [BuilderWorkflow, SyncCoordinatorWorkflow, SyncBatchWorkflow]


@cache
def load(name: str) -> WorkflowHistory:
    return WorkflowHistory.from_json(MANIFEST[name]["workflow_id"], (FIXTURES / name).read_text())


def replay(history: WorkflowHistory) -> None:
    converter = DataConverter.default
    if workflow_type(history) in (COORDINATOR_WORKFLOW_TYPE, SYNC_BATCH_WORKFLOW_TYPE):
        converter = with_sync_messages(converter)

    async def go() -> None:
        # Default runner (the sandbox) and the workers' converter.
        await Replayer(workflows=WORKFLOWS, data_converter=converter).replay_workflow(history)

    asyncio.run(go())


def events_of(history: WorkflowHistory, event_type: EventType.ValueType) -> list[HistoryEvent]:
    return [e for e in history.events if e.event_type == event_type]


def workflow_type(history: WorkflowHistory) -> str:
    return history.events[0].workflow_execution_started_event_attributes.workflow_type.name


@pytest.mark.parametrize("name", sorted(MANIFEST))
def test_recorded_history_replays_without_nondeterminism(name: str) -> None:
    replay(load(name))


def test_manifest_lists_every_fixture() -> None:
    on_disk = {p.name for p in FIXTURES.glob("*.json")} - {"manifest.json"}
    assert on_disk == set(MANIFEST)
    for name, entry in MANIFEST.items():
        assert workflow_type(load(name)) == entry["workflow_type"], name


def test_fixtures_cover_every_workflow_and_what_issue_11_asks_for() -> None:
    """The fixtures still show what they were recorded for (a re-recording that lost a
    scenario would otherwise pass silently)."""
    by_type: dict[str, list[str]] = {}
    for name in MANIFEST:
        by_type.setdefault(workflow_type(load(name)), []).append(name)
    assert set(by_type) == {
        BUILDER_WORKFLOW_TYPE,
        COORDINATOR_WORKFLOW_TYPE,
        SYNC_BATCH_WORKFLOW_TYPE,
    }

    # Builder: parallel branches (two activities scheduled by one workflow task), a retry
    # (an activity started on attempt 2), a failure (with the running branch cancelled).
    parallel = load("builder_parallel_retry.json")
    scheduled_per_task: dict[int, int] = {}
    for e in events_of(parallel, EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED):
        task = e.activity_task_scheduled_event_attributes.workflow_task_completed_event_id
        scheduled_per_task[task] = scheduled_per_task.get(task, 0) + 1
    assert max(scheduled_per_task.values()) >= 2, "two branches scheduled together"
    attempts = [
        e.activity_task_started_event_attributes.attempt
        for e in events_of(parallel, EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED)
    ]
    assert max(attempts) >= 2, "a node was retried"
    assert events_of(parallel, EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED)

    failure = load("builder_failure.json")
    assert events_of(failure, EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED)
    assert events_of(failure, EventType.EVENT_TYPE_ACTIVITY_TASK_CANCEL_REQUESTED)
    assert (
        max(
            e.activity_task_started_event_attributes.attempt
            for e in events_of(failure, EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED)
        )
        >= 2
    )

    # Coordinator: a chain of runs; a run that continued as new had signals and updates.
    runs = sorted(by_type[COORDINATOR_WORKFLOW_TYPE], key=lambda n: int(n.split(".")[1]))
    assert len(runs) >= 2
    continued = [
        load(n)
        for n in runs
        if events_of(load(n), EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW)
    ]
    assert any(
        events_of(h, EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED)
        and events_of(h, EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED)
        for h in continued
    )
    for earlier, later in itertools.pairwise(runs):
        (can,) = events_of(load(earlier), EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW)
        new_run = can.workflow_execution_continued_as_new_event_attributes.new_execution_run_id
        assert MANIFEST[later]["run_id"] == new_run, f"{later} continues {earlier}"

    # Batch: one with retry rounds (timers) and the failure recorded.
    batch = load("sync_batch_failure.json")
    assert events_of(batch, EventType.EVENT_TYPE_TIMER_FIRED)
    activities = {
        e.activity_task_scheduled_event_attributes.activity_type.name
        for e in events_of(batch, EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED)
    }
    assert activities == {"sync_executions", "record_sync_failures"}

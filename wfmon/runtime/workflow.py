"""The builder workflow: one Temporal workflow class that runs any WorkflowDefinition.

Guarantees, for every definition:

- each node runs as one activity whose ``activity_id`` is the node id and whose activity
  type is the node's component, with the node's retry policy and timeouts;
- a node starts as soon as all its upstream nodes have completed, so independent
  branches run concurrently; the order in which activities are scheduled depends only on
  the definition (determinism on replay);
- a node's input is :class:`NodeInput`: its config, the execution input, and
  ``upstream`` = ``{upstream node id: its output}``;
- the first node that fails fails the execution with a ``NodeFailed`` error naming it;
- cancelling the execution cancels running nodes and waits until they report cancelled,
  so their histories end in ActivityTaskCanceled and the execution ends canceled.
"""

from __future__ import annotations

import asyncio
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError, is_cancelled_exception

with workflow.unsafe.imports_passed_through():
    from wfmon.model import BUILDER_WORKFLOW_TYPE, Node, WorkflowDefinition
    from wfmon.runtime.messages import BuilderRunInput, BuilderRunResult, NodeInput

#: Task queue the builder workflow and its component activities run on.
BUILDER_TASK_QUEUE = "wfmon-builder"


@workflow.defn(name=BUILDER_WORKFLOW_TYPE)
class BuilderWorkflow:
    """Runs ``run_input.definition`` node by node along its edges."""

    @workflow.run
    async def run(self, run_input: BuilderRunInput) -> BuilderRunResult:
        try:
            definition = WorkflowDefinition.model_validate(run_input.definition)
        except ValueError as exc:
            # A bad definition cannot get better by retrying the workflow task.
            raise ApplicationError(
                f"invalid workflow definition: {exc}",
                type="InvalidDefinition",
                non_retryable=True,
            ) from None

        tasks: dict[str, asyncio.Task[Any]] = {}
        # Tasks are created in topological order, so each node's upstream tasks exist.
        for node in definition.topological_order():
            upstream = {uid: tasks[uid] for uid in definition.upstream(node.id)}
            tasks[node.id] = asyncio.create_task(self._run_node(node, upstream, run_input))
        try:
            outputs = await asyncio.gather(*tasks.values())
        finally:
            for task in tasks.values():
                task.cancel()
        return BuilderRunResult(outputs=dict(zip(tasks, outputs, strict=True)))

    async def _run_node(
        self, node: Node, upstream: dict[str, asyncio.Task[Any]], run_input: BuilderRunInput
    ) -> Any:
        upstream_outputs = dict(
            zip(upstream, await asyncio.gather(*upstream.values()), strict=True)
        )
        try:
            return await workflow.execute_activity(
                node.component,
                NodeInput(
                    node_id=node.id,
                    component=node.component,
                    config=node.config,
                    workflow_input=run_input.input,
                    upstream=upstream_outputs,
                    connection_id=node.connection_id,
                    project_id=run_input.project_id,
                ),
                activity_id=node.id,
                start_to_close_timeout=node.timeouts.start_to_close,
                schedule_to_close_timeout=node.timeouts.schedule_to_close,
                heartbeat_timeout=node.timeouts.heartbeat,
                retry_policy=node.temporal_retry_policy(),
                cancellation_type=workflow.ActivityCancellationType.WAIT_CANCELLATION_COMPLETED,
            )
        except ActivityError as exc:
            if is_cancelled_exception(exc):
                raise  # the SDK turns this into a canceled (not failed) execution
            raise ApplicationError(
                f"node {node.id!r} ({node.component}) failed",
                type="NodeFailed",
                non_retryable=True,
            ) from exc

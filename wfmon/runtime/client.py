"""Start builder executions: id, memo and search attributes in one place."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from temporalio.client import Client, WorkflowHandle
from temporalio.common import SearchAttributeKey, SearchAttributePair, TypedSearchAttributes

from wfmon.model import WorkflowDefinition
from wfmon.runtime.messages import BuilderRunInput, BuilderRunResult
from wfmon.runtime.workflow import BUILDER_TASK_QUEUE, BuilderWorkflow

WFMON_WORKFLOW_ID = SearchAttributeKey.for_keyword("WfmonWorkflowId")
WFMON_PROJECT_ID = SearchAttributeKey.for_keyword("WfmonProjectId")
WFMON_USER_ID = SearchAttributeKey.for_keyword("WfmonUserId")
WFMON_DEFINITION_VERSION = SearchAttributeKey.for_int("WfmonDefinitionVersion")


@dataclass(frozen=True)
class RunContext:
    """Who and what an execution belongs to in wfmon. ``workflow_id`` defaults to the
    definition's id."""

    workflow_id: str | None = None
    project_id: str | None = None
    user_id: str | None = None


async def start_builder_run(
    client: Client,
    definition: WorkflowDefinition,
    workflow_input: Any = None,
    *,
    context: RunContext | None = None,
    execution_id: str | None = None,
    task_queue: str = BUILDER_TASK_QUEUE,
    **start_options: Any,
) -> WorkflowHandle[BuilderWorkflow, BuilderRunResult]:
    """Start one execution of ``definition``; returns its handle without waiting.

    The memo holds ``wfmon_workflow_id``, ``project_id``, ``user_id`` and
    ``definition_version``; the same values go to the ``Wfmon*`` search attributes (unset
    ids are left out). ``execution_id`` defaults to ``"<definition id>-<uuid4>"``.
    """
    ctx = context or RunContext()
    wfmon_id = ctx.workflow_id or definition.id
    memo: dict[str, Any] = {
        "wfmon_workflow_id": wfmon_id,
        "project_id": ctx.project_id,
        "user_id": ctx.user_id,
        "definition_version": definition.version,
    }
    pairs: list[SearchAttributePair[Any]] = [
        SearchAttributePair(WFMON_WORKFLOW_ID, wfmon_id),
        SearchAttributePair(WFMON_DEFINITION_VERSION, definition.version),
    ]
    if ctx.project_id:
        pairs.append(SearchAttributePair(WFMON_PROJECT_ID, ctx.project_id))
    if ctx.user_id:
        pairs.append(SearchAttributePair(WFMON_USER_ID, ctx.user_id))
    return await client.start_workflow(
        BuilderWorkflow.run,
        BuilderRunInput(
            definition=definition.model_dump(mode="json"),
            input=workflow_input,
            wfmon_workflow_id=wfmon_id,
            project_id=ctx.project_id,
            user_id=ctx.user_id,
        ),
        id=execution_id or f"{definition.id}-{uuid.uuid4()}",
        task_queue=task_queue,
        memo=memo,
        search_attributes=TypedSearchAttributes(pairs),
        **start_options,
    )

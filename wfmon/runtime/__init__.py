"""Running WorkflowDefinitions on Temporal: the builder workflow, components, worker."""

from wfmon.model import BUILDER_WORKFLOW_TYPE
from wfmon.runtime.client import RunContext, start_builder_run
from wfmon.runtime.components import ComponentRegistry, builtin_registry
from wfmon.runtime.messages import BuilderRunInput, BuilderRunResult, NodeInput
from wfmon.runtime.workflow import BUILDER_TASK_QUEUE, BuilderWorkflow

__all__ = [
    "BUILDER_TASK_QUEUE",
    "BUILDER_WORKFLOW_TYPE",
    "BuilderRunInput",
    "BuilderRunResult",
    "BuilderWorkflow",
    "ComponentRegistry",
    "NodeInput",
    "RunContext",
    "builtin_registry",
    "start_builder_run",
]

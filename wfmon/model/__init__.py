"""wfmon's domain models: workflow definitions, nodes and retry policies, and the
vocabulary (statuses, failures, sort orders) everything else derives from."""

from wfmon.model.definition import (
    BUILDER_WORKFLOW_TYPE,
    DEFAULT_START_TO_CLOSE,
    Edge,
    Node,
    NodeTimeouts,
    WorkflowDefinition,
)
from wfmon.model.duration import Duration, format_duration, parse_duration
from wfmon.model.retry import (
    DEFAULT_RETRY_POLICY,
    ExponentialBackoff,
    FailAfterAttempts,
    KeepTrying,
    NoRetries,
    RetryPolicy,
)
from wfmon.model.vocabulary import (
    DEFAULT_EXECUTION_SORT,
    FAILURE_STATUSES,
    ComponentStatus,
    ExecutionSort,
    ExecutionStatus,
    is_failure,
)

__all__ = [
    "BUILDER_WORKFLOW_TYPE",
    "DEFAULT_EXECUTION_SORT",
    "DEFAULT_RETRY_POLICY",
    "DEFAULT_START_TO_CLOSE",
    "FAILURE_STATUSES",
    "ComponentStatus",
    "Duration",
    "Edge",
    "ExecutionSort",
    "ExecutionStatus",
    "ExponentialBackoff",
    "FailAfterAttempts",
    "KeepTrying",
    "NoRetries",
    "Node",
    "NodeTimeouts",
    "RetryPolicy",
    "WorkflowDefinition",
    "format_duration",
    "is_failure",
    "parse_duration",
]

"""wfmon's domain models: workflow definitions, nodes and retry policies."""

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

__all__ = [
    "BUILDER_WORKFLOW_TYPE",
    "DEFAULT_RETRY_POLICY",
    "DEFAULT_START_TO_CLOSE",
    "Duration",
    "Edge",
    "ExponentialBackoff",
    "FailAfterAttempts",
    "KeepTrying",
    "NoRetries",
    "Node",
    "NodeTimeouts",
    "RetryPolicy",
    "WorkflowDefinition",
    "format_duration",
    "parse_duration",
]

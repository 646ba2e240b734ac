"""Temporal history -> execution summary + component executions (pure, no I/O).

The statuses are wfmon's vocabulary (:mod:`wfmon.model.vocabulary`), re-exported here.
"""

from wfmon.history.payloads import DEFAULT_PAYLOAD_LIMIT, MARKER_KEY, PayloadDecoder
from wfmon.history.reader import (
    HistoryFormatError,
    HistoryReader,
    ReadOptions,
    builder_definition,
    events_from_json,
    read_history,
    read_history_json,
)
from wfmon.history.records import (
    ComponentExecution,
    ComponentKind,
    ErrorType,
    ExecutionSummary,
    HistoryReport,
)
from wfmon.model.vocabulary import ComponentStatus, ExecutionStatus

__all__ = [
    "DEFAULT_PAYLOAD_LIMIT",
    "MARKER_KEY",
    "ComponentExecution",
    "ComponentKind",
    "ComponentStatus",
    "ErrorType",
    "ExecutionStatus",
    "ExecutionSummary",
    "HistoryFormatError",
    "HistoryReader",
    "HistoryReport",
    "PayloadDecoder",
    "ReadOptions",
    "builder_definition",
    "events_from_json",
    "read_history",
    "read_history_json",
]

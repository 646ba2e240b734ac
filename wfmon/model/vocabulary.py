"""wfmon's vocabulary, defined once: execution and component statuses, which statuses count
as a failure, and the sort orders of an execution history.

Everything else derives from these: the history reader produces them, the HTTP API's
models and query parameters are typed with them (so the OpenAPI document lists their
values), the database layer maps :class:`ExecutionSort` to its ``ORDER BY`` clauses, and
the dbt models read the failure set from the macro ``wfmon_failure_statuses``
(``dbt_project/macros/vocabulary.sql``, kept equal to :data:`FAILURE_STATUSES` by
``tests/dagster/test_vocabulary.py``). The values are also the ``CHECK`` constraints of
``workflow_executions.status`` and ``component_executions.status`` (migrations/0002).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final


class ExecutionStatus(StrEnum):
    """Status of one workflow execution (a Temporal workflow run)."""

    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELED = "canceled"
    TERMINATED = "terminated"
    TIMED_OUT = "timed_out"
    CONTINUED_AS_NEW = "continued_as_new"


class ComponentStatus(StrEnum):
    """Status of one component (node) execution inside a workflow execution."""

    #: Scheduled, no attempt running yet.
    PENDING = "pending"
    RUNNING = "running"
    #: An attempt failed and the next one is waiting for its retry time.
    RETRYING = "retrying"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELED = "canceled"
    TIMED_OUT = "timed_out"


#: The statuses that count as a failure: an execution that failed, timed out or was
#: terminated. Applied to components it means failed or timed out (a component is never
#: ``terminated``: when its execution is, an open component is ``canceled``). Members are
#: ``StrEnum`` values, so plain strings read from the database test equal to them.
FAILURE_STATUSES: Final[frozenset[str]] = frozenset(
    {ExecutionStatus.FAILED, ExecutionStatus.TIMED_OUT, ExecutionStatus.TERMINATED}
)


def is_failure(status: str) -> bool:
    """True when ``status`` (of an execution or a component) counts as a failure."""
    return status in FAILURE_STATUSES


class ExecutionSort(StrEnum):
    """Orders of a workflow's execution history (the API's ``sort`` values). Each order's
    ``ORDER BY`` clause lives with the query, in ``wfmon.db.executions``."""

    #: Newest first (the default).
    STARTED_AT_DESC = "started_at_desc"
    #: Oldest first.
    STARTED_AT_ASC = "started_at_asc"
    #: Recently closed first; running executions (not closed) come before all of them.
    CLOSED_AT_DESC = "closed_at_desc"
    #: Longest first; executions without a duration last.
    DURATION_DESC = "duration_desc"


DEFAULT_EXECUTION_SORT: Final = ExecutionSort.STARTED_AT_DESC

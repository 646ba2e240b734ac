"""Per-attempt retry history for any Temporal Python worker.

Temporal's history keeps only the last attempt of an activity; wfmon records every one.
One line in a worker::

    import wfmon.attempts

    worker = Worker(
        client,
        task_queue="my-queue",
        workflows=[MyWorkflow],
        activities=[my_activity],
        interceptors=[wfmon.attempts.interceptor(dsn=os.environ["WFMON_RECORDER_URL"])],
    )

The DSN is a login role that may only insert attempt rows (``wfmon_recorder``,
migrations/0550). Recording never fails or slows an activity: records go to a bounded
buffer written in the background; drops are counted and logged. wfmon's sync then shows
every attempt of each activity next to the retry policy Temporal recorded for it (see
docs/user-guide/own-workers.md). wfmon's own builder worker uses the same interceptor.
"""

from wfmon.attempts.interceptor import (
    MAX_STACK_CHARS,
    AttemptInterceptor,
    default_identity,
    interceptor,
)
from wfmon.attempts.postgres import AttemptSinkError, PostgresAttemptSink
from wfmon.attempts.recorder import (
    AttemptRecorder,
    AttemptSink,
    InMemoryAttemptSink,
    RecorderStats,
)
from wfmon.attempts.records import AttemptOutcome, AttemptRecord, to_row

__all__ = [
    "MAX_STACK_CHARS",
    "AttemptInterceptor",
    "AttemptOutcome",
    "AttemptRecord",
    "AttemptRecorder",
    "AttemptSink",
    "AttemptSinkError",
    "InMemoryAttemptSink",
    "PostgresAttemptSink",
    "RecorderStats",
    "default_identity",
    "interceptor",
    "to_row",
]

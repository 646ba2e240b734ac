"""wfmon's own worker records attempts with the public :mod:`wfmon.attempts` code.

Kept so that ``wfmon.runtime.attempts`` imports keep working; everything is defined once,
in :mod:`wfmon.attempts`.
"""

from wfmon.attempts import (
    MAX_STACK_CHARS,
    AttemptInterceptor,
    AttemptOutcome,
    AttemptRecord,
    AttemptRecorder,
    AttemptSink,
    InMemoryAttemptSink,
    RecorderStats,
)

#: The builder worker's name for :class:`wfmon.attempts.AttemptInterceptor`.
AttemptRecordingInterceptor = AttemptInterceptor

__all__ = [
    "MAX_STACK_CHARS",
    "AttemptInterceptor",
    "AttemptOutcome",
    "AttemptRecord",
    "AttemptRecorder",
    "AttemptRecordingInterceptor",
    "AttemptSink",
    "InMemoryAttemptSink",
    "RecorderStats",
]

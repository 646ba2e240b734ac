"""wfmon.model's vocabulary as SQL, spelled once for the statements of ``wfmon.db``.

:data:`FAILED` is the failure set (:data:`wfmon.model.FAILURE_STATUSES`) as an SQL list of
string literals, for ``status IN {FAILED}``. It also serves component statuses: a component
is never ``terminated`` (the ``CHECK`` on ``component_executions.status``), so there it
means failed or timed out. The list is a constant of the statement, as a spelled-out list
was, so plans and partial indexes see the same SQL.
"""

from __future__ import annotations

from typing import Final

from psycopg import sql

from wfmon.model.vocabulary import FAILURE_STATUSES

#: ``('failed', 'terminated', 'timed_out')``, built from FAILURE_STATUSES.
FAILED: Final[str] = (
    sql.SQL("({})")
    .format(sql.SQL(", ").join(map(sql.Literal, sorted(FAILURE_STATUSES))))
    .as_string()
)

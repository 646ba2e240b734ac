"""The database layer: a connection pool, user / system units of work, and queries.

    with Database(url) as db, db.as_user(auth_user_id) as conn:
        page = page_executions(conn, workflow_id)

Everything runs under row-level security: see docs/architecture/database.md.
"""

from wfmon.db.database import Database, DbConnection

__all__ = ["Database", "DbConnection"]

"""Search across executions: the query language (:mod:`wfmon.search.query`)."""

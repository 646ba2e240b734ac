"""Export: executions, component executions or attempts as CSV, JSON Lines or Parquet.

The rows come from :mod:`wfmon.db.export` (``COPY (SELECT ...) TO STDOUT`` under the
caller's row-level security, PostgreSQL formatting them); this package turns them into
the file, a batch at a time (:mod:`wfmon.export.writers`), with the types of
:mod:`wfmon.export.schema`. The API
(``GET /api/export/{kind}.{format}``) and ``wfmon export`` use it; see
docs/user-guide/export.md.
"""

from wfmon.export.schema import ExportFormat, Field, Kind, fields_of
from wfmon.export.writers import ChunkSink, Writer, export_chunks, open_writer

__all__ = [
    "ChunkSink",
    "ExportFormat",
    "Field",
    "Kind",
    "Writer",
    "export_chunks",
    "fields_of",
    "open_writer",
]

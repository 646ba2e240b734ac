"""Export: executions, component executions or attempts as CSV, JSON Lines or Parquet.

The rows come from :mod:`wfmon.db.export` (a server-side cursor under the caller's
row-level security); this package only writes them, a batch at a time, to a binary sink
(:mod:`wfmon.export.writers`), with the types of :mod:`wfmon.export.schema`. The API
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

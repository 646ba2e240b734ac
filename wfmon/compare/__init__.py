"""Comparing two runs of a workflow: a structural JSON diff, the per-node comparison and
the diff between two definition versions. Pure: no I/O, nothing from the API or the
database (the callers read the rows and hand them in)."""

"""Building a comparison of two executions for the API and the page: read both runs
(:mod:`wfmon.db.compare`, under the caller's row-level security), compare them
(:mod:`wfmon.compare`) and shape the result (:mod:`wfmon.api.compare_models`).

Errors: an execution that is missing or not visible is a 404 like any other (never "not
yours"); the same execution twice, or executions of two workflows, are a 422 naming them;
no default partner is a 404 saying there is no successful run of the version to compare
with.
"""

from __future__ import annotations

import gc
import json
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import ValidationError

from wfmon.api.compare_models import DEFAULT_CHANGE_LIMIT, CandidateOut, CandidatesOut
from wfmon.api.errors import NotFound, Unprocessable
from wfmon.compare.diff import MISSING, CappedDiff, Change, format_path, preview
from wfmon.compare.runs import (
    DefinitionDiff,
    NodeComparison,
    NodeRun,
    SettingChange,
    diff_definitions,
    iter_compare_nodes,
)
from wfmon.db import DbConnection
from wfmon.db import compare as q
from wfmon.history.reader import builder_definition
from wfmon.model import WorkflowDefinition
from wfmon.model.definition import BUILDER_WORKFLOW_TYPE

Row = Mapping[str, Any]


# -- the garbage collector ----------------------------------------------------------------
#
# Comparing two 5,000-node runs allocates some 100,000 short-lived containers while tens
# of thousands of rows are alive; the cyclic garbage collector's passes then cost as much
# as the comparison itself (measured: 1.4 s with it, 0.64 s without, on a loaded 2-core
# machine). Nothing here makes reference cycles, so its automatic passes are paused while
# a comparison runs and resumed after (a counter, so overlapping comparisons on several
# threads resume it only when the last one ends). Other threads' cyclic garbage is only
# collected a little later.

_gc_lock = threading.Lock()
_gc_pauses = 0


@contextmanager
def _gc_paused() -> Iterator[None]:
    global _gc_pauses
    with _gc_lock:
        # Paused by someone else (not by a comparison): leave it to them.
        counted = _gc_pauses > 0 or gc.isenabled()
        if counted:
            _gc_pauses += 1
            gc.disable()
    try:
        yield
    finally:
        if counted:
            with _gc_lock:
                _gc_pauses -= 1
                if _gc_pauses == 0:
                    gc.enable()


def _execution(conn: DbConnection, execution_id: UUID) -> dict[str, Any]:
    row = q.compared_execution(conn, execution_id)
    if row is None:
        raise NotFound(f"execution {execution_id} not found")
    return row


def _workflow_words(row: Row) -> str:
    if row["workflow_id"] is None:
        return f"no wfmon workflow (Temporal type {row['workflow_type']!r})"
    return f"workflow {row['workflow_name'] or row['workflow_id']!r}"


def _version_words(version: int | None) -> str:
    return f"version {version}" if version is not None else "an unknown version"


def default_baseline(conn: DbConnection, current: Row) -> tuple[UUID | None, str | None]:
    """The default partner of ``current`` (its id), or None and why not."""
    if current["workflow_id"] is None:
        return None, (
            f"execution {current['id']} belongs to no wfmon workflow: choose an execution "
            "to compare with (?with=<execution id>)"
        )
    found = q.last_successful_before(
        conn,
        execution_id=current["id"],
        workflow_id=current["workflow_id"],
        version=current["workflow_version"],
        started_at=current["started_at"],
    )
    if found is None:
        return None, (
            f"no successful run of {_version_words(current['workflow_version'])} to compare "
            f"with: no execution of {_workflow_words(current)} at that version completed "
            "before this one; choose one with ?with=<execution id>"
        )
    return found, None


def resolve_pair(
    conn: DbConnection, execution_id: UUID, with_id: UUID | None
) -> tuple[dict[str, Any], dict[str, Any], bool]:
    """(current, baseline, whether the baseline is the default), or the API error."""
    current = _execution(conn, execution_id)
    is_default = with_id is None
    if with_id is None:
        with_id, why = default_baseline(conn, current)
        if with_id is None:
            raise NotFound(why or "nothing to compare with")
    elif with_id == execution_id:
        raise Unprocessable(
            f"with: execution {execution_id} cannot be compared with itself; "
            "choose another execution of the same workflow"
        )
    baseline = _execution(conn, with_id)
    if current["workflow_id"] is None or current["workflow_id"] != baseline["workflow_id"]:
        raise Unprocessable(
            f"with: executions of different workflows cannot be compared: execution "
            f"{execution_id} ran {_workflow_words(current)}, execution {with_id} ran "
            f"{_workflow_words(baseline)}"
        )
    return current, baseline, is_default


def definition_of(conn: DbConnection, row: Row) -> WorkflowDefinition | None:
    """The definition the execution ran: its saved workflow version, else (a builder run)
    the definition in its input; None when neither is there or valid."""
    if row["workflow_id"] is not None and row["workflow_version"] is not None:
        saved = q.version_definition(conn, row["workflow_id"], row["workflow_version"])
        if saved:
            try:
                return WorkflowDefinition.model_validate(saved)
            except ValidationError:
                pass
    if row["workflow_type"] == BUILDER_WORKFLOW_TYPE:
        try:
            return builder_definition(q.execution_input(conn, row["id"]))
        except ValueError:
            return None
    return None


def _node_runs(rows: Iterable[Row]) -> list[NodeRun]:
    return [
        NodeRun(
            node_id=r["node_id"],
            status=r["status"],
            component=r["component"],
            duration_ms=r["duration_ms"],
            attempts=r["temporal_attempt"],
            runs=r["runs"],
            error_message=r["error_message"],
            error_type=r["error_type"],
            input_json=r["input_json"],
            output_json=r["output_json"],
        )
        for r in rows
    ]


# -- shaping ------------------------------------------------------------------------------
#
# The comparison is shaped as plain dicts in the form of :class:`CompareOut` (the route
# encodes them node by node with :func:`compare_json`; tests validate the result against
# the model).
# Building 5,000 nodes' worth of pydantic models cost more than the comparison itself.

Json = dict[str, Any]


def _value_change(c: Change) -> Json:
    old, old_cut = (None, False) if c.old is MISSING else preview(c.old)
    new, new_cut = (None, False) if c.new is MISSING else preview(c.new)
    return {
        "path": list(c.path),
        "path_text": format_path(c.path),
        "kind": c.kind,
        "old": old,
        "new": new,
        "old_truncated": old_cut,
        "new_truncated": new_cut,
    }


def _payload(d: CappedDiff) -> Json:
    if not d.total:
        return {"changes": [], "total": 0, "omitted": 0}
    return {
        "changes": [_value_change(c) for c in d.changes],
        "total": d.total,
        "omitted": d.omitted,
    }


def _side(n: NodeRun | None) -> Json | None:
    if n is None:
        return None
    return {
        "status": n.status,
        "component": n.component,
        "duration_ms": n.duration_ms,
        "attempts": n.attempts,
        "runs": n.runs,
        "error_message": n.error_message,
        "error_type": n.error_type,
    }


def setting_out(s: SettingChange) -> Json:
    return {
        "node_id": s.node_id,
        "setting": s.setting,
        "old": s.old,
        "new": s.new,
        "changes": [_value_change(c) for c in s.changes],
        "old_text": s.old_text,
        "new_text": s.new_text,
    }


def definition_diff_out(
    d: DefinitionDiff, old_version: int | None = None, new_version: int | None = None
) -> Json:
    """The API form of a definition diff (:class:`DefinitionDiffOut`; reusable by a "what
    changed between versions" view); versions default to the definitions' own."""
    return {
        "old_version": old_version if old_version is not None else d.old_version,
        "new_version": new_version if new_version is not None else d.new_version,
        "nodes_added": d.nodes_added,
        "nodes_removed": d.nodes_removed,
        "settings": [setting_out(s) for s in d.settings],
        "edges_added": [{"source": s, "target": t} for s, t in d.edges_added],
        "edges_removed": [{"source": s, "target": t} for s, t in d.edges_removed],
    }


def _node_out(c: NodeComparison) -> Json:
    return {
        "node_id": c.node_id,
        "presence": c.presence,
        "changed": c.changed,
        "baseline": _side(c.baseline),
        "current": _side(c.current),
        "duration_delta_ms": c.duration_delta_ms,
        "status_changed": c.status_changed,
        "error_changed": c.error_changed,
        "input": _payload(c.input_diff),
        "output": _payload(c.output_diff),
        "settings": [setting_out(s) for s in c.settings],
    }


_RUN_FIELDS = (
    "id",
    "workflow_id",
    "workflow_name",
    "workflow_version",
    "status",
    "started_at",
    "closed_at",
    "duration_ms",
    "error_message",
)


def _run_summary(row: Row) -> Json:
    return {k: row[k] for k in _RUN_FIELDS}


class _Summary:
    """The summary's counts, accumulated node by node."""

    def __init__(self, current: Row, baseline: Row) -> None:
        self.delta = None
        if current["duration_ms"] is not None and baseline["duration_ms"] is not None:
            self.delta = current["duration_ms"] - baseline["duration_ms"]
        self.nodes = self.in_both = self.baseline_only = self.current_only = 0
        self.changed = self.status_changed = 0

    def add(self, n: NodeComparison) -> None:
        self.nodes += 1
        if n.presence == "both":
            self.in_both += 1
        elif n.presence == "baseline_only":
            self.baseline_only += 1
        else:
            self.current_only += 1
        self.changed += n.changed
        self.status_changed += n.status_changed

    def out(self) -> Json:
        return {
            "nodes": self.nodes,
            "in_both": self.in_both,
            "baseline_only": self.baseline_only,
            "current_only": self.current_only,
            "changed": self.changed,
            "status_changed": self.status_changed,
            "duration_delta_ms": self.delta,
        }


def _json_default(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON")


_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=_json_default)


def _prepare(
    conn: DbConnection, execution_id: UUID, with_id: UUID | None, limit: int
) -> tuple[Json, Iterator[NodeComparison], _Summary]:
    """The comparison's head (everything but the summary and the nodes), the nodes (lazy)
    and the summary they fill in as they are consumed."""
    current, baseline, is_default = resolve_pair(conn, execution_id, with_id)
    same_version = current["workflow_version"] == baseline["workflow_version"]
    ddiff: DefinitionDiff | None = None
    note: str | None = None
    if not same_version:
        old_def, new_def = definition_of(conn, baseline), definition_of(conn, current)
        if old_def is None or new_def is None:
            missing = baseline if old_def is None else current
            note = (
                f"the definition of {_version_words(missing['workflow_version'])} "
                "is not available, so node settings are not compared"
            )
        else:
            ddiff = diff_definitions(old_def, new_def)
    nodes = iter_compare_nodes(
        _node_runs(q.node_rows(conn, baseline["id"])),
        _node_runs(q.node_rows(conn, current["id"])),
        definitions=ddiff,
        limit=limit,
    )
    head = {
        "current": _run_summary(current),
        "baseline": _run_summary(baseline),
        "baseline_is_default": is_default,
        "same_version": same_version,
        "definition": definition_diff_out(
            ddiff, baseline["workflow_version"], current["workflow_version"]
        )
        if ddiff
        else None,
        "definition_note": note,
    }
    return head, nodes, _Summary(current, baseline)


def compare_executions(
    conn: DbConnection,
    execution_id: UUID,
    with_id: UUID | None,
    *,
    changed_only: bool = False,
    limit: int = DEFAULT_CHANGE_LIMIT,
    max_nodes: int | None = None,
) -> Json:
    """The comparison (in the form of :class:`CompareOut`) of ``execution_id`` (current)
    with ``with_id`` (baseline; None: the default partner). ``changed_only`` leaves out
    nodes where nothing but the duration differs; ``limit`` caps the changes listed per
    payload; ``max_nodes`` caps the nodes listed (``shown_total`` counts them all)."""
    shown: list[Json] = []
    shown_total = 0
    with _gc_paused():
        head, nodes, summary = _prepare(conn, execution_id, with_id, limit)
        for n in nodes:
            summary.add(n)
            if changed_only and not n.changed:
                continue
            shown_total += 1
            if max_nodes is None or len(shown) < max_nodes:
                shown.append(_node_out(n))
    return {
        **head,
        "summary": summary.out(),
        "changed_only": changed_only,
        "nodes": shown,
        "shown_total": shown_total,
    }


def compare_json(
    conn: DbConnection,
    execution_id: UUID,
    with_id: UUID | None,
    *,
    changed_only: bool = False,
    limit: int = DEFAULT_CHANGE_LIMIT,
) -> bytes:
    """:func:`compare_executions` as the API's JSON body (:class:`CompareOut`). Each node
    is encoded as soon as it is compared, so thousands of nodes' comparisons and output
    dicts are never alive at once."""
    encode = _ENCODER.encode
    parts: list[str] = []
    with _gc_paused():
        head, nodes, summary = _prepare(conn, execution_id, with_id, limit)
        for n in nodes:
            summary.add(n)
            if changed_only and not n.changed:
                continue
            parts.append(encode(_node_out(n)))
    start = encode({**head, "summary": summary.out(), "changed_only": changed_only})
    return "".join((start[:-1], ',"nodes":[', ",".join(parts), "]}")).encode()


def candidates(conn: DbConnection, execution_id: UUID, limit: int = 25) -> CandidatesOut:
    """The picker's choices for ``execution_id``: the default partner and recent runs."""
    current = _execution(conn, execution_id)
    default, why = default_baseline(conn, current)
    recent = (
        q.recent_executions(
            conn, workflow_id=current["workflow_id"], execution_id=execution_id, limit=limit
        )
        if current["workflow_id"] is not None
        else []
    )
    return CandidatesOut(
        execution_id=execution_id,
        default_baseline=default,
        default_message=why,
        recent=[CandidateOut(**r) for r in recent],
    )

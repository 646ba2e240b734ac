"""Two runs of a workflow side by side: per node, and between their definition versions.

:func:`compare_nodes` takes each run's component rows (one :class:`NodeRun` per node: its
latest run) and pairs them by node id. Diffs go from the *baseline* (the run compared
with) to the *current* run: ``old`` is the baseline's value, ``new`` the current one's.
Payloads arrive as JSON text (PostgreSQL's ``jsonb::text``, which is canonical: equal
documents give equal text), so the common case - a node whose input did not change - is
one string comparison, and only differing payloads are parsed and walked.

:func:`diff_definitions` compares two :class:`~wfmon.model.WorkflowDefinition` versions:
nodes added and removed, each node setting that changed (component, config, retry policy,
timeouts, non-retryable error types, connection) and edges added and removed. It stands
alone: a "what changed between versions" page uses it without any run.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from wfmon.compare.diff import DEFAULT_LIMIT, CappedDiff, Change, diff, diff_capped
from wfmon.model import WorkflowDefinition
from wfmon.model.definition import Node

Presence = Literal["both", "baseline_only", "current_only"]
Setting = Literal[
    "component",
    "config",
    "retry_policy",
    "timeouts",
    "non_retryable_error_types",
    "connection_id",
]
#: Node settings in the order a report lists them.
SETTINGS: Final[tuple[Setting, ...]] = (
    "component",
    "config",
    "retry_policy",
    "timeouts",
    "non_retryable_error_types",
    "connection_id",
)


@dataclass(frozen=True, slots=True)
class NodeRun:
    """One node's latest component run in one execution, as the comparison needs it."""

    node_id: str
    status: str
    component: str | None = None
    duration_ms: int | None = None
    #: The attempt that ended the run (1 = no retry).
    attempts: int = 1
    #: How many times the node ran in the execution (a node can run more than once).
    runs: int = 1
    error_message: str | None = None
    error_type: str | None = None
    #: Input and output as JSON text (None: nothing recorded).
    input_json: str | None = None
    output_json: str | None = None


@dataclass(frozen=True, slots=True)
class NodeComparison:
    node_id: str
    presence: Presence
    baseline: NodeRun | None
    current: NodeRun | None
    #: current - baseline, when both durations are known.
    duration_delta_ms: int | None
    status_changed: bool
    error_changed: bool
    input_diff: CappedDiff
    output_diff: CappedDiff
    #: Settings of this node that differ between the two definitions (empty when the
    #: runs used the same version or a definition is unknown).
    settings: list[SettingChange] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        """Whether anything about the node differs between the runs (not its duration)."""
        return (
            self.presence != "both"
            or self.status_changed
            or self.error_changed
            or self.input_diff.total > 0
            or self.output_diff.total > 0
            or bool(self.settings)
            or (
                self.baseline is not None
                and self.current is not None
                and self.baseline.attempts != self.current.attempts
            )
        )


@dataclass(frozen=True, slots=True)
class SettingChange:
    """One setting of one node that differs between two definition versions.

    ``old`` / ``new`` are the setting's JSON form (defaults filled in, so a policy that
    relied on a default and one that spells it out are equal); ``changes`` is their
    structural diff; ``old_text`` / ``new_text`` describe retry policies in words."""

    node_id: str
    setting: Setting
    old: Any
    new: Any
    changes: list[Change]
    old_text: str | None = None
    new_text: str | None = None


@dataclass(frozen=True, slots=True)
class DefinitionDiff:
    old_version: int
    new_version: int
    nodes_added: list[str]
    nodes_removed: list[str]
    settings: list[SettingChange]
    edges_added: list[tuple[str, str]]
    edges_removed: list[tuple[str, str]]

    @property
    def changed(self) -> bool:
        return bool(
            self.nodes_added
            or self.nodes_removed
            or self.settings
            or self.edges_added
            or self.edges_removed
        )

    def settings_by_node(self) -> dict[str, list[SettingChange]]:
        out: dict[str, list[SettingChange]] = {}
        for s in self.settings:
            out.setdefault(s.node_id, []).append(s)
        return out


# -- definitions --------------------------------------------------------------------------


def _setting(node: Node, setting: Setting) -> Any:
    if setting == "component":
        return node.component
    if setting == "config":
        return node.config
    if setting == "connection_id":
        return node.connection_id
    if setting == "non_retryable_error_types":
        return list(node.non_retryable_error_types)
    value: Any = getattr(node, setting)
    return value.model_dump(mode="json")


def diff_node_settings(old: Node, new: Node) -> list[SettingChange]:
    """The settings of one node (same id) that differ between two definitions."""
    out = []
    for setting in SETTINGS:
        a, b = _setting(old, setting), _setting(new, setting)
        changes = diff(a, b)
        if not changes:
            continue
        texts = (
            (old.retry_policy.describe(), new.retry_policy.describe())
            if setting == "retry_policy"
            else (None, None)
        )
        out.append(SettingChange(old.id, setting, a, b, changes, *texts))
    return out


def diff_definitions(old: WorkflowDefinition, new: WorkflowDefinition) -> DefinitionDiff:
    """What changed from definition ``old`` to ``new``: nodes (by id), their settings and
    the edges. Nodes are listed in ``new``'s order, removed ones in ``old``'s."""
    old_nodes = {n.id: n for n in old.nodes}
    new_ids = {n.id for n in new.nodes}
    settings: list[SettingChange] = []
    added: list[str] = []
    for node in new.nodes:
        before = old_nodes.get(node.id)
        if before is None:
            added.append(node.id)
        else:
            settings.extend(diff_node_settings(before, node))
    removed = [n.id for n in old.nodes if n.id not in new_ids]
    old_edges = dict.fromkeys((e.source, e.target) for e in old.edges)
    new_edges = dict.fromkeys((e.source, e.target) for e in new.edges)
    return DefinitionDiff(
        old_version=old.version,
        new_version=new.version,
        nodes_added=added,
        nodes_removed=removed,
        settings=settings,
        edges_added=[e for e in new_edges if e not in old_edges],
        edges_removed=[e for e in old_edges if e not in new_edges],
    )


# -- runs ---------------------------------------------------------------------------------

_NO_CHANGES: Final = CappedDiff([], 0)


def payload_diff(old_json: str | None, new_json: str | None, limit: int) -> CappedDiff:
    """The capped diff of two JSON texts; equal texts cost one comparison."""
    if old_json == new_json:
        return _NO_CHANGES
    old = None if old_json is None else json.loads(old_json)
    new = None if new_json is None else json.loads(new_json)
    return diff_capped(old, new, limit)


def compare_node(
    node_id: str,
    baseline: NodeRun | None,
    current: NodeRun | None,
    *,
    limit: int = DEFAULT_LIMIT,
    settings: list[SettingChange] | None = None,
) -> NodeComparison:
    settings = settings or []
    if baseline is None or current is None:
        presence: Presence = "baseline_only" if current is None else "current_only"
        return NodeComparison(
            node_id,
            presence,
            baseline,
            current,
            None,
            False,
            False,
            _NO_CHANGES,
            _NO_CHANGES,
            settings,
        )
    delta = None
    if baseline.duration_ms is not None and current.duration_ms is not None:
        delta = current.duration_ms - baseline.duration_ms
    return NodeComparison(
        node_id=node_id,
        presence="both",
        baseline=baseline,
        current=current,
        duration_delta_ms=delta,
        status_changed=baseline.status != current.status,
        error_changed=(baseline.error_message, baseline.error_type)
        != (current.error_message, current.error_type),
        input_diff=payload_diff(baseline.input_json, current.input_json, limit),
        output_diff=payload_diff(baseline.output_json, current.output_json, limit),
        settings=settings,
    )


def iter_compare_nodes(
    baseline: Sequence[NodeRun],
    current: Sequence[NodeRun],
    *,
    definitions: DefinitionDiff | None = None,
    limit: int = DEFAULT_LIMIT,
) -> Iterator[NodeComparison]:
    """One comparison per node that ran in either run: the current run's nodes in its
    order, then those only the baseline ran, in the baseline's order. ``limit`` caps the
    changes kept per payload (the rest are counted). Lazy: a caller that turns each into
    its output at once keeps thousands of them from piling up."""
    by_id = {n.node_id: n for n in baseline}
    settings = definitions.settings_by_node() if definitions else {}
    seen: set[str] = set()
    for node in current:
        seen.add(node.node_id)
        yield compare_node(
            node.node_id,
            by_id.get(node.node_id),
            node,
            limit=limit,
            settings=settings.get(node.node_id),
        )
    for node in baseline:
        if node.node_id not in seen:
            yield compare_node(
                node.node_id, node, None, limit=limit, settings=settings.get(node.node_id)
            )


def compare_nodes(
    baseline: Sequence[NodeRun],
    current: Sequence[NodeRun],
    *,
    definitions: DefinitionDiff | None = None,
    limit: int = DEFAULT_LIMIT,
) -> list[NodeComparison]:
    """:func:`iter_compare_nodes` as a list."""
    return list(iter_compare_nodes(baseline, current, definitions=definitions, limit=limit))

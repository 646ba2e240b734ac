"""What changed between two versions of a definition: nodes added, removed and changed
(each changed setting as a dotted path with its old and new value), edges added and removed.

Definitions are compared as JSON with every default written out
(``WorkflowDefinition.model_dump(mode="json")``, which is how the editor saves them), so a
setting shows as changed only when its value differs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

#: Node keys compared setting by setting (dicts flattened to dotted paths).
_FLATTENED = ("config", "retry_policy", "timeouts")


@dataclass(frozen=True)
class SettingChange:
    """One setting of a node: ``path`` like ``retry_policy.max_attempts`` or ``config.sql``."""

    path: str
    before: Any
    after: Any


@dataclass(frozen=True)
class NodeChange:
    node_id: str
    changes: list[SettingChange]


@dataclass(frozen=True)
class DefinitionDiff:
    from_version: int
    to_version: int
    nodes_added: list[str] = field(default_factory=list)
    nodes_removed: list[str] = field(default_factory=list)
    nodes_changed: list[NodeChange] = field(default_factory=list)
    #: (source, target) pairs.
    edges_added: list[tuple[str, str]] = field(default_factory=list)
    edges_removed: list[tuple[str, str]] = field(default_factory=list)

    @property
    def unchanged(self) -> bool:
        return not (
            self.nodes_added
            or self.nodes_removed
            or self.nodes_changed
            or self.edges_added
            or self.edges_removed
        )


_MISSING: Any = None


def _flatten(value: Any, prefix: str, out: dict[str, Any]) -> None:
    if isinstance(value, dict) and value:
        for k, v in value.items():
            _flatten(v, f"{prefix}.{k}", out)
    else:
        out[prefix] = value


def _settings(node: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "id":
            continue
        if key in _FLATTENED and isinstance(value, dict):
            _flatten(value, key, out)
        else:
            out[key] = value
    return out


def _nodes(definition: dict[str, Any]) -> dict[str, dict[str, Any]]:
    nodes = definition.get("nodes")
    if not isinstance(nodes, list):
        return {}
    return {str(n["id"]): n for n in nodes if isinstance(n, dict) and "id" in n}


def _edges(definition: dict[str, Any]) -> list[tuple[str, str]]:
    edges = definition.get("edges")
    if not isinstance(edges, list):
        return []
    pairs = ((str(e.get("source")), str(e.get("target"))) for e in edges if isinstance(e, dict))
    return list(dict.fromkeys(pairs))


def diff_definitions(
    before: dict[str, Any], after: dict[str, Any], *, from_version: int, to_version: int
) -> DefinitionDiff:
    """The changes that turn ``before`` into ``after`` (node order is not a change)."""
    old, new = _nodes(before), _nodes(after)
    changed: list[NodeChange] = []
    for node_id in (n for n in new if n in old):
        a, b = _settings(old[node_id]), _settings(new[node_id])
        changes = [
            SettingChange(path, a.get(path, _MISSING), b.get(path, _MISSING))
            for path in dict.fromkeys([*a, *b])
            if a.get(path, _MISSING) != b.get(path, _MISSING)
        ]
        if changes:
            changed.append(NodeChange(node_id, changes))
    old_edges, new_edges = _edges(before), _edges(after)
    old_set, new_set = set(old_edges), set(new_edges)
    return DefinitionDiff(
        from_version=from_version,
        to_version=to_version,
        nodes_added=[n for n in new if n not in old],
        nodes_removed=[n for n in old if n not in new],
        nodes_changed=changed,
        edges_added=[e for e in new_edges if e not in old_set],
        edges_removed=[e for e in old_edges if e not in new_set],
    )

"""What travels between the builder workflow, its activities and the client.

Plain dataclasses so Temporal's default JSON converter carries them and any reader of the
history (wfmon's own included) sees ordinary JSON objects.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class BuilderRunInput:
    """The builder workflow's only argument.

    ``definition`` is the :class:`~wfmon.model.WorkflowDefinition` as JSON, so the exact
    version that ran is in the history; the ids are wfmon's, copied into memo and search
    attributes at start.
    """

    definition: dict[str, Any]
    input: Any = None
    wfmon_workflow_id: str | None = None
    project_id: str | None = None
    user_id: str | None = None


@dataclass
class NodeInput:
    """The one argument every component activity receives.

    ``upstream`` maps each upstream node id (edges into this node) to that node's output;
    ``workflow_input`` is the execution's input, the same for every node.
    """

    node_id: str
    component: str
    config: dict[str, Any] = field(default_factory=dict)
    workflow_input: Any = None
    upstream: dict[str, Any] = field(default_factory=dict)
    connection_id: str | None = None
    #: The wfmon project the execution belongs to: components resolve ``connection_id``
    #: within it (a connection of another project is refused).
    project_id: str | None = None

    def document(self) -> dict[str, Any]:
        """The data a component reads by path: ``{"workflow": ..., "upstream": {...}}``."""
        return {"workflow": self.workflow_input, "upstream": self.upstream}


@dataclass
class BuilderRunResult:
    """Every node's output, by node id."""

    outputs: dict[str, Any]

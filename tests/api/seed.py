"""The web app's test people: :func:`wfmon.testing.make_owner` with a dev token.

Executions are :func:`wfmon.testing.seed_execution`'s (re-exported here for the modules
that import it from this one).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from wfmon.db import Database
from wfmon.testing import WorkflowOwner, make_owner
from wfmon.testing import seed_execution as seed_execution


@dataclass(frozen=True)
class Person(WorkflowOwner):
    """A user with a project, a workflow and a dev token."""

    token: str


def make_person(
    db: Database, name: str, secret: str, definition: dict[str, Any] | None = None
) -> Person:
    """A new user ``name`` (also the display name) with a project, a workflow
    ``{name} orders`` of ``definition`` and a dev token signed with ``secret``."""
    owner = make_owner(
        db, name, definition=definition, display_name=name, workflow_name=f"{name} orders"
    )
    return Person(owner.user, owner.project, owner.workflow, owner.dev_token(secret))

"""What editing and running a workflow can refuse, as exceptions the API turns into 4xx."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a definition: where (``nodes.1.retry_policy.max_attempts``,
    ``edges``, ``input``) and why, in words that name the node."""

    field: str
    message: str


class EditError(Exception):
    """Base class: ``str(exc)`` is a message for the user."""


class WorkflowNotFound(EditError):
    """Missing, or not visible to the caller (the two are not told apart)."""


class NotOwner(EditError):
    """The caller may read the workflow (it is public) but only its owner edits or runs it."""


class VersionConflict(EditError):
    """The definition was edited from a version that is no longer the current one."""


class NameTaken(EditError):
    """The project already has a workflow of that name."""


class RunNotStarted(EditError):
    """Temporal refused or did not answer the start (nothing was started)."""


class InvalidDefinition(EditError):
    """The definition would not run; ``problems`` names each reason."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{p.field}: {p.message}" for p in problems))

"""Errors of alert rules and channels. Messages never carry a channel's URL or secret."""

from __future__ import annotations


class AlertError(Exception):
    """Base of the alert errors."""


class InvalidRule(AlertError):
    """Bad input for a rule or its channel (the API answers 422)."""


class RuleNotFound(AlertError):
    """No such rule or project, or not the caller's (the API answers 404)."""


class RuleConflict(AlertError):
    """A rule of that name exists in the project (409)."""


class ChannelError(AlertError):
    """A delivery failed; the message is safe to store and show (no URL, no secret)."""

"""Errors raised by project connections. Messages never contain a connection URL."""

from __future__ import annotations


class ConnectionError_(Exception):
    """Base class of every project-connection error."""


class InvalidConnection(ConnectionError_, ValueError):
    """A URL or option was rejected on input; the message names the problem (never the URL)."""


class ConnectionNotFound(ConnectionError_, LookupError):
    """No connection (or project) with that id is visible to the caller.

    Deliberately the same error for "does not exist" and "belongs to someone else", so a
    caller cannot probe for other users' ids.
    """


class ConnectionConflict(ConnectionError_):
    """A connection with that name already exists in the project."""


class KeyringError(ConnectionError_):
    """``WFMON_SECRET_KEY`` is missing or malformed, or a ciphertext's key is not in it."""


class HostNotAllowed(ConnectionError_):
    """The connection's host resolves to an address the network policy denies."""

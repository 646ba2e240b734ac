"""Project connections: PostgreSQL and Redis URLs stored encrypted, shown masked, tested
safely, and resolved on the worker for the components that use them."""

from wfmon.connections.crypto import Ciphertext, Keyring, generate_key
from wfmon.connections.errors import (
    ConnectionConflict,
    ConnectionNotFound,
    HostNotAllowed,
    InvalidConnection,
    KeyringError,
)
from wfmon.connections.policy import NetworkPolicy
from wfmon.connections.resolver import ConnectionResolver, ResolvedConnection
from wfmon.connections.service import (
    ConnectionInfo,
    ConnectionTestResult,
    check_connectivity,
    create_connection,
    delete_connection,
    get_connection,
    list_connections,
    reencrypt_connections,
    test_connection,
    update_connection,
)
from wfmon.connections.urls import ConnectionType, mask_url, validate_url

__all__ = [
    "Ciphertext",
    "ConnectionConflict",
    "ConnectionInfo",
    "ConnectionNotFound",
    "ConnectionResolver",
    "ConnectionTestResult",
    "ConnectionType",
    "HostNotAllowed",
    "InvalidConnection",
    "Keyring",
    "KeyringError",
    "NetworkPolicy",
    "ResolvedConnection",
    "check_connectivity",
    "create_connection",
    "delete_connection",
    "generate_key",
    "get_connection",
    "list_connections",
    "mask_url",
    "reencrypt_connections",
    "test_connection",
    "update_connection",
    "validate_url",
]

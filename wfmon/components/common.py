"""What every component shares: error constructors, the execution's project id, reading
values from the node's input document, and JSON-safe conversion.

Error rule: a failure a retry may fix is a retryable ``ApplicationError`` (the node's retry
policy decides); one it cannot fix is ``non_retryable=True``. Either way ``type`` names the
failure (``SqlError``, ``ConnectionRefused``...) for the history reader, and the cause chain
is cut (``from None``): driver exceptions can carry hosts and user names, and Temporal
stores the whole chain in the history.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import ipaddress
import math
import re
import uuid
from typing import Any, NoReturn

from temporalio.exceptions import ApplicationError

from wfmon.connections.clients import Failure
from wfmon.runtime.components import resolve_path
from wfmon.runtime.messages import NodeInput


def permanent(error_type: str, message: str) -> ApplicationError:
    return ApplicationError(message, type=error_type, non_retryable=True)


def transient(error_type: str, message: str) -> ApplicationError:
    return ApplicationError(message, type=error_type, non_retryable=False)


def raise_failure(failure: Failure, context: str) -> NoReturn:
    """Raise ``failure`` as an ``ApplicationError``; ``context`` names the connection."""
    message = f"{context}: {failure.message}"
    if failure.retryable:
        raise transient(failure.type, message) from None
    raise permanent(failure.type, message) from None


def config_error(node: NodeInput, message: str) -> ApplicationError:
    return permanent("InvalidConfig", f"{node.component} node {node.node_id!r}: {message}")


# -- the execution's project ---------------------------------------------------------------


async def project_id_of(node: NodeInput) -> str:
    """The wfmon project the running execution belongs to (``NodeInput.project_id``, set by
    the builder workflow from the execution's start arguments).

    Raises a non-retryable ``ConnectionNotFound`` when the execution has no project: a
    connection is only ever used inside the project that owns it.
    """
    if not node.project_id:
        raise permanent(
            "ConnectionNotFound",
            f"node {node.node_id!r} uses a connection, but its execution belongs to no project",
        )
    return node.project_id


def require_connection(node: NodeInput) -> str:
    if not node.connection_id:
        raise config_error(node, "needs a connection (the node's connection_id is not set)")
    return node.connection_id


# -- values from the input document ----------------------------------------------------

_TEMPLATE_FIELD = re.compile(r"\{([^{}]+)\}")


def render_template(document: Any, template: str) -> str:
    """Fill ``{dotted.path}`` fields from the document (a missing path is a TransformError)."""
    return _TEMPLATE_FIELD.sub(lambda m: _scalar_text(resolve_path(document, m.group(1))), template)


def _scalar_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    import json

    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def value_of(document: Any, spec: Any) -> Any:
    """A parameter as configured: ``{"path": "workflow.x"}`` reads the document,
    ``{"template": "id-{workflow.x}"}`` fills a template, ``{"value": v}`` is literal
    (also for objects), ``{"base64": "..."}`` is bytes; any other value is itself."""
    if isinstance(spec, dict) and len(spec) == 1:
        ((kind, arg),) = spec.items()
        if kind == "path" and isinstance(arg, str):
            return resolve_path(document, arg)
        if kind == "template" and isinstance(arg, str):
            return render_template(document, arg)
        if kind == "value":
            return arg
        if kind == "base64" and isinstance(arg, str):
            try:
                return base64.b64decode(arg, validate=True)
            except ValueError:
                raise permanent("InvalidConfig", "a {'base64': ...} value is not base64") from None
    return spec


# -- JSON-safe results -------------------------------------------------------------------


def json_safe(value: Any) -> Any:
    """Convert database / Redis values to JSON: datetimes as ISO 8601, decimals as strings
    (no precision lost), UUIDs and addresses as strings, bytes as ``{"base64": ...}``,
    intervals as seconds, non-finite floats as strings."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, bytes | bytearray | memoryview):
        return {"base64": base64.b64encode(bytes(value)).decode()}
    if isinstance(value, uuid.UUID | ipaddress.IPv4Address | ipaddress.IPv6Address):
        return str(value)
    if isinstance(value, ipaddress.IPv4Network | ipaddress.IPv6Network):
        return str(value)
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [json_safe(v) for v in value]
    return str(value)

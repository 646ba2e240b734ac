"""Names, display names and config JSON Schemas of the four components.

The same data is seeded into the ``components`` table by
``migrations/0100_components_seed.sql``; a test checks that the two agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

_PARAM = {
    "description": "A literal, or {path}, {template}, {value} or {base64}",
}


@dataclass(frozen=True)
class ComponentSpec:
    name: str
    display_name: str
    description: str
    #: Whether the node needs ``connection_id`` and of which type.
    connection_type: str | None
    config_schema: dict[str, Any]


SPECS: tuple[ComponentSpec, ...] = (
    ComponentSpec(
        name="postgresql-query",
        display_name="PostgreSQL query",
        description="Run one parameterised SQL statement on a project PostgreSQL connection.",
        connection_type="postgresql",
        config_schema={
            "type": "object",
            "required": ["sql"],
            "additionalProperties": False,
            "properties": {
                "sql": {"type": "string", "minLength": 1},
                "params": {
                    "oneOf": [
                        {"type": "array", "items": _PARAM},
                        {"type": "object", "additionalProperties": _PARAM},
                    ]
                },
                "read_only": {"type": "boolean", "default": False},
                "statement_timeout_ms": {"type": "integer", "minimum": 1, "maximum": 600000},
                "max_rows": {"type": "integer", "minimum": 1, "maximum": 10000, "default": 1000},
                "max_bytes": {"type": "integer", "minimum": 1, "maximum": 1500000},
            },
        },
    ),
    ComponentSpec(
        name="redis-command",
        display_name="Redis command",
        description="Run one allowlisted Redis command on a project Redis connection.",
        connection_type="redis",
        config_schema={
            "type": "object",
            "required": ["command"],
            "additionalProperties": False,
            "properties": {
                "command": {"type": "string", "minLength": 1},
                "args": {"type": "array", "items": _PARAM},
                "binary": {"type": "boolean", "default": False},
            },
        },
    ),
    ComponentSpec(
        name="typescript-processor",
        display_name="TypeScript processor",
        description="Transform data with TypeScript in a sandbox without any permissions.",
        connection_type=None,
        config_schema={
            "type": "object",
            "required": ["code"],
            "additionalProperties": False,
            "properties": {
                "code": {"type": "string", "minLength": 1},
                "timeout_ms": {"type": "integer", "minimum": 10, "maximum": 60000, "default": 5000},
                "memory_mb": {"type": "integer", "minimum": 32, "maximum": 1024, "default": 128},
                "max_output_bytes": {"type": "integer", "minimum": 1, "maximum": 1500000},
            },
        },
    ),
    ComponentSpec(
        name="cache-aside",
        display_name="Cache-aside",
        description=(
            "Serve the output of a wrapped component from Redis; on a miss run it and store it."
        ),
        connection_type="redis",
        config_schema={
            "type": "object",
            "required": ["key", "wrapped"],
            "additionalProperties": False,
            "properties": {
                "key": {"type": "string", "minLength": 1},
                "ttl_seconds": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": 2592000,
                    "default": 300,
                },
                "wrapped": {
                    "type": "object",
                    "required": ["component"],
                    "properties": {
                        "component": {"type": "string"},
                        "config": {"type": "object"},
                        "connection_id": {"type": ["string", "null"]},
                    },
                },
            },
        },
    ),
)

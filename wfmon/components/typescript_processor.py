"""``typescript-processor``: the user's TypeScript, run in the Deno sandbox.

Config: ``code`` (required; a module whose default export is a function of the input),
``timeout_ms`` (default 5000, at most 60000), ``memory_mb`` (default 128, 32..1024),
``max_output_bytes`` (default 1 MB, at most 1.5 MB: Temporal rejects payloads over 2 MB).

The function receives the node's document ``{"workflow": ..., "upstream": {...}}`` and its
return value (awaited) is the node's output. Every failure is non-retryable: the same code
on the same input fails the same way. See :mod:`wfmon.components.sandbox` for what the
sandbox guarantees.
"""

from __future__ import annotations

from typing import Any

from temporalio import activity

from wfmon.components.common import config_error, permanent
from wfmon.components.sandbox import DenoSandbox, SandboxError, SandboxLimits
from wfmon.runtime.messages import NodeInput


def _bounded(node: NodeInput, key: str, default: int, low: int, high: int) -> int:
    value = node.config.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise config_error(node, f"{key} must be an integer from {low} to {high}")
    return value


def limits_of(node: NodeInput) -> SandboxLimits:
    return SandboxLimits(
        timeout_s=_bounded(node, "timeout_ms", 5000, 10, 60_000) / 1000,
        memory_mb=_bounded(node, "memory_mb", 128, 32, 1024),
        max_output_bytes=_bounded(node, "max_output_bytes", 1_000_000, 1, 1_500_000),
    )


class TypeScriptProcessor:
    """The ``typescript-processor`` activity bound to a sandbox."""

    def __init__(self, sandbox: DenoSandbox) -> None:
        self._sandbox = sandbox

    @activity.defn(name="typescript-processor")
    async def run(self, node: NodeInput) -> Any:
        """Run ``config.code``'s default export on the node's document."""
        code = node.config.get("code")
        if not isinstance(code, str):
            raise config_error(node, "config.code is required (TypeScript source)")
        limits = limits_of(node)
        try:
            return await self._sandbox.run(code, node.document(), limits)
        except SandboxError as exc:
            raise permanent(exc.type.value, exc.message) from None

"""Component activities and the registry that maps component names to them.

A component is a Temporal activity named after the component and taking one
:class:`~wfmon.runtime.messages.NodeInput`. Components raise on failure (never swallow
errors): that is what lets each node's retry policy work. Errors a retry cannot fix are
``ApplicationError(..., non_retryable=True)`` with a ``type`` a user can list.

The built-ins exist to demonstrate and test retries; issue 6 adds real components
(postgresql-query, redis-command, typescript-processor, cache-aside) by registering more.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from temporalio import activity
from temporalio.exceptions import ApplicationError

from wfmon.runtime.messages import NodeInput

ComponentActivity = Callable[[NodeInput], Any]


class ComponentRegistry(Mapping[str, ComponentActivity]):
    """Component name -> activity function. The name is also the Temporal activity type."""

    def __init__(self) -> None:
        self._components: dict[str, ComponentActivity] = {}

    def register(self, fn: ComponentActivity) -> ComponentActivity:
        """Add an ``@activity.defn(name=...)`` function under its activity name."""
        defn = getattr(fn, "__temporal_activity_definition", None)
        name = getattr(defn, "name", None)
        if not isinstance(name, str):
            raise TypeError(f"{fn!r} is not a named @activity.defn function")
        if name in self._components:
            raise ValueError(f"component {name!r} is already registered")
        self._components[name] = fn
        return fn

    def __getitem__(self, name: str) -> ComponentActivity:
        return self._components[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._components)

    def __len__(self) -> int:
        return len(self._components)


# -- transform ---------------------------------------------------------------------------

_TEMPLATE_FIELD = re.compile(r"\{([^{}]+)\}")


def resolve_path(document: Any, path: str) -> Any:
    """Follow a dotted path (``upstream.fetch.items.0.name``) through dicts and lists.

    Raises a non-retryable ``TransformError`` naming the first segment that is missing.
    """
    current = document
    for i, part in enumerate(path.split(".")):
        try:
            if isinstance(current, list):
                current = current[int(part)]
            elif isinstance(current, dict):
                current = current[part]
            else:
                raise KeyError(part)
        except (KeyError, IndexError, ValueError):
            where = ".".join(path.split(".")[: i + 1])
            raise ApplicationError(
                f"path {path!r}: nothing at {where!r}", type="TransformError", non_retryable=True
            ) from None
    return current


@activity.defn(name="transform")
async def transform(node: NodeInput) -> Any:
    """Reshape data deterministically. Config keys (all optional, applied in this order):

    - ``pick``: ``{"out_key": "dotted.path"}`` copies values from the input document
    - ``merge``: ``["dotted.path", ...]`` merges the objects found there
    - ``template``: ``{"out_key": "Hello {workflow.name}"}`` fills ``{path}`` fields
    - ``set``: ``{"out_key": constant}``

    With none of them the output is the input document itself. The document is
    ``{"workflow": <execution input>, "upstream": {node_id: output}}``.
    """
    doc = node.document()
    cfg = node.config
    if not any(k in cfg for k in ("pick", "merge", "template", "set")):
        return doc
    out: dict[str, Any] = {}
    for key, path in cfg.get("pick", {}).items():
        out[key] = resolve_path(doc, path)
    for path in cfg.get("merge", []):
        value = resolve_path(doc, path)
        if not isinstance(value, dict):
            raise ApplicationError(
                f"merge {path!r}: not an object", type="TransformError", non_retryable=True
            )
        out.update(value)
    for key, template in cfg.get("template", {}).items():
        out[key] = _TEMPLATE_FIELD.sub(lambda m: str(resolve_path(doc, m.group(1))), template)
    out.update(cfg.get("set", {}))
    return out


# -- retry demonstrations ----------------------------------------------------------------


@activity.defn(name="flaky")
async def flaky(node: NodeInput) -> dict[str, Any]:
    """Fail the first ``fail_times`` attempts (config, default 1), then succeed.

    The failure is a retryable ``ApplicationError`` of type ``error_type`` (config,
    default ``FlakyError``). Returns ``{"attempt": n, "output": config["output"]}``.
    """
    attempt = activity.info().attempt
    fail_times = int(node.config.get("fail_times", 1))
    if attempt <= fail_times:
        raise ApplicationError(
            f"flaky: attempt {attempt} fails on purpose ({fail_times} planned failures)",
            type=str(node.config.get("error_type", "FlakyError")),
        )
    return {"attempt": attempt, "output": node.config.get("output")}


@activity.defn(name="sleep")
async def sleep(node: NodeInput) -> dict[str, Any]:
    """Sleep ``seconds`` (config, default 1), heartbeating so cancellation arrives promptly."""
    seconds = float(node.config.get("seconds", 1.0))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while (left := deadline - loop.time()) > 0:
        activity.heartbeat()
        await asyncio.sleep(min(left, 0.2))
    return {"slept_seconds": seconds}


@activity.defn(name="always-fail")
async def always_fail(node: NodeInput) -> None:
    """Fail permanently: a non-retryable ``ApplicationError`` (type from config, default
    ``PermanentError``), so no retry policy retries it."""
    raise ApplicationError(
        str(node.config.get("message", "always-fail: this component always fails")),
        type=str(node.config.get("error_type", "PermanentError")),
        non_retryable=True,
    )


def builtin_registry() -> ComponentRegistry:
    """A fresh registry holding the built-in components."""
    registry = ComponentRegistry()
    for fn in (transform, flaky, sleep, always_fail):
        registry.register(fn)
    return registry

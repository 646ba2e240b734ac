"""A definition is accepted only when the runtime would run it.

Checks, in order (each problem names the node or edge):

1. :class:`wfmon.model.WorkflowDefinition` (the model the builder workflow runs): node ids,
   retry policies (the four strategies of :mod:`wfmon.model.retry`), timeouts, edges that
   join known nodes, no cycle.
2. Every node's component is one a worker registers (the built-ins and
   :data:`wfmon.components.SPECS`), and a component's config matches its spec's JSON Schema,
   plus what the component itself checks before it runs (``$n`` count against ``params``,
   the Redis command allowlist and arity, what cache-aside may wrap).
3. A node's connection belongs to the workflow's project and is of the type its component
   needs (a PostgreSQL node -> a postgresql connection, Redis and cache-aside -> redis).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any, get_args

from jsonschema import Draft202012Validator
from pydantic import TypeAdapter, ValidationError
from temporalio.exceptions import ApplicationError

from wfmon.components import SPECS, ComponentSpec
from wfmon.components.redis_command import check_command
from wfmon.components.sql_params import SqlParamError, positional_count, to_positional
from wfmon.model import WorkflowDefinition
from wfmon.model.retry import RetryPolicy
from wfmon.runtime import builtin_registry
from wfmon.runtime.messages import NodeInput
from wfmon.workflows.errors import InvalidDefinition, Problem

#: The four strategies' names, in the model's order (also the tags pydantic puts into the
#: error locations of the discriminated union).
STRATEGIES: tuple[str, ...] = tuple(
    cls.model_fields["strategy"].default for cls in get_args(get_args(RetryPolicy)[0])
)
_STRATEGY_TAGS = frozenset(STRATEGIES)
_RETRY_POLICY: TypeAdapter[RetryPolicy] = TypeAdapter(RetryPolicy)

#: connection id (text) -> connection type ("postgresql", "redis") of the project.
ProjectConnections = Mapping[str, str]


@cache
def specs_by_name() -> Mapping[str, ComponentSpec]:
    return {s.name: s for s in SPECS}


@cache
def builtin_components() -> tuple[str, ...]:
    """Components every builder worker registers that have no spec (demo and test ones)."""
    return tuple(name for name in builtin_registry() if name not in specs_by_name())


def known_components() -> list[str]:
    return [*specs_by_name(), *builtin_components()]


def _field(loc: tuple[Any, ...] | list[Any]) -> str:
    # Drop the strategy tag pydantic inserts: "retry_policy.fail_after_attempts.max_attempts"
    # is "retry_policy.max_attempts" to the person editing it.
    parts = [
        str(p)
        for i, p in enumerate(loc)
        if not (p in _STRATEGY_TAGS and (i == 0 or loc[i - 1] == "retry_policy"))
    ]
    return ".".join(parts)


def _message(msg: str) -> str:
    return msg.removeprefix("Value error, ")


def pydantic_problems(exc: ValidationError, prefix: str = "") -> list[Problem]:
    """One problem per pydantic error, the field written as the editor names it."""
    # An error without a location is the union's tag: the ``strategy`` itself.
    return [
        Problem(prefix + (_field(e["loc"]) or "strategy"), _message(e["msg"])) for e in exc.errors()
    ]


def validate_retry_policy(raw: Any) -> RetryPolicy:
    """The policy the runtime would use; :class:`InvalidDefinition` naming each bad field
    (``max_attempts``, ``interval``...) otherwise."""
    try:
        return _RETRY_POLICY.validate_python(raw)
    except ValidationError as exc:
        raise InvalidDefinition(pydantic_problems(exc)) from None


def _node_label(raw: Any, index: int) -> str:
    nodes = raw.get("nodes") if isinstance(raw, dict) else None
    if isinstance(nodes, list) and index < len(nodes) and isinstance(nodes[index], dict):
        node_id = nodes[index].get("id")
        if isinstance(node_id, str) and node_id:
            return f"node {node_id!r}"
    return f"node {index + 1}"


def _edge_label(raw: Any, index: int) -> str:
    edges = raw.get("edges") if isinstance(raw, dict) else None
    if isinstance(edges, list) and index < len(edges) and isinstance(edges[index], dict):
        return f"edge {edges[index].get('source')!r} -> {edges[index].get('target')!r}"
    return f"edge {index + 1}"


def _model_problems(exc: ValidationError, raw: Any) -> list[Problem]:
    out: list[Problem] = []
    for e in exc.errors():
        loc, msg = tuple(e["loc"]), _message(e["msg"])
        if not loc and ": " in msg:
            # The graph check reports "edges.0.target: unknown node 'x'" / "edges: cycle ...".
            where, _, msg = msg.partition(": ")
            loc = tuple(int(p) if p.isdigit() else p for p in where.split("."))
        label = ""
        if len(loc) >= 2 and loc[0] == "nodes" and isinstance(loc[1], int):
            label = _node_label(raw, loc[1]) + ": "
        elif len(loc) >= 2 and loc[0] == "edges" and isinstance(loc[1], int):
            label = _edge_label(raw, loc[1]) + ": "
        out.append(Problem(_field(loc) or "definition", label + msg))
    return out


def _schema_problems(spec: ComponentSpec, config: Any, where: str, who: str) -> list[Problem]:
    validator = Draft202012Validator(spec.config_schema)
    return [
        Problem(".".join([where, *(str(p) for p in err.absolute_path)]), f"{who}: {err.message}")
        for err in sorted(validator.iter_errors(config), key=lambda e: list(e.absolute_path))
    ]


def _component_problems(
    node_id: str,
    component: str,
    config: dict[str, Any],
    connection_id: str | None,
    where: str,
    connections: ProjectConnections,
) -> list[Problem]:
    """What is wrong with one component use (a node, or what a cache-aside node wraps)."""
    who = f"node {node_id!r}"
    spec = specs_by_name().get(component)
    if spec is None and component not in builtin_components():
        return [
            Problem(
                f"{where}.component",
                f"{who}: unknown component {component!r} (known: {', '.join(known_components())})",
            )
        ]
    problems: list[Problem] = []
    wanted = spec.connection_type if spec else None
    if wanted is None and connection_id:
        problems.append(Problem(f"{where}.connection_id", f"{who}: {component} uses no connection"))
    elif wanted is not None and not connection_id:
        problems.append(
            Problem(f"{where}.connection_id", f"{who}: {component} needs a {wanted} connection")
        )
    elif wanted is not None and connections.get(str(connection_id)) != wanted:
        problems.append(
            Problem(
                f"{where}.connection_id",
                f"{who}: connection {connection_id} is not a {wanted} connection of this project",
            )
        )
    if spec is None:
        return problems
    schema_problems = _schema_problems(spec, config, f"{where}.config", who)
    problems += schema_problems
    if schema_problems:
        return problems
    problems += _runtime_checks(node_id, spec.name, config, where, who, connections)
    return problems


def _runtime_checks(
    node_id: str,
    component: str,
    config: dict[str, Any],
    where: str,
    who: str,
    connections: ProjectConnections,
) -> list[Problem]:
    """The checks the component makes before it runs, made now (same functions)."""
    if component == "postgresql-query":
        sql, params = config["sql"], config.get("params")
        try:
            if isinstance(params, dict):
                _, names = to_positional(sql)
                missing = [n for n in names if n not in params]
                if missing:
                    return [
                        Problem(
                            f"{where}.config.params",
                            f"{who}: sql uses :{missing[0]} but params has no {missing[0]!r}",
                        )
                    ]
            else:
                needed, given = positional_count(sql), len(params or [])
                if needed != given:
                    return [
                        Problem(
                            f"{where}.config.params",
                            f"{who}: sql uses {needed} positional parameter(s) ($1..${needed}) "
                            f"but params has {given}",
                        )
                    ]
        except SqlParamError as exc:
            return [Problem(f"{where}.config.sql", f"{who}: sql: {exc}")]
    elif component == "redis-command":
        node = NodeInput(node_id=node_id, component=component, config=config)
        try:
            check_command(node, config["command"], list(config.get("args") or []))
        except ApplicationError as exc:
            return [Problem(f"{where}.config.command", exc.message)]
    elif component == "cache-aside":
        wrapped = config["wrapped"]
        if wrapped["component"] == "cache-aside":
            return [Problem(f"{where}.config.wrapped.component", f"{who}: cannot wrap cache-aside")]
        return _component_problems(
            node_id,
            wrapped["component"],
            dict(wrapped.get("config") or {}),
            wrapped.get("connection_id"),
            f"{where}.config.wrapped",
            connections,
        )
    return []


def validate_definition(
    raw: Any, *, connections: ProjectConnections, fixed: Mapping[str, Any] | None = None
) -> WorkflowDefinition:
    """The definition the builder workflow will run, or :class:`InvalidDefinition` listing
    every problem. ``fixed`` overrides top-level fields the server decides (id, name,
    version); ``connections`` are the workflow's project's."""
    if not isinstance(raw, dict):
        raise InvalidDefinition([Problem("definition", "must be an object with nodes and edges")])
    document = {**raw, **(fixed or {})}
    try:
        definition = WorkflowDefinition.model_validate(document)
    except ValidationError as exc:
        raise InvalidDefinition(_model_problems(exc, document)) from None
    problems: list[Problem] = []
    for i, node in enumerate(definition.nodes):
        problems += _component_problems(
            node.id, node.component, node.config, node.connection_id, f"nodes.{i}", connections
        )
    if problems:
        raise InvalidDefinition(problems)
    return definition

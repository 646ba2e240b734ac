"""A schema-driven fuzz pass over the OpenAPI document: no input may cause a 500.

For every operation the document describes, parameters and bodies are generated from
their schemas (valid values, real ids of the caller and of another user, boundary values,
wrong types, malformed and hostile strings) and sent over HTTP to the real app. Every
answer must be below 500, and every error must be the API's JSON error body.
"""

from __future__ import annotations

import json
import random
import uuid
from collections import Counter
from typing import Any

from tests.api.conftest import Http, World

HOSTILE_STRINGS = [
    "",
    " ",
    "not-a-uuid",
    "0",
    "-1",
    "' OR 1=1 --",
    "%00",
    "\u0000",
    "../../etc/passwd",
    "💥" * 50,
    "x" * 5000,
    "00000000-0000-0000-0000-000000000000",
    "00000000-0000-0000-0000-000000000001",
]
HOSTILE_NUMBERS: list[Any] = [
    -1,
    0,
    1,
    2,
    99,
    100,
    101,
    500,
    501,
    2**31,
    2**63,
    -(2**63),
    1.5,
    "1e9",
]
CASES_PER_OPERATION = 60


def resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = spec["components"]["schemas"][name]
    return schema


def value_for(
    spec: dict[str, Any], schema: dict[str, Any], rng: random.Random, depth: int = 0
) -> Any:
    """A value: usually valid for ``schema``, sometimes deliberately not."""
    schema = resolve(spec, schema)
    if rng.random() < 0.15:
        return rng.choice(
            [None, True, -1, 3.5, "🙂", [], {}, "x" * 3000, rng.choice(HOSTILE_STRINGS)]
        )
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return value_for(spec, rng.choice(schema[key]), rng, depth)
    if "enum" in schema:
        return rng.choice([*schema["enum"], "bogus"])
    if "const" in schema:
        return schema["const"]
    kind = schema.get("type")
    if kind == "boolean":
        return rng.choice([True, False])
    if kind == "integer":
        lo, hi = schema.get("minimum", -5), schema.get("maximum", 1000)
        return rng.choice([lo, hi, lo - 1, hi + 1, rng.randint(int(lo), int(min(hi, 10**6)))])
    if kind == "number":
        return rng.uniform(-1e6, 1e6)
    if kind == "string":
        if schema.get("format") == "uuid":
            return str(uuid.uuid4())
        return rng.choice(
            [
                "warehouse",
                "postgresql://u:p@127.0.0.1:1/db",
                "redis://127.0.0.1:1/0",
                *HOSTILE_STRINGS,
            ]
        )
    if kind == "array":
        return [
            value_for(spec, schema.get("items", {}), rng, depth + 1)
            for _ in range(rng.randint(0, 3))
        ]
    if kind == "object" or "properties" in schema:
        if depth > 3:
            return {}
        out = {}
        for name, sub in schema.get("properties", {}).items():
            if name in schema.get("required", []) or rng.random() < 0.6:
                out[name] = value_for(spec, sub, rng, depth + 1)
        if rng.random() < 0.1:
            out["unexpected_field"] = "boo"
        return out
    return rng.choice([None, 1, "x", {"a": [1, 2]}])


def test_no_input_causes_a_server_error(world: World) -> None:
    h = world.http(world.alice)
    spec = h.get("/api/openapi.json").json()
    conn = h.post(
        f"/api/projects/{world.alice.project.id}/connections",
        {"name": "fuzz-target", "connection_type": "redis", "url": "redis://:pw@127.0.0.1:1/0"},
    ).json()
    real_ids: dict[str, list[str]] = {
        "execution_id": [str(v) for v in world.executions.values()],
        "workflow_id": [str(world.alice.workflow.id), str(world.bob.workflow.id)],
        "project_id": [str(world.alice.project.id), str(world.bob.project.id)],
        "connection_id": [conn["id"]],
    }
    rng = random.Random(20261125)
    clients = [h, world.http(world.bob), Http(world.url, "not.a.token")]
    checked = 0
    seen: Counter[int] = Counter()
    failures: list[str] = []
    for path, operations in spec["paths"].items():
        for method, op in operations.items():
            if method not in ("get", "post", "patch", "put", "delete"):
                continue
            params = [resolve(spec, p) for p in op.get("parameters", [])]
            body_schema = (
                op.get("requestBody", {})
                .get("content", {})
                .get("application/json", {})
                .get("schema")
            )
            for _case in range(CASES_PER_OPERATION):
                url = path
                query: list[str] = []
                for p in params:
                    schema = p.get("schema", {})
                    if p["in"] == "path":
                        pool = (
                            real_ids.get(p["name"], []) * 3 + HOSTILE_STRINGS + [str(uuid.uuid4())]
                        )
                        v: Any = rng.choice(pool)
                        url = url.replace("{" + p["name"] + "}", _quote(str(v)) or "%20")
                    elif p["in"] == "query" and rng.random() < 0.7:
                        v = value_for(spec, schema, rng)
                        if rng.random() < 0.2:
                            v = rng.choice(HOSTILE_NUMBERS + HOSTILE_STRINGS)
                        query.append(f"{p['name']}={_quote(_plain(v))}")
                if query:
                    url += "?" + "&".join(query)
                client = rng.choice(clients)
                raw: bytes | None = None
                body = None
                if body_schema is not None or method in ("post", "patch"):
                    roll = rng.random()
                    if roll < 0.1:
                        raw = rng.choice([b"{", b"[]", b"null", b'"x"', b"\xff\xfe", b"{" * 5000])
                    elif body_schema is not None:
                        body = value_for(spec, body_schema, rng)
                headers = {"Content-Type": "application/json"} if raw is not None else None
                reply = client.request(method.upper(), url, body, raw=raw, headers=headers)
                checked += 1
                seen[reply.status] += 1
                if reply.status >= 500:
                    failures.append(f"{method.upper()} {url} -> {reply.status}: {reply.text[:200]}")
                elif reply.status >= 400:
                    err = json.loads(reply.body)
                    if not (isinstance(err, dict) and {"error", "message"} <= set(err)):
                        failures.append(
                            f"{method.upper()} {url} -> {reply.status} not an error body"
                        )
    assert checked > 500
    print(f"fuzz: {checked} requests, statuses {dict(sorted(seen.items()))}")
    assert {200, 401, 404, 422} <= set(seen), "the pass reached past validation"
    assert not failures, "\n".join(failures[:20])


def _plain(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return ""
    if isinstance(v, dict | list):
        return json.dumps(v)
    return str(v)


def _quote(s: str) -> str:
    from urllib.parse import quote

    return quote(s, safe="")

"""A schema-driven fuzz pass over the OpenAPI document: no input may cause a 500.

For every operation the document describes, parameters and bodies are generated from
their schemas (valid values, real ids of the caller and of another user, boundary values,
wrong types, malformed and hostile strings) and sent over HTTP to the real app. Every
answer must be below 500, and every error must be the API's JSON error body.

A second pass sends NUL, other control characters and lone surrogates to every string
field (and into every JSON object field) of every request body the document describes:
each must be a 422 naming the field, by the rule the schema marks (``x-wfmon-text``).
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
    "a\u0000b",
    "\u0001",
    "\u001b[2J",
    "\u007f",
    "line\nbreak",
    "\ud800",
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

    return quote(s, safe="", errors="surrogatepass")


# -- control characters in stored text ------------------------------------------------------

#: (probe, refused by: "always" | "multi-line" | "single-line").
TEXT_PROBES: list[tuple[str, str]] = [
    ("a\u0000b", "always"),
    ("\u0000", "always"),
    ("x\ud800", "always"),
    ("\udfffx", "always"),
    ("a\u0001b", "multi-line"),
    ("\u0008", "multi-line"),
    ("\u000b", "multi-line"),
    ("\u000c", "multi-line"),
    ("\u001b[31mred", "multi-line"),
    ("\u001f", "multi-line"),
    ("del\u007f", "multi-line"),
    ("tab\there", "single-line"),
    ("two\nlines", "single-line"),
    ("cr\rhere", "single-line"),
    ("crlf\r\n", "single-line"),
]
#: JSON object fields (stored as jsonb): (value, path of the offending item inside it; a
#: bad key is named with the character escaped, as the literal text ``\u0000``).
JSON_PROBES: list[tuple[dict[str, Any], tuple[str | int, ...]]] = [
    ({"k": "a\u0000b"}, ("k",)),
    ({"a\u0000": 1}, ("a\\u0000",)),
    ({"k": ["ok", {"deep": "\u0000"}]}, ("k", 1, "deep")),
    ({"k": {"x\ud800": "y"}}, ("k", "x\\ud800")),
    ({"k\u0000": {"v": "\u0000"}}, ("k\\u0000", "v")),
]


def _variants(spec: dict[str, Any], schema: dict[str, Any]) -> list[dict[str, Any]]:
    schema = resolve(spec, schema)
    for key in ("anyOf", "oneOf"):
        if key in schema:
            return [v for sub in schema[key] for v in _variants(spec, sub)]
    return [schema]


def stored_fields(
    spec: dict[str, Any], schema: dict[str, Any], path: tuple[str | int, ...] = ()
) -> list[tuple[tuple[str | int, ...], str, dict[str, Any]]]:
    """Every string and free-form object field of a body schema, at any depth:
    (path, "text" | "json", its schema)."""
    out: list[tuple[tuple[str | int, ...], str, dict[str, Any]]] = []
    for variant in _variants(spec, schema):
        kind = variant.get("type")
        if kind == "string" and "enum" not in variant and "format" not in variant:
            out.append((path, "text", variant))
        elif kind == "array":
            out.extend(stored_fields(spec, variant.get("items", {}), (*path, 0)))
        elif kind == "object" or "properties" in variant:
            props = variant.get("properties", {})
            if not props and variant.get("additionalProperties", True) is not False:
                out.append((path, "json", variant))
            for name, sub in props.items():
                out.extend(stored_fields(spec, sub, (*path, name)))
    return out


def valid_value(spec: dict[str, Any], schema: dict[str, Any], name: str, serial: int) -> Any:
    """A value the API accepts for a required field (known fields by name)."""
    known: dict[str, Any] = {
        "name": f"ctl-probe-{serial}",
        "url": "redis://127.0.0.1:1/0",
        "connection_type": "redis",
    }
    if name in known:
        return known[name]
    schema = _variants(spec, schema)[0]
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "string":
        return str(uuid.uuid4()) if schema.get("format") == "uuid" else "x"
    if kind == "boolean":
        return False
    if kind in ("integer", "number"):
        return schema.get("minimum", 1)
    if kind == "array":
        return []
    return {}


def base_body(spec: dict[str, Any], schema: dict[str, Any], serial: int) -> dict[str, Any]:
    body_schema = next(v for v in _variants(spec, schema) if v.get("type") == "object")
    return {
        name: valid_value(spec, sub, name, serial)
        for name, sub in body_schema.get("properties", {}).items()
        if name in body_schema.get("required", [])
    }


def put(body: Any, path: tuple[str | int, ...], value: Any) -> Any:
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(head, int):
        return [put(None, rest, value)]
    out = dict(body or {})
    out[head] = put(out.get(head), rest, value)
    return out


def test_control_characters_in_stored_text_are_a_422_naming_the_field(world: World) -> None:
    h = world.http(world.alice)
    spec = h.get("/api/openapi.json").json()
    conn = h.post(
        f"/api/projects/{world.alice.project.id}/connections",
        {"name": "ctl-target", "connection_type": "redis", "url": "redis://127.0.0.1:1/0"},
    )
    assert conn.status == 201, conn.text
    ids = {
        "project_id": str(world.alice.project.id),
        "workflow_id": str(world.alice.workflow.id),
        "execution_id": str(world.executions["completed"]),
        "connection_id": conn.json()["id"],
        "rule_id": h.post(
            f"/api/projects/{world.alice.project.id}/alert-rules",
            {"name": "ctl-rule", "kind": "execution_failed", "channel": {
                "type": "webhook", "url": "http://127.0.0.1:1/hook",
                "signing_secret": "0123456789abcdef"}},
        ).json()["id"],
    }  # fmt: skip
    serial = 0
    probed: Counter[str] = Counter()
    failures: list[str] = []
    for path, operations in spec["paths"].items():
        for method, op in operations.items():
            schema = (
                op.get("requestBody", {})
                .get("content", {})
                .get("application/json", {})
                .get("schema")
            )
            if schema is None:
                continue
            url = path
            for p in op.get("parameters", []):
                p = resolve(spec, p)
                if p["in"] == "path":
                    url = url.replace("{" + p["name"] + "}", ids[p["name"]])
            for field_path, kind, field_schema in stored_fields(spec, schema):
                field = ".".join(str(part) for part in ("body", *field_path))
                cases: list[tuple[Any, str | None]] = []  # value, expected field (None: allowed)
                if kind == "text":
                    rule = field_schema.get("x-wfmon-text")
                    refused = {
                        "single-line": {"always", "multi-line", "single-line"},
                        "multi-line": {"always", "multi-line"},
                    }.get(rule, {"always"})
                    cases += [(v, field if by in refused else None) for v, by in TEXT_PROBES]
                else:
                    for value, inner in JSON_PROBES:
                        inner_field = ".".join(str(part) for part in (field, *inner))
                        cases.append((value, inner_field))
                for value, expected in cases:
                    serial += 1
                    body = put(base_body(spec, schema, serial), field_path, value)
                    reply = h.request(method.upper(), url, body)
                    probed[f"{method.upper()} {path} {field}"] += 1
                    what = f"{method.upper()} {url} {field}={value!r} -> {reply.status}"
                    if reply.status >= 500:
                        failures.append(f"{what}: {reply.text[:200]}")
                    elif expected is not None:
                        err = reply.json() if reply.status == 422 else {}
                        named = [f["field"] for f in err.get("fields", [])]
                        if reply.status != 422 or expected not in named:
                            failures.append(f"{what}, fields {named} (expected {expected})")
    print(f"control characters: {sum(probed.values())} requests over {dict(probed)}")
    for must in (
        "POST /api/projects/{project_id}/connections body.name",
        "POST /api/projects/{project_id}/connections body.url",
        "POST /api/projects/{project_id}/connections body.config",
        "PATCH /api/connections/{connection_id} body.name",
        "PATCH /api/connections/{connection_id} body.url",
        "PATCH /api/connections/{connection_id} body.config",
    ):
        assert probed[must], f"the schema walk reached {must}"
    assert not failures, f"{len(failures)} failures:\n" + "\n".join(failures[:30])

"""Project connections: list, create, read, update, delete, test. URLs only ever masked."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter, Response
from starlette.concurrency import run_in_threadpool

from wfmon.api.deps import Context, CurrentUser, UserConn
from wfmon.api.errors import ERROR_RESPONSES, ErrorBody, NotFound
from wfmon.api.models import ConnectionCreate, ConnectionOut, ConnectionTestOut, ConnectionUpdate
from wfmon.connections import service as cs
from wfmon.db import projects

router = APIRouter(prefix="/api", tags=["connections"], responses=ERROR_RESPONSES)

_CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"model": ErrorBody, "description": "Name already used in the project"}
}


def _out(info: cs.ConnectionInfo) -> ConnectionOut:
    return ConnectionOut(
        id=info.id,
        project_id=info.project_id,
        name=info.name,
        connection_type=info.connection_type.value,
        masked_url=info.masked_url,
        config=info.config,
        created_at=info.created_at,
        updated_at=info.updated_at,
    )


@router.get("/projects/{project_id}/connections", response_model=list[ConnectionOut])
def list_connections(project_id: UUID, conn: UserConn) -> list[ConnectionOut]:
    if projects.get_project(conn, project_id) is None:
        raise NotFound(f"project {project_id} not found")
    return [_out(i) for i in cs.list_connections(conn, project_id)]


@router.post(
    "/projects/{project_id}/connections",
    response_model=ConnectionOut,
    status_code=201,
    responses=_CONFLICT,
)
def create_connection(
    project_id: UUID, body: ConnectionCreate, ctx: Context, conn: UserConn
) -> ConnectionOut:
    """Validate, encrypt and store a connection; the answer carries the masked URL only."""
    info = cs.create_connection(
        conn,
        project_id=project_id,
        name=body.name,
        connection_type=body.connection_type,
        url=body.url,
        config=body.config,
        keyring=ctx.require_keyring(),
        policy=ctx.policy,
    )
    return _out(info)


@router.get("/connections/{connection_id}", response_model=ConnectionOut)
def get_connection(connection_id: UUID, conn: UserConn) -> ConnectionOut:
    return _out(cs.get_connection(conn, connection_id))


@router.patch("/connections/{connection_id}", response_model=ConnectionOut, responses=_CONFLICT)
def update_connection(
    connection_id: UUID, body: ConnectionUpdate, ctx: Context, conn: UserConn
) -> ConnectionOut:
    """Change name, URL and/or options; fields left out keep their values."""
    return _out(
        cs.update_connection(
            conn,
            connection_id,
            keyring=ctx.require_keyring(),
            name=body.name,
            url=body.url,
            config=body.config,
            policy=ctx.policy,
        )
    )


@router.delete("/connections/{connection_id}", status_code=204, response_class=Response)
def delete_connection(connection_id: UUID, conn: UserConn) -> Response:
    cs.delete_connection(conn, connection_id)
    return Response(status_code=204)


@router.post("/connections/{connection_id}/test", response_model=ConnectionTestOut)
async def test_connection(
    connection_id: UUID, ctx: Context, user: CurrentUser
) -> ConnectionTestOut:
    """Connect and run one round trip (``SELECT 1`` / ``PING``) within 5 s. A failed
    connection is a 200 with ``ok: false`` and a sanitized message."""
    keyring = ctx.require_keyring()

    def load() -> tuple[cs.ConnectionInfo, str]:
        with ctx.db.as_user(user.auth_user_id) as conn:
            return cs.load_secret(conn, connection_id, keyring)

    # The transaction ends before connecting: no row lock is held during the test.
    info, url = await run_in_threadpool(load)
    result = await cs.check_connectivity(info.connection_type, url, info.config, ctx.policy)
    return ConnectionTestOut(
        ok=result.ok,
        message=result.message,
        error_type=result.error_type,
        latency_ms=round(result.latency_ms, 1),
    )

"""The resources against the real database: project connections resolve only within their
project and never show their URL; the tables IO manager reads through RLS as a user."""

from __future__ import annotations

import uuid

import dagster as dg
import pytest

from resources import ProjectConnectionsResource, WfmonDatabaseResource, WfmonTablesIOManager
from resources.tables import read_table
from tests.dagster.conftest import WorkflowOwner
from wfmon.connections.crypto import Keyring, generate_key
from wfmon.connections.errors import ConnectionNotFound
from wfmon.connections.service import create_connection
from wfmon.db import Database


def test_project_connection_resolves_only_in_its_project(
    database_url: str, db: Database, carol: WorkflowOwner, dave: WorkflowOwner
) -> None:
    key = generate_key("k1")
    assert carol.user.auth_user_id is not None
    with db.as_user(carol.user.auth_user_id) as conn:
        info = create_connection(
            conn,
            project_id=carol.project.id,
            name="warehouse",
            connection_type="postgresql",
            url="postgresql://reporter:hunter2@db.example.com:5432/warehouse",
            keyring=Keyring.parse(key),
        )
    database = WfmonDatabaseResource(url=database_url)
    resource = ProjectConnectionsResource(database=database, secret_key=key)
    try:
        resolved = resource.resolve(carol.project.id, info.id)
        assert resolved.url == "postgresql://reporter:hunter2@db.example.com:5432/warehouse"
        assert "hunter2" not in repr(resolved)
        with pytest.raises(ConnectionNotFound):
            resource.resolve(dave.project.id, info.id)
    finally:
        database.teardown_after_execution(None)  # type: ignore[arg-type]


def _record_run(db: Database, owner: WorkflowOwner) -> None:
    """An execution row of ``owner``'s, recorded as sync records it (users never write them)."""
    with db.as_system() as conn:
        conn.execute(
            "INSERT INTO workflow_executions (temporal_namespace, temporal_workflow_id, "
            "temporal_run_id, workflow_type, task_queue, status, started_at, created_by, "
            "project_id, workflow_id) VALUES ('rls-test', %s, %s, 'T', 'q', 'running', now(), "
            "%s, %s, %s)",
            (
                str(uuid.uuid4()),
                str(uuid.uuid4()),
                owner.user.id,
                owner.project.id,
                owner.workflow.id,
            ),
        )


def test_io_manager_reads_through_rls_as_a_user(
    database_url: str, db: Database, carol: WorkflowOwner, dave: WorkflowOwner
) -> None:
    assert carol.user.auth_user_id is not None
    _record_run(db, carol)
    _record_run(db, dave)
    database = WfmonDatabaseResource(url=database_url)
    as_carol = WfmonTablesIOManager(database=database, auth_user_id=str(carol.user.auth_user_id))
    as_system = WfmonTablesIOManager(database=database)
    try:
        context = dg.build_input_context(asset_key=dg.AssetKey("workflow_executions"))
        mine = as_carol.load_input(context)
        everything = as_system.load_input(context)
    finally:
        database.teardown_after_execution(None)  # type: ignore[arg-type]
    assert len(mine) > 0 and set(mine["created_by"]) == {str(carol.user.id)}
    assert len(everything) > len(mine)
    with pytest.raises(KeyError, match="not a wfmon table"), db.as_system() as conn:
        read_table(conn, "users")

"""One vocabulary: statuses, "counts as a failure" and sort orders are defined once in
wfmon.model.vocabulary, and every other spelling of them equals that definition.

The dbt macro is rendered by dbt itself (``dbt compile --inline``, no database needed).
Places that cannot import Python (the dbt models, the migrations' CHECK constraints) are
compared with the enums; the database layer is checked to take them. No services needed.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import fields
from enum import Enum
from pathlib import Path
from typing import Any, get_args

import pytest
from fastapi import FastAPI

from resources.dbt import dbt_executable
from wfmon.api import models as api_models
from wfmon.api.routers import executions as executions_router
from wfmon.api.routers import workflows as workflows_router
from wfmon.model import (
    DEFAULT_EXECUTION_SORT,
    FAILURE_STATUSES,
    ComponentStatus,
    ExecutionSort,
    ExecutionStatus,
    is_failure,
)

ROOT = Path(__file__).resolve().parents[2]
DBT_PROJECT = ROOT / "dbt_project"
EXECUTION_STATUSES = {s.value for s in ExecutionStatus}
COMPONENT_STATUSES = {s.value for s in ComponentStatus}


def values_of(tp: Any) -> set[str]:
    """The values of a ``Literal[...]`` type or of an enum type."""
    if isinstance(tp, type) and issubclass(tp, Enum):
        return {m.value for m in tp}
    return set(get_args(tp))


# -- the definition -------------------------------------------------------------------------


def test_failure_statuses_are_execution_statuses() -> None:
    assert {"failed", "timed_out", "terminated"} == FAILURE_STATUSES
    assert FAILURE_STATUSES <= EXECUTION_STATUSES
    # A component is never terminated: for components "failure" is failed or timed out.
    assert {"failed", "timed_out"} == FAILURE_STATUSES & COMPONENT_STATUSES
    assert is_failure("timed_out") and is_failure(ComponentStatus.FAILED)
    assert not is_failure("canceled") and not is_failure(ExecutionStatus.CONTINUED_AS_NEW)


def test_history_reader_uses_the_model_enums() -> None:
    import wfmon.history as history

    assert history.ExecutionStatus is ExecutionStatus
    assert history.ComponentStatus is ComponentStatus


# -- the API --------------------------------------------------------------------------------


def test_api_models_and_query_parameters_list_the_enum_values() -> None:
    for model, field in (
        (api_models.ExecutionListItem, "status"),
        (api_models.ExecutionOut, "status"),
        (api_models.SyncStatusOut, "execution_status"),
        (api_models.ComponentOut, "status"),
        (api_models.TimelineBar, "status"),
    ):
        annotation = model.model_fields[field].annotation
        assert annotation in (ExecutionStatus, ComponentStatus), (model, field)

    app = FastAPI()
    app.include_router(workflows_router.router)
    app.include_router(executions_router.router)
    spec = app.openapi()
    schemas = spec["components"]["schemas"]

    def enum_of(schema: dict[str, Any]) -> set[str]:
        for option in schema.get("anyOf", [schema]):
            if "$ref" in option:
                option = schemas[option["$ref"].rsplit("/", 1)[-1]]
            if "enum" in option:
                return set(option["enum"])
        raise AssertionError(f"no enum in {schema}")

    def parameter(path: str, name: str) -> dict[str, Any]:
        params = spec["paths"][path]["get"]["parameters"]
        return next(p["schema"] for p in params if p["name"] == name)

    history = "/api/workflows/{workflow_id}/executions"
    assert enum_of(parameter(history, "status")) == EXECUTION_STATUSES
    assert enum_of(parameter(history, "sort")) == {s.value for s in ExecutionSort}
    assert parameter(history, "sort")["default"] == DEFAULT_EXECUTION_SORT.value
    for path in ("/api/executions/{execution_id}", "/api/executions/{execution_id}/components"):
        assert enum_of(parameter(path, "status")) == COMPONENT_STATUSES
    item = schemas["ExecutionListItem"]["properties"]["status"]
    assert enum_of(item) == EXECUTION_STATUSES


# -- the database layer ------------------------------------------------------------------------


def test_database_layer_takes_the_enums() -> None:
    from wfmon.db import executions, rows
    from wfmon.db.vocabulary import FAILED

    hints = {
        (cls.__name__, f.name): f.type
        for cls in (rows.ExecutionRow, rows.ListedExecution, rows.ComponentExecutionRow)
        for f in fields(cls)
        if f.name == "status"
    }
    assert hints == {
        ("ExecutionRow", "status"): "ExecutionStatus",
        ("ListedExecution", "status"): "ExecutionStatus",
        ("ComponentExecutionRow", "status"): "ComponentStatus",
    }
    assert rows.ExecutionStatus is ExecutionStatus
    assert rows.ComponentStatus is ComponentStatus
    assert values_of(rows.ExecutionStatus) == EXECUTION_STATUSES
    assert values_of(rows.ComponentStatus) == COMPONENT_STATUSES
    assert executions.ExecutionSort is ExecutionSort
    assert set(executions._SORTS) == set(ExecutionSort), "an ORDER BY per sort order"
    # The failure set the statements spell is built from FAILURE_STATUSES.
    assert re.fullmatch(r"\('[a-z_]+'(, '[a-z_]+')*\)", FAILED), FAILED
    assert set(re.findall(r"'([a-z_]+)'", FAILED)) == FAILURE_STATUSES
    # The API's old alias names for the database layer's types are gone.
    for alias in ("ExecutionStatusName", "ComponentStatusName", "SortName"):
        assert not hasattr(api_models, alias), alias


#: wfmon.db modules whose statements spell no failure set (they use wfmon.db.vocabulary).
DERIVED_DB_MODULES = ("statistics", "details", "windows", "executions")


def test_database_statements_spell_no_failure_set() -> None:
    for name in DERIVED_DB_MODULES:
        source = (ROOT / "wfmon" / "db" / f"{name}.py").read_text()
        source = re.sub(r"--[^\n]*|#[^\n]*", "", source)  # comments may say anything
        for listed in re.findall(r"IN \(([^)]*)\)", source):
            assert not set(re.findall(r"'([a-z_]+)'", listed)) & FAILURE_STATUSES, (name, listed)


def test_pages_label_every_sort_order() -> None:
    from wfmon.api.html import SORT_LABELS

    assert list(SORT_LABELS) == list(ExecutionSort)
    assert all(SORT_LABELS.values())


def check_constraint(table_sql: str, column: str) -> set[str]:
    match = re.search(
        rf"\n\s*{column}\s+text NOT NULL CHECK \({column} IN \((.*?)\)\)", table_sql, re.S
    )
    assert match, f"no CHECK on {column}"
    return set(re.findall(r"'([a-z_]+)'", match.group(1)))


def test_migration_check_constraints_equal_the_enums() -> None:
    schema = (ROOT / "migrations" / "0002_schema.sql").read_text()
    executions = schema[schema.index("CREATE TABLE workflow_executions (") :]
    executions = executions[: executions.index(");\n")]
    components = schema[schema.index("CREATE TABLE component_executions (") :]
    components = components[: components.index(");\n")]
    assert check_constraint(executions, "status") == EXECUTION_STATUSES
    assert check_constraint(components, "status") == COMPONENT_STATUSES


# -- dbt --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dbt_dirs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A profile that dbt never connects with (compile --inline of a macro needs none),
    and target/log directories of this test's own."""
    root = tmp_path_factory.mktemp("dbt-vocabulary")
    (root / "profiles.yml").write_text(
        "wfmon:\n  target: t\n  outputs:\n    t: {type: postgres, host: 127.0.0.1, port: 1, "
        "user: nobody, password: '', dbname: none, schema: public, threads: 1}\n"
    )
    return root


def render(dbt_dirs: Path, jinja: str) -> str:
    done = subprocess.run(
        [
            dbt_executable(),
            "--quiet",
            "compile",
            "--project-dir",
            str(DBT_PROJECT),
            "--profiles-dir",
            str(dbt_dirs),
            "--target-path",
            str(dbt_dirs / "target"),
            "--log-path",
            str(dbt_dirs / "logs"),
            "--no-populate-cache",
            "--inline",
            jinja,
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout.strip()


def test_dbt_failure_macro_equals_the_python_set(dbt_dirs: Path) -> None:
    rendered = render(dbt_dirs, "{{ wfmon_failure_statuses() }}")
    # An SQL list of string literals: ('a', 'b', ...)
    assert re.fullmatch(r"\('[a-z_]+'(, '[a-z_]+')*\)", rendered), rendered
    assert set(re.findall(r"'([a-z_]+)'", rendered)) == FAILURE_STATUSES


def test_dbt_models_spell_no_failure_status() -> None:
    """Every model takes the failure set from the macro; a status a model does spell (such
    as 'completed') is one of the vocabulary's."""
    models = sorted((DBT_PROJECT / "models").rglob("*.sql"))
    assert models
    users = set()
    for path in models:
        sql = re.sub(r"--[^\n]*", "", path.read_text())  # comments may say anything
        spelled = set(re.findall(r"'([a-z_]+)'", sql))
        assert not spelled & FAILURE_STATUSES, f"{path.name} spells {spelled & FAILURE_STATUSES}"
        for literal in re.findall(r"status\s*(?:=|<>|!=)\s*'([a-z_]+)'", sql):
            assert literal in EXECUTION_STATUSES | COMPONENT_STATUSES, (path.name, literal)
        if "is_failure" in sql and "wfmon_failure_statuses()" in sql:
            users.add(path.name)
    assert {"stg_executions.sql", "stg_component_executions.sql"} <= users

"""The API writes its responses with orjson from plain values (wfmon.api.models.dump_json):
byte for byte the JSON pydantic writes for the same values validated into the response
models, which is what the pages render and what the OpenAPI document describes."""

from __future__ import annotations

import copy
import uuid
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field, field_serializer

from tests.api.conftest import World
from wfmon.api import views
from wfmon.api.models import (
    ComponentPageOut,
    ExecutionDetailOut,
    ExecutionPageOut,
    dump_json,
)
from wfmon.model import DEFAULT_EXECUTION_SORT


class Colour(StrEnum):
    RED = "red"


class Inner(BaseModel):
    at: datetime
    colour: Colour


class Outer(BaseModel):
    id: uuid.UUID
    inner: list[Inner]
    ratio: float
    payload: Any = None
    counts: dict[str, int] = {}


class Aliased(BaseModel):
    value: int = Field(serialization_alias="v")


class Serialised(BaseModel):
    at: datetime

    @field_serializer("at")
    def _day(self, at: datetime) -> str:
        return at.date().isoformat()


def test_orjson_writes_what_pydantic_writes_and_hands_the_rest_to_it() -> None:
    times = [
        datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC),
        datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=-5, minutes=-30))),
        datetime(2026, 1, 2, 3, 4, 5),
    ]
    outer = Outer(
        id=uuid.uuid4(),
        inner=[Inner(at=t, colour=Colour.RED) for t in times],
        ratio=0.1 + 0.2,
        payload={"text": 'é ✓ \u2028 "q" <b>', "n": [1, 1.5e-7, 1e22, None, True], "big": 2**63},
        counts={"completed": 3},
    )
    assert dump_json(outer) == outer.model_dump_json().encode()
    as_values = outer.model_dump()
    assert dump_json(as_values, Outer) == outer.model_dump_json().encode()

    # What orjson would write differently, or not at all: pydantic writes all of it.
    for odd in (2**70, Decimal("1.10"), {1: "int key"}, float("nan")):
        model = Outer(id=outer.id, inner=[], ratio=1.0, payload=odd)
        assert dump_json(model) == model.model_dump_json().encode(), odd
        assert dump_json(model.model_dump(), Outer) == model.model_dump_json().encode(), odd
    for own in (Aliased(value=1), Serialised(at=times[0])):
        assert dump_json(own) == own.model_dump_json().encode()


def test_responses_are_the_models_json_byte_for_byte(world: World) -> None:
    """Details, component pages and the history page of real synced executions (failed
    with an unexpected retry, completed with an expected one, terminated, seeded)."""
    alice = world.alice
    http = world.http(alice)
    with world.db.as_user(alice.auth_user_id) as conn:
        for name in ("failed", "completed", "terminated", "timed_out"):
            eid = world.executions[name]
            detail = views.execution_detail_data(conn, eid)
            model = ExecutionDetailOut.model_validate(copy.deepcopy(detail))
            assert dump_json(detail, ExecutionDetailOut) == model.model_dump_json().encode()
            reply = http.get(f"/api/executions/{eid}")
            assert reply.status == 200 and reply.body == model.model_dump_json().encode(), name

            page = views.component_page_data(conn, eid, offset=1, limit=1, status=None)
            expected = ComponentPageOut.model_validate(copy.deepcopy(page)).model_dump_json()
            assert dump_json(page, ComponentPageOut) == expected.encode()
            reply = http.get(f"/api/executions/{eid}/components?offset=1&limit=1")
            assert reply.body == expected.encode(), name

        history = views.execution_page_data(
            conn, alice.workflow.id, status=None, page=1, page_size=3, sort=DEFAULT_EXECUTION_SORT
        )
        assert history["items"], "alice has executions"
        expected = ExecutionPageOut.model_validate(copy.deepcopy(history)).model_dump_json()
        assert dump_json(history, ExecutionPageOut) == expected.encode()
        reply = http.get(f"/api/workflows/{alice.workflow.id}/executions?page_size=3")
        assert reply.body == expected.encode()

"""Errors as JSON: one body shape for every failure the API answers.

Every error response is ``{"error": CODE, "message": TEXT}`` (plus ``fields`` for 422),
with the status that fits: 401 (no or bad token), 404 (missing OR not yours: the two are
deliberately indistinguishable), 409 (conflict), 422 (bad input, naming each field), 503
(a service wfmon depends on did not answer). Messages never contain secrets or another
user's data. Pages (paths outside ``/api``) get the same errors rendered as HTML by
:mod:`wfmon.api.html`.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from wfmon.api.html import render_error_page, wants_html
from wfmon.connections.errors import (
    ConnectionConflict,
    ConnectionNotFound,
    InvalidConnection,
    KeyringError,
)
from wfmon.sync.service import ExecutionNotFound

log = logging.getLogger(__name__)


class FieldError(BaseModel):
    """One rejected input: where it was (``query.page``, ``body.url``) and why."""

    field: str
    message: str


class ErrorBody(BaseModel):
    """The body of every error response."""

    error: str
    message: str
    fields: list[FieldError] | None = None


class ApiError(Exception):
    """An error with its HTTP status, machine code and human message."""

    status_code = 400
    code = "bad_request"

    def __init__(self, message: str, *, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers = headers


class Unauthorized(ApiError):
    status_code = 401
    code = "unauthorized"

    def __init__(self, message: str) -> None:
        super().__init__(message, headers={"WWW-Authenticate": 'Bearer realm="wfmon"'})


class NotFound(ApiError):
    """Missing or not visible to the caller: never says which."""

    status_code = 404
    code = "not_found"


class Conflict(ApiError):
    status_code = 409
    code = "conflict"


class Unprocessable(ApiError):
    status_code = 422
    code = "invalid_input"


class ServiceUnavailable(ApiError):
    status_code = 503
    code = "service_unavailable"


#: Response docs for OpenAPI: every route may answer these.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "No bearer token, or it does not verify"},
    404: {"model": ErrorBody, "description": "Not found, or not visible to you"},
    422: {"model": ErrorBody, "description": "Invalid input; `fields` names each problem"},
    503: {"model": ErrorBody, "description": "Temporal (or the connection key) unavailable"},
}


def error_response(status: int, code: str, message: str, **extra: Any) -> JSONResponse:
    body = ErrorBody(error=code, message=message, **extra)
    return JSONResponse(body.model_dump(exclude_none=True), status_code=status)


def _field_name(loc: tuple[Any, ...] | list[Any]) -> str:
    return ".".join(str(p) for p in loc) or "request"


def validation_fields(exc: RequestValidationError) -> list[FieldError]:
    out = []
    for err in exc.errors():
        msg = str(err.get("msg", "invalid")).removeprefix("Value error, ")
        out.append(FieldError(field=_field_name(err.get("loc", ())), message=msg))
    return out


def to_api_error(exc: Exception) -> ApiError | None:
    """The API error a domain exception stands for (None: not one we translate)."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, ExecutionNotFound | ConnectionNotFound):
        return NotFound(str(exc))
    if isinstance(exc, ConnectionConflict):
        return Conflict(str(exc))
    if isinstance(exc, InvalidConnection):
        return Unprocessable(str(exc))
    if isinstance(exc, KeyringError):
        return ServiceUnavailable("connections are not available: the server has no usable key")
    return None


async def _api_error(request: Request, exc: Exception) -> Response:
    api = to_api_error(exc)
    assert api is not None
    if wants_html(request):
        return render_error_page(request, api.status_code, api.message)
    response = error_response(api.status_code, api.code, api.message)
    if api.headers:
        response.headers.update(api.headers)
    return response


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    fields = validation_fields(exc)
    message = "; ".join(f"{f.field}: {f.message}" for f in fields) or "invalid request"
    if wants_html(request):
        return render_error_page(request, 422, message)
    return error_response(422, "invalid_input", message, fields=fields)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    message = str(exc.detail) if exc.detail else "error"
    if exc.status_code == 404:
        message = "not found"
    if wants_html(request):
        return render_error_page(request, exc.status_code, message)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    response = error_response(exc.status_code, code, message)
    if exc.headers:
        response.headers.update(exc.headers)
    return response


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_response(500, "internal_error", "internal error; the server log has details")


def install_error_handlers(app: FastAPI) -> None:
    for cls in (
        ApiError,
        ExecutionNotFound,
        ConnectionNotFound,
        ConnectionConflict,
        InvalidConnection,
        KeyringError,
    ):
        app.add_exception_handler(cls, _api_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)

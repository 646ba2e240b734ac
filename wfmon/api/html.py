"""HTML for the web pages: the Jinja templates with wfmon's filters, and the error page.

A leaf of :mod:`wfmon.api`: it imports nothing from the routers or from
:mod:`wfmon.api.errors`, so the error handlers (which render the error page for paths
outside ``/api``) and the page routes both import it without an import cycle.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from wfmon.model import ExecutionSort, is_failure

TEMPLATES_DIR = Path(__file__).parent / "templates"
templates = Jinja2Templates(directory=TEMPLATES_DIR)

#: Payloads longer than this are cut on the page (the API and raw history have them all).
MAX_PAYLOAD_CHARS = 20_000


def fmt_duration(ms: int | float | None) -> str:
    if ms is None:
        return "—"
    if ms < 1000:
        return f"{ms:.0f} ms"
    seconds = ms / 1000
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, sec = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {sec} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def fmt_time(value: datetime | None) -> str:
    if value is None:
        return "—"
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def fmt_json(value: Any) -> str:
    text = json.dumps(value, indent=2, ensure_ascii=False, default=str)
    if len(text) > MAX_PAYLOAD_CHARS:
        return text[:MAX_PAYLOAD_CHARS] + f"\n… ({len(text) - MAX_PAYLOAD_CHARS} more characters)"
    return text


STATUS_WORDS = {
    "timed_out": "timed out",
    "continued_as_new": "continued as new",
    "canceled": "canceled",
}

templates.env.filters["duration"] = fmt_duration
templates.env.filters["time"] = fmt_time
templates.env.filters["pretty"] = fmt_json
templates.env.filters["status"] = lambda s: STATUS_WORDS.get(str(s), str(s))
templates.env.globals["is_failure"] = is_failure

_SORT_WORDS = {
    ExecutionSort.STARTED_AT_DESC: "Newest first",
    ExecutionSort.STARTED_AT_ASC: "Oldest first",
    ExecutionSort.CLOSED_AT_DESC: "Recently closed",
    ExecutionSort.DURATION_DESC: "Longest first",
}
#: What the pages call each sort order, in the enum's order (the order a page lists them).
SORT_LABELS: Final[Mapping[ExecutionSort, str]] = {s: _SORT_WORDS[s] for s in ExecutionSort}


def wants_html(request: Request) -> bool:
    """Whether an error on this request is answered as a page (not under /api or /static)."""
    path = request.url.path
    return not (path.startswith("/api") or path.startswith("/static"))


def render_page(
    request: Request, name: str, status_code: int = 200, **context: Any
) -> HTMLResponse:
    """Template ``name`` with ``context`` (``signed_in`` defaults to True)."""
    context.setdefault("signed_in", True)
    return templates.TemplateResponse(request, name, context, status_code=status_code)


def render_error_page(request: Request, status: int, message: str) -> Response:
    """The error page for ``status``; a 401 redirects to the sign-in page (and back)."""
    if status == 401:
        target = quote(request.url.path + (f"?{request.url.query}" if request.url.query else ""))
        return RedirectResponse(f"/signin?next={target}", status_code=303)
    titles = {404: "Not found", 422: "That address is not valid", 503: "Unavailable"}
    return render_page(
        request,
        "error.html",
        status_code=status,
        title=titles.get(status, "Something went wrong"),
        message=message,
        status=status,
    )

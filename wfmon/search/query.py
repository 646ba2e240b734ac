"""The search box's language: a small, documented syntax parsed into a :class:`SearchQuery`.

A query is a list of terms separated by spaces; every term must match (AND)::

    status:failed workflow:checkout error:"card declined" since:7d
    input.order_id:"A-17"      order_id = "A-17"      timeout

=====================  ======================================================================
term                   matches executions ...
=====================  ======================================================================
``status:S``           with execution status S (``failed``, ``running``, ... or ``failure``
                       for every status that counts as a failure)
``workflow:W``         of the workflow named W (case-insensitive, exact)
``node:N``             with a component execution of node N
``component:C``        with a component execution of component C (e.g. ``postgresql-query``)
``error:TEXT``         whose execution, a component or a retry attempt failed with an error
                       containing TEXT (type or message; case-insensitive substring)
``input:TEXT``         whose workflow input or a component's input contains TEXT
``output:TEXT``        whose result or a component's output contains TEXT
``input.PATH:VALUE``   where the input has VALUE at PATH (``input.order.id:"A-17"``); also
``PATH = VALUE``       ``output.PATH``; without ``input.``/``output.``: either
``since:T`` ``until:T`` started at or after / before T: ``2026-11-01``, ``2026-11-01T12:30``
                       (UTC unless it has an offset), or ``30m`` ``24h`` ``7d`` ago
``time:A..B``          started in [A, B); either side may be empty (``time:2026-11-01..``)
``TEXT``               anything above that is text: error, input or output contains TEXT
=====================  ======================================================================

Values with spaces or ``:`` go in double quotes (``"card declined"``); ``\\"`` is a quote
inside one. A path is dot-separated keys; a key that is a number also indexes lists.
JSON values compare as JSON when they parse as a number, ``true``/``false``/``null``, and
as strings otherwise; a quoted value is always a string.

A query that cannot be parsed raises :class:`SearchSyntaxError`, whose message names the
problem and its position, e.g. ``unknown field 'stauts' at position 1 (known: ...)``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Final

from wfmon.model.vocabulary import FAILURE_STATUSES, ExecutionStatus

#: Longest query accepted (characters) and most terms: a search box, not a program.
MAX_QUERY_LENGTH: Final = 2000
MAX_TERMS: Final = 32
#: Shortest text searched as a substring (trigram indexes need three characters).
MIN_TEXT_LENGTH: Final = 3
#: Status word for "every status that counts as a failure".
FAILURE_WORD: Final = "failure"


class SearchSyntaxError(ValueError):
    """The query cannot be parsed; ``position`` is the 0-based offset of the problem."""

    def __init__(self, message: str, position: int) -> None:
        super().__init__(f"{message} at position {position + 1}")
        self.position = position
        self.problem = message


class JsonSide(StrEnum):
    """Where a JSON value is looked for."""

    INPUT = "input"
    OUTPUT = "output"
    EITHER = "either"


@dataclass(frozen=True)
class JsonMatch:
    """``side`` has ``value`` (a JSON value) at ``path``."""

    side: JsonSide
    path: tuple[str, ...]
    value: object


@dataclass(frozen=True)
class TextMatch:
    """``text`` occurs (case-insensitive substring) in the error, input or output text."""

    text: str
    in_errors: bool = True
    in_inputs: bool = True
    in_outputs: bool = True


@dataclass
class SearchQuery:
    """A parsed query: every non-empty criterion must hold (AND)."""

    statuses: set[ExecutionStatus] = field(default_factory=set)
    workflows: list[str] = field(default_factory=list)
    nodes: list[str] = field(default_factory=list)
    components: list[str] = field(default_factory=list)
    texts: list[TextMatch] = field(default_factory=list)
    json: list[JsonMatch] = field(default_factory=list)
    started_from: datetime | None = None
    started_before: datetime | None = None

    @property
    def is_empty(self) -> bool:
        return not (
            self.statuses
            or self.workflows
            or self.nodes
            or self.components
            or self.texts
            or self.json
            or self.started_from
            or self.started_before
        )

    @property
    def looks_into_components(self) -> bool:
        """Whether matching needs the component rows (and so names matching components)."""
        return bool(self.nodes or self.components or self.texts or self.json)


_FIELDS: Final = (
    "status",
    "workflow",
    "node",
    "component",
    "error",
    "input",
    "output",
    "since",
    "until",
    "time",
)
_RELATIVE = re.compile(r"(\d{1,6})([mhdw])")
_UNITS: Final = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
_KEY = re.compile(r"[A-Za-z0-9_\-$@]+")


@dataclass(frozen=True)
class _Token:
    text: str
    position: int
    quoted: bool


def parse_search(query: str, *, now: datetime | None = None) -> SearchQuery:
    """Parse ``query`` (see the module's documentation). ``now`` anchors relative times.

    Raises :class:`SearchSyntaxError` naming the first problem and where it is.
    """
    if len(query) > MAX_QUERY_LENGTH:
        raise SearchSyntaxError(f"the query is longer than {MAX_QUERY_LENGTH} characters", 0)
    now = now or datetime.now(UTC)
    result = SearchQuery()
    terms = list(_terms(query))
    if len(terms) > MAX_TERMS:
        raise SearchSyntaxError(f"more than {MAX_TERMS} terms", terms[MAX_TERMS][0].position)
    for name, value in terms:
        _apply(result, name, value, now)
    if (
        result.started_from is not None
        and result.started_before is not None
        and result.started_before <= result.started_from
    ):
        raise SearchSyntaxError("the time range ends before it starts", 0)
    return result


def _terms(query: str) -> list[tuple[_Token, _Token | None]]:
    """``(field or path, value)`` pairs; a bare word is ``(word, None)``."""
    tokens = _tokenize(query)
    terms: list[tuple[_Token, _Token | None]] = []
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        nxt = tokens[i + 1] if i + 1 < len(tokens) else None
        if tok.text == "=" and not tok.quoted:
            raise SearchSyntaxError("'=' needs a path before it", tok.position)
        if nxt is not None and nxt.text == "=" and not nxt.quoted:
            if tok.quoted:
                raise SearchSyntaxError("a path cannot be quoted", tok.position)
            if i + 2 >= len(tokens):
                raise SearchSyntaxError(f"'{tok.text} =' needs a value", nxt.position)
            terms.append((_Token(f"={tok.text}", tok.position, False), tokens[i + 2]))
            i += 3
            continue
        terms.append(_split_field(tok))
        i += 1
    return terms


def _split_field(tok: _Token) -> tuple[_Token, _Token | None]:
    if tok.quoted or ":" not in tok.text:
        return tok, None
    name, _, rest = tok.text.partition(":")
    if not name:
        raise SearchSyntaxError("':' needs a field name before it", tok.position)
    value_pos = tok.position + len(name) + 1
    if rest.startswith('"'):
        inner = _quoted(rest, value_pos)
        return _Token(name, tok.position, False), _Token(inner, value_pos, True)
    if not rest:
        raise SearchSyntaxError(f"'{name}:' needs a value", value_pos)
    return _Token(name, tok.position, False), _Token(rest, value_pos, False)


def _tokenize(query: str) -> list[_Token]:
    """Whitespace-separated tokens; double quotes group (also right after ``field:``)."""
    tokens: list[_Token] = []
    i, n = 0, len(query)
    while i < n:
        if query[i].isspace():
            i += 1
            continue
        if query[i] == "=":
            tokens.append(_Token("=", i, False))
            i += 1
            continue
        start = i
        if query[i] == '"':
            end = _quote_end(query, i)
            tokens.append(_Token(_unescape(query[i + 1 : end]), start, True))
            i = end + 1
            continue
        # A bare token; a quote inside it (field:"...") runs to its closing quote.
        while i < n and not query[i].isspace() and query[i] != "=":
            if query[i] == '"':
                i = _quote_end(query, i) + 1
            else:
                i += 1
        tokens.append(_Token(query[start:i], start, False))
    return tokens


def _quote_end(query: str, start: int) -> int:
    i = start + 1
    while i < len(query):
        if query[i] == "\\" and i + 1 < len(query):
            i += 2
            continue
        if query[i] == '"':
            return i
        i += 1
    raise SearchSyntaxError("a quote is not closed", start)


def _quoted(text: str, position: int) -> str:
    end = _quote_end(text, 0)
    if end != len(text) - 1:
        raise SearchSyntaxError("unexpected text after a closing quote", position + end + 1)
    return _unescape(text[1:end])


def _unescape(text: str) -> str:
    return text.replace('\\"', '"').replace("\\\\", "\\")


def _apply(result: SearchQuery, name: _Token, value: _Token | None, now: datetime) -> None:
    if value is None:
        if not name.quoted and name.text.lower().startswith(("input.", "output.")):
            raise SearchSyntaxError(
                f"'{name.text}' needs a value: {name.text}:VALUE or {name.text} = VALUE",
                name.position,
            )
        _text(result, name, TextMatch(name.text))
        return
    if name.text.startswith("="):
        _json(result, name.text[1:], name.position, value)
        return
    key = name.text.lower()
    if key.startswith(("input.", "output.")):
        _json(result, name.text, name.position, value)
        return
    if key not in _FIELDS:
        raise SearchSyntaxError(
            f"unknown field '{name.text}' (known: {', '.join(_FIELDS)}, input.PATH, output.PATH)",
            name.position,
        )
    text = value.text
    if key == "status":
        result.statuses |= _statuses(text, value.position)
    elif key == "workflow":
        result.workflows.append(text)
    elif key == "node":
        result.nodes.append(text)
    elif key == "component":
        result.components.append(text)
    elif key in ("error", "input", "output"):
        match = TextMatch(
            text, in_errors=key == "error", in_inputs=key == "input", in_outputs=key == "output"
        )
        _text(result, value, match)
    elif key == "since":
        result.started_from = _later(result.started_from, _instant(text, value.position, now))
    elif key == "until":
        result.started_before = _earlier(result.started_before, _instant(text, value.position, now))
    else:  # time:A..B
        start, sep, end = text.partition("..")
        if not sep:
            raise SearchSyntaxError(
                "time needs a range A..B (either side may be empty)", value.position
            )
        if start:
            result.started_from = _later(result.started_from, _instant(start, value.position, now))
        if end:
            end_pos = value.position + len(start) + 2
            result.started_before = _earlier(result.started_before, _instant(end, end_pos, now))


def _text(result: SearchQuery, where: _Token, match: TextMatch) -> None:
    if len(match.text.strip()) < MIN_TEXT_LENGTH:
        raise SearchSyntaxError(
            f"text to search for needs at least {MIN_TEXT_LENGTH} characters: '{match.text}'",
            where.position,
        )
    result.texts.append(match)


def _statuses(text: str, position: int) -> set[ExecutionStatus]:
    word = text.lower()
    if word == FAILURE_WORD:
        return {ExecutionStatus(s) for s in FAILURE_STATUSES}
    try:
        return {ExecutionStatus(word)}
    except ValueError:
        known = ", ".join([*(s.value for s in ExecutionStatus), FAILURE_WORD])
        raise SearchSyntaxError(f"unknown status '{text}' (known: {known})", position) from None


def _json(result: SearchQuery, path_text: str, position: int, value: _Token) -> None:
    parts = path_text.split(".")
    side = JsonSide.EITHER
    if parts[0].lower() in (JsonSide.INPUT, JsonSide.OUTPUT):
        side = JsonSide(parts[0].lower())
        parts = parts[1:]
    if not parts or parts == [""]:
        raise SearchSyntaxError(f"'{path_text}' needs a key after '{side.value}.'", position)
    for part in parts:
        if not _KEY.fullmatch(part):
            raise SearchSyntaxError(
                f"'{part}' is not a key (letters, digits, '_', '-', '$', '@')", position
            )
    result.json.append(JsonMatch(side, tuple(parts), _json_value(value)))


def _json_value(value: _Token) -> object:
    if value.quoted:
        return value.text
    try:
        parsed = json.loads(value.text)
    except ValueError:
        return value.text
    return parsed if isinstance(parsed, (int, float, bool)) or parsed is None else value.text


def _instant(text: str, position: int, now: datetime) -> datetime:
    relative = _RELATIVE.fullmatch(text)
    if relative:
        amount, unit = int(relative.group(1)), _UNITS[relative.group(2)]
        return now - timedelta(**{unit: amount})
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise SearchSyntaxError(
            f"'{text}' is not a time (e.g. 2026-11-01, 2026-11-01T12:30, 24h, 7d)", position
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _later(current: datetime | None, new: datetime) -> datetime:
    return new if current is None or new > current else current


def _earlier(current: datetime | None, new: datetime) -> datetime:
    return new if current is None or new < current else current

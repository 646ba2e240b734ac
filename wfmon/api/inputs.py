"""Text and JSON the API stores: which characters it accepts, decided once.

PostgreSQL refuses NUL (U+0000) in ``text`` and in ``jsonb`` (``\\u0000``), and a lone
surrogate cannot be encoded as UTF-8: sent on, each would fail inside the database as a
500. So request bodies refuse them up front with a 422 naming the field:

- :class:`RequestBody` (the base of every request body model) refuses NUL and lone
  surrogates in every string and object key of the body, at any depth, naming the path
  (``body.config.options.0``). A field added later is covered without doing anything.
- :data:`SingleLineText` (names, URLs, other one-line fields) also refuses every other C0
  control character (U+0001-U+001F, including tab and newlines) and DEL (U+007F).
- :data:`MultiLineText` (descriptions, SQL, code) allows tab, LF and CR, refuses the rest.
- :data:`StoredJson` (objects stored as ``jsonb``) refuses NUL in keys and string values.

The OpenAPI document marks each field with ``x-wfmon-text`` (``single-line`` /
``multi-line``) or ``x-wfmon-json`` so clients (and the fuzz test) know the rule.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

#: Errors reported per body at most (a huge body full of NULs gets a short answer).
MAX_REPORTED = 20

_NUL_OR_SURROGATE = re.compile("[\x00\ud800-\udfff]")
_SINGLE_LINE_BAD = re.compile("[\x00-\x1f\x7f\ud800-\udfff]")
_MULTI_LINE_BAD = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")


def _error(match: re.Match[str], rule: str) -> PydanticCustomError:
    char = match.group(0)
    where = {"position": match.start(), "char": f"U+{ord(char):04X}"}
    if char == "\x00":
        return PydanticCustomError(
            "nul_character",
            "must not contain NUL (U+0000, at position {position}): it cannot be stored",
            where,
        )
    if "\ud800" <= char <= "\udfff":
        return PydanticCustomError(
            "invalid_unicode",
            "is not valid Unicode: a lone surrogate {char} at position {position}",
            where,
        )
    return PydanticCustomError(
        "control_character", rule + " (found {char} at position {position})", where
    )


def _checker(pattern: re.Pattern[str], rule: str) -> Callable[[str], str]:
    def check(value: str) -> str:
        match = pattern.search(value)
        if match:
            raise _error(match, rule)
        return value

    return check


SingleLineText = Annotated[
    str,
    AfterValidator(_checker(_SINGLE_LINE_BAD, "must be one line without control characters")),
    Field(json_schema_extra={"x-wfmon-text": "single-line"}),
]
MultiLineText = Annotated[
    str,
    AfterValidator(
        _checker(_MULTI_LINE_BAD, "must not contain control characters other than tab, LF, CR")
    ),
    Field(json_schema_extra={"x-wfmon-text": "multi-line"}),
]


def _escaped(key: str) -> str:
    """``key`` as it is named in an error's location: NUL and lone surrogates spelled
    ``\\u0000`` (the raw characters cannot be stored, nor always encoded in the answer)."""
    return _NUL_OR_SURROGATE.sub(lambda m: f"\\u{ord(m.group(0)):04x}", key)


def _json_problems(value: Any) -> Iterator[InitErrorDetails]:
    """NULs and lone surrogates in a parsed JSON value: keys and strings, at any depth
    (iterative: a deeply nested body cannot exhaust the stack)."""
    stack: list[tuple[tuple[str | int, ...], Any]] = [((), value)]
    while stack:
        loc, item = stack.pop()
        if isinstance(item, str):
            match = _NUL_OR_SURROGATE.search(item)
            if match:
                yield InitErrorDetails(type=_error(match, ""), loc=loc, input=item)
        elif isinstance(item, dict):
            for key, sub in reversed(list(item.items())):
                key_loc = (*loc, _escaped(key) if isinstance(key, str) else key)
                if isinstance(key, str) and (match := _NUL_OR_SURROGATE.search(key)):
                    problem = str(_error(match, ""))
                    yield InitErrorDetails(
                        type=PydanticCustomError(
                            "invalid_key", "this object key {problem}", {"problem": problem}
                        ),
                        loc=key_loc,
                        input=key_loc[-1],
                    )
                stack.append((key_loc, sub))
        elif isinstance(item, list | tuple):
            stack.extend(((*loc, i), sub) for i, sub in reversed(list(enumerate(item))))


def refuse_unstorable(value: Any, title: str = "request") -> Any:
    """``value`` unchanged, or a :class:`ValidationError` locating each NUL / lone surrogate."""
    errors = []
    for problem in _json_problems(value):
        errors.append(problem)
        if len(errors) >= MAX_REPORTED:
            break
    if errors:
        raise ValidationError.from_exception_data(title, errors)
    return value


StoredJson = Annotated[
    dict[str, Any],
    AfterValidator(refuse_unstorable),
    Field(json_schema_extra={"x-wfmon-json": True}),
]


class RequestBody(BaseModel):
    """Base of every request body: unknown fields are refused, and so is any NUL or lone
    surrogate anywhere in the body (see the module docstring)."""

    model_config = ConfigDict(extra="forbid")

    @model_validator(mode="before")
    @classmethod
    def _storable(cls, data: Any) -> Any:
        return refuse_unstorable(data, cls.__name__)

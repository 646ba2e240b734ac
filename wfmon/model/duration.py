"""Durations in definitions: ``"500ms"``, ``"30s"``, ``"1m30s"``, ``"2h"``, ``"1d"`` or seconds.

Parsed into :class:`datetime.timedelta`; written back as the same compact text, so a
definition round-trips through JSON unchanged in meaning.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_WHOLE = re.compile(r"(?:\d+(?:\.\d+)?(?:ms|s|m|h|d))+")


def parse_duration(value: Any) -> timedelta:
    """A non-negative timedelta from text, a number of seconds, or a timedelta.

    Raises ``ValueError`` with an example of the accepted form (pydantic adds the field).
    """
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, bool):
        raise ValueError("a duration must be text like '30s' or a number of seconds")
    elif isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip().replace(" ", "")
        if not _WHOLE.fullmatch(text):
            raise ValueError(
                f"{value!r} is not a duration; use a number and a unit "
                "(ms, s, m, h, d), e.g. '500ms', '30s', '1m30s'"
            )
        seconds = sum(float(n) * _UNITS[u] for n, u in _PART.findall(text))
    else:
        raise ValueError("a duration must be text like '30s' or a number of seconds")
    if seconds < 0:
        raise ValueError(f"a duration cannot be negative (got {value!r})")
    return timedelta(seconds=seconds)


def format_duration(value: timedelta) -> str:
    """Compact text for a duration: ``"1s"``, ``"250ms"``, ``"1m30s"``."""
    ms = round(value.total_seconds() * 1000)
    if ms == 0:
        return "0s"
    out = []
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        if ms >= size:
            out.append(f"{ms // size}{unit}")
            ms %= size
    if ms:
        out.append(f"{ms}ms")
    return "".join(out)


Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str, when_used="json"),
]
"""A pydantic field type for durations (see :func:`parse_duration`)."""
